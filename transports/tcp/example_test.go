package tcp_test

import (
	"context"
	"fmt"
	"net"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
)

// upper answers every chunk in upper case.
type upper struct{ t transports.Transport }

func (u *upper) ConnectionMade(t transports.Transport) { u.t = t }
func (u *upper) DataReceived(p []byte) {
	out := make([]byte, len(p))
	for i, b := range p {
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		out[i] = b
	}
	_ = u.t.Write(out)
}
func (u *upper) ConnectionLost(error) {}

// client sends one message, prints the answer and stops the loop.
type client struct {
	loop *reactor.Loop
	t    transports.Transport
}

func (c *client) ConnectionMade(t transports.Transport) { c.t = t; _ = t.Write([]byte("hello, gyre")) }
func (c *client) DataReceived(p []byte)                 { fmt.Println(string(p)); _ = c.t.LoseConnection() }
func (c *client) ConnectionLost(error)                  { c.loop.Stop() }

type exampleClientFactory struct{ loop *reactor.Loop }

func (f exampleClientFactory) BuildProtocol(net.Addr) transports.Protocol {
	return &client{loop: f.loop}
}
func (exampleClientFactory) StartedConnecting(transports.Connector)               {}
func (f exampleClientFactory) ClientConnectionFailed(transports.Connector, error) { f.loop.Stop() }
func (exampleClientFactory) ClientConnectionLost(transports.Connector, error)     {}

func Example() {
	loop, err := reactor.New(reactor.Config{})
	if err != nil {
		panic(err)
	}
	port, err := tcp.Listen(loop, "127.0.0.1:0", transports.FactoryFunc(func(net.Addr) transports.Protocol {
		return &upper{}
	}), tcp.ListenOptions{})
	if err != nil {
		panic(err)
	}
	if _, err := tcp.Connect(loop, port.Addr().String(), exampleClientFactory{loop}, tcp.ConnectOptions{}); err != nil {
		panic(err)
	}
	_ = loop.Run(context.Background())
	// Output: HELLO, GYRE
}
