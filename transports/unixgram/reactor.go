package unixgram

import (
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

// Importing this package registers it as the "unixgram" datagram network
// of every stream.Reactor (transports.ReactorUNIXDatagram).
func init() { stream.RegisterDatagramNetwork[string]("unixgram", network{}) }

// network is the "unixgram" stream.DatagramNetwork and
// stream.DatagramConnector: options from opts (nil, ListenOptions or
// ConnectOptions, as a value or a pointer).
type network struct{}

var _ stream.DatagramConnector[string] = network{}

func (network) Listen(loop *reactor.Loop, path string, p transports.UnixDatagramProtocol, opts any) (transports.UnixDatagramTransport, error) {
	o, err := stream.Options[ListenOptions]("ListenUNIXDatagram", opts)
	if err != nil {
		return nil, err
	}
	port, err := Listen(loop, path, p, o)
	if err != nil {
		return nil, err // not a typed nil *Port
	}
	return port, nil
}

func (network) Connect(loop *reactor.Loop, path string, p transports.UnixDatagramProtocol, opts any) (transports.UnixDatagramTransport, error) {
	o, err := stream.Options[ConnectOptions]("ConnectUNIXDatagram", opts)
	if err != nil {
		return nil, err
	}
	port, err := Connect(loop, path, p, o)
	if err != nil {
		return nil, err
	}
	return port, nil
}
