package http_test

import (
	"fmt"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/protocols/http"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// A "Hello, World!" server. Here the connection is a StringTransport; in a
// program the factory goes to a listener (tcp.Listen(loop, addr, f)).
func ExampleNewFactory() {
	hello := []byte("Hello, World!")
	f := http.NewFactory(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(hello)
	}), http.Options{Server: "gyre"})

	tr := transporttest.NewStringTransport(clock.NewFake())
	p := f.BuildProtocol(tr.RemoteAddr())
	transporttest.Connect(p, tr)
	tr.Receive([]byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"))
	fmt.Printf("%q\n", tr.String())
	// Output:
	// "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Sat, 01 Jan 2000 00:00:00 GMT\r\nServer: gyre\r\nContent-Length: 13\r\n\r\nHello, World!"
}
