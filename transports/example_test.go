package transports_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/gyre-io/gyre/transports"
)

// greeter says hello on connect and closes after the first line it gets.
type greeter struct{ t transports.Transport }

func (g *greeter) ConnectionMade(t transports.Transport) { g.t = t; _ = t.Write([]byte("hello\n")) }
func (g *greeter) DataReceived([]byte)                   { _ = g.t.LoseConnection() }
func (g *greeter) ConnectionLost(reason error) {
	switch {
	case errors.Is(reason, transports.ErrConnectionDone):
		fmt.Println("closed cleanly; io.EOF too:", errors.Is(reason, io.EOF))
	case errors.Is(reason, transports.ErrConnectionLost):
		fmt.Println("lost:", errors.Is(reason, syscall.ECONNRESET))
	}
}

// Protocols are plain values built by a Factory; a nil protocol refuses the
// connection. The reason given to ConnectionLost tells a clean close from a
// lost connection with errors.Is.
func Example() {
	f := transports.FactoryFunc(func(net.Addr) transports.Protocol { return &greeter{} })
	p := f.BuildProtocol(nil)
	p.ConnectionLost(transports.ErrConnectionDone)
	p.ConnectionLost(transports.Lost(syscall.ECONNRESET))
	// Output:
	// closed cleanly; io.EOF too: true
	// lost: true
}
