package gyretls_test

import (
	"context"
	ctls "crypto/tls"
	"fmt"
	"io"
	"os"

	echoproto "github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/reactor"
	gyretls "github.com/gyre-io/gyre/transports/tls"
	"github.com/gyre-io/gyre/transports/tls/tlstest"
)

// A TLS echo server on gyre (Twisted's listenSSL), driven by a Go
// crypto/tls client from another goroutine.
func Example() {
	dir, err := os.MkdirTemp("", "gyre-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	pki, err := tlstest.New(dir, "localhost") // throw-away CA and server certificate
	if err != nil {
		panic(err)
	}

	loop, err := reactor.New(reactor.Config{})
	if err != nil {
		panic(err)
	}
	port, err := gyretls.Listen(loop, "127.0.0.1:0", echoproto.Factory{}, pki.ServerConfig(), gyretls.ListenOptions{})
	if err != nil {
		panic(err)
	}
	go func() {
		defer loop.Stop()
		c, err := ctls.Dial("tcp", port.Addr().String(), pki.ClientConfig("localhost"))
		if err != nil {
			fmt.Println(err)
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("hello over TLS"))
		got := make([]byte, len("hello over TLS"))
		if _, err := io.ReadFull(c, got); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(string(got), c.ConnectionState().Version == ctls.VersionTLS13)
	}()
	_ = loop.Run(context.Background())
	// Output: hello over TLS true
}
