package tcp

import (
	"net"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

var _ stream.Adopter = network{}

// AdoptListener implements stream.Adopter: fd (owned from now on) is a
// listening TCP socket made elsewhere; accepted connections get the
// defaults of ListenOptions (TCP_NODELAY on).
func (network) AdoptListener(loop *reactor.Loop, fd int, f transports.Factory) (transports.Port, error) {
	laddr, _ := localAddr(fd).(*net.TCPAddr)
	l, err := stream.Listen(loop, fd, f, stream.ListenerConfig{
		Net:  "tcp",
		Addr: laddr,
		NewConn: func(loop *reactor.Loop, fd int) (*stream.Conn, transports.Transport) {
			c := acceptedConn(loop, fd, ListenOptions{})
			return &c.Conn, c
		},
	})
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: laddr, Err: err}
	}
	return &Port{l}, nil
}

// AdoptedConn implements stream.Adopter: fd (owned from now on) is a
// connected TCP socket made elsewhere, given the defaults of ListenOptions.
func (network) AdoptedConn(loop *reactor.Loop, fd int) (*stream.Conn, transports.Transport) {
	c := acceptedConn(loop, fd, ListenOptions{})
	return &c.Conn, c
}
