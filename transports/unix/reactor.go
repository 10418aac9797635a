package unix

import (
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

// Importing this package registers it as the "unix" network of every
// stream.Reactor (transports.Reactor's ListenUNIX and ConnectUNIX, and the
// adoption of UNIX descriptors by stream.AdoptStreamPort and
// stream.AdoptStreamConnection).
func init() { stream.RegisterNetwork("unix", network{}) }

// network is the "unix" stream.Network: Listen and Connect with their
// options taken from opts (nil, ListenOptions or *ListenOptions; nil,
// ConnectOptions or *ConnectOptions); and a stream.Adopter.
type network struct{}

var _ stream.Adopter = network{}

func (network) Listen(loop *reactor.Loop, path string, f transports.Factory, opts any) (transports.Port, error) {
	o, err := stream.Options[ListenOptions]("ListenUNIX", opts)
	if err != nil {
		return nil, err
	}
	p, err := Listen(loop, path, f, o)
	if err != nil {
		return nil, err // not a typed nil *Port
	}
	return p, nil
}

func (network) Connect(loop *reactor.Loop, path string, f transports.ClientFactory, opts any) (transports.Connector, error) {
	o, err := stream.Options[ConnectOptions]("ConnectUNIX", opts)
	if err != nil {
		return nil, err
	}
	c, err := Connect(loop, path, f, o)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AdoptListener implements stream.Adopter: fd (owned from now on) is a
// listening UNIX stream socket made elsewhere. Its socket file, if any, is
// not removed when the port closes: whoever bound it owns it.
func (network) AdoptListener(loop *reactor.Loop, fd int, f transports.Factory) (transports.Port, error) {
	addr := localAddr(fd)
	l, err := stream.Listen(loop, fd, f, listenerConfig(addr, ListenOptions{}, nil))
	if err != nil {
		return nil, err
	}
	return &Port{Listener: l}, nil
}

// AdoptedConn implements stream.Adopter: fd (owned from now on) is a
// connected UNIX stream socket made elsewhere.
func (network) AdoptedConn(loop *reactor.Loop, fd int) (*stream.Conn, transports.Transport) {
	c := newConn(loop, fd, remoteAddr(fd), transports.Watermarks{})
	return &c.Conn, c
}
