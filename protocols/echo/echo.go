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
	t     transports.Transport
	keep  transports.BufferKeeper // t, when it can keep received bytes
	owned transports.OwnedWriter  // t, when keep is set
	gate  flow.Gate
}

// ForwardMin is the size from which Echo sends received bytes back without
// copying them (transports.BufferKeeper and OwnedWriter, where the
// transport has them: tcp and unix). Below it a copy is cheaper than the
// bookkeeping (measured with bench/internal/gyresrv's echo: forwarding 64 B
// messages cost 1.2× the CPU of copying them; 4 KiB ones saved a quarter of
// the user-space CPU).
const ForwardMin = 2048

var _ transports.Protocol = (*Echo)(nil)

// ConnectionMade implements transports.Protocol.
func (e *Echo) ConnectionMade(t transports.Transport) {
	e.t = t
	if k, ok := t.(transports.BufferKeeper); ok {
		if w, ok := t.(transports.OwnedWriter); ok {
			e.keep, e.owned = k, w
		}
	}
	_ = e.gate.Start(t, nil)
}

// DataReceived implements transports.Protocol: p is written back — from
// ForwardMin bytes on, without a copy where the transport can keep its
// received buffer (BufferKeeper), else copied by Write. If the write fails
// the connection is aborted.
func (e *Echo) DataReceived(p []byte) {
	if e.t == nil {
		return
	}
	if e.keep != nil && len(p) >= ForwardMin {
		if release, ok := e.keep.KeepReceived(); ok {
			if e.owned.WriteOwned(p, release) == nil {
				return
			}
			release(nil) // not queued: the connection is closing
		}
	}
	if err := e.t.Write(p); err != nil {
		_ = e.t.Abort()
	}
}

// ConnectionLost implements transports.Protocol.
func (e *Echo) ConnectionLost(error) {
	e.t, e.keep, e.owned = nil, nil, nil
	e.gate.Close()
}

// Factory builds an Echo for every connection. The zero value is ready to use
// and is goroutine-safe.
type Factory struct{}

var _ transports.Factory = Factory{}

// BuildProtocol implements transports.Factory.
func (Factory) BuildProtocol(net.Addr) transports.Protocol { return &Echo{} }
