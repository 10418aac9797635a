// Command echo is a TCP echo server on gyre.
//
//	go run ./examples/echo -addr 127.0.0.1:7000 [-backend auto|uring|epoll]
//
// It serves until SIGINT or SIGTERM, then stops cleanly and exits 0.
package main

import (
	"net"

	"github.com/gyre-io/gyre/examples/internal/serve"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
)

type echo struct{ t transports.Transport }

func (e *echo) ConnectionMade(t transports.Transport) { e.t = t }
func (e *echo) DataReceived(p []byte)                 { _ = e.t.Write(p) }
func (e *echo) ConnectionLost(error)                  { e.t = nil }

func main() {
	serve.Main("echo", "127.0.0.1:7000", func(*reactor.Loop) transports.Factory {
		return transports.FactoryFunc(func(net.Addr) transports.Protocol { return &echo{} })
	})
}
