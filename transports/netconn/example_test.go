package netconn_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports/netconn"
)

// Serve net/http on a gyre loop and fetch a page from it with net/http's
// client, dialing through the loop too.
func Example() {
	loop, err := reactor.New(reactor.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() { _ = loop.Run(context.Background()) }()
	defer func() { loop.Stop(); <-loop.Done() }()

	ln, err := netconn.Listen(loop, "tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "served on", r.Context().Value(http.LocalAddrContextKey).(net.Addr).Network())
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return netconn.Dial(ctx, loop, network, addr)
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Print(string(b))
	// Output: served on tcp
}
