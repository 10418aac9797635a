// Package echo is the echo protocol (RFC 862, Twisted's
// twisted.protocols.wire.Echo): every byte received is written back.
package echo

import (
	"net"

	"github.com/gyre-io/gyre/protocols/internal/flow"
	"github.com/gyre-io/gyre/transports"
)

// Echo writes back whatever it receives. Loop goroutine only, like every
// Protocol. The zero value is ready to use.
//
// Memory is bounded by the transport's watermarks: Echo registers itself as
// its transport's streaming producer, so reading pauses while the write queue
// is above the high watermark (a peer that sends and does not read) and
// resumes once it drained to the low one. The transport's one producer slot
// is therefore taken.
type Echo struct {
	t    transports.Transport
	gate flow.Gate
}

var _ transports.Protocol = (*Echo)(nil)

// ConnectionMade implements transports.Protocol.
func (e *Echo) ConnectionMade(t transports.Transport) {
	e.t = t
	_ = e.gate.Start(t, nil)
}

// DataReceived implements transports.Protocol: p is written back (the
// transport copies it, so nothing is kept). If the write fails the connection
// is aborted.
func (e *Echo) DataReceived(p []byte) {
	if e.t == nil {
		return
	}
	if err := e.t.Write(p); err != nil {
		_ = e.t.Abort()
	}
}

// ConnectionLost implements transports.Protocol.
func (e *Echo) ConnectionLost(error) {
	e.t = nil
	e.gate.Close()
}

// Factory builds an Echo for every connection. The zero value is ready to use
// and is goroutine-safe.
type Factory struct{}

var _ transports.Factory = Factory{}

// BuildProtocol implements transports.Factory.
func (Factory) BuildProtocol(net.Addr) transports.Protocol { return &Echo{} }
