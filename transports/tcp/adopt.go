package tcp

import (
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

var _ stream.Adopter = network{}

// AdoptListener implements stream.Adopter: fd (owned from now on) is a
// listening TCP socket made elsewhere; accepted connections get the
// defaults of ListenOptions (TCP_NODELAY on).
func (network) AdoptListener(loop *reactor.Loop, fd int, f transports.Factory) (transports.Port, error) {
	p, err := listenOn(loop, fd, f, ListenOptions{})
	if err != nil {
		return nil, err // not a typed nil *Port
	}
	return p, nil
}

// AdoptedConn implements stream.Adopter: fd (owned from now on) is a
// connected TCP socket made elsewhere, given the defaults of ListenOptions.
func (network) AdoptedConn(loop *reactor.Loop, fd int) (*stream.Conn, transports.Transport) {
	c := acceptedConn(loop, fd, ListenOptions{})
	return &c.Conn, c
}
