package streamsuite

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
)

// Helpers shared with the transports' own (protocol-specific) tests.

// Recorder is a Protocol that records what happens to it; it echoes what it
// receives when Echo is set. Loop goroutine only (read it from a test
// through the loop: reactortest.Loop.Do or Eventually).
type Recorder struct {
	T      transports.Transport
	Data   bytes.Buffer
	Made   int
	Lost   int
	Reason error
	Echo   bool
	OnMade func(r *Recorder)
	OnData func(r *Recorder, p []byte)
	OnLost func(r *Recorder)
}

// ConnectionMade implements transports.Protocol.
func (r *Recorder) ConnectionMade(t transports.Transport) {
	r.T = t
	r.Made++
	if r.OnMade != nil {
		r.OnMade(r)
	}
}

// DataReceived implements transports.Protocol.
func (r *Recorder) DataReceived(p []byte) {
	if r.Echo {
		_ = r.T.Write(p)
	}
	r.Data.Write(p)
	if r.OnData != nil {
		r.OnData(r, p)
	}
}

// ConnectionLost implements transports.Protocol.
func (r *Recorder) ConnectionLost(reason error) {
	r.Lost++
	r.Reason = reason
	if r.OnLost != nil {
		r.OnLost(r)
	}
}

// Serve listens on a fresh address of k with protocols from mk (the port is
// closed at cleanup); it returns the port and a function listing the
// protocols built so far (goroutine-safe).
func Serve(t *testing.T, k *Kind, h *reactortest.Loop, mk func() *Recorder) (Port, func() []*Recorder) {
	t.Helper()
	var mu sync.Mutex
	var built []*Recorder
	f := transports.FactoryFunc(func(net.Addr) transports.Protocol {
		r := mk()
		mu.Lock()
		built = append(built, r)
		mu.Unlock()
		return r
	})
	p, err := k.listen(t, h, f)
	require.NoError(t, err)
	t.Cleanup(func() {
		h.Do(func() { _ = p.Close() })
	})
	return p, func() []*Recorder {
		mu.Lock()
		defer mu.Unlock()
		return append([]*Recorder(nil), built...)
	}
}

// Dial connects a Go net peer of k's network to p (closed at cleanup; 20 s
// deadline).
func Dial(t *testing.T, k *Kind, p Port) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(k.Network, p.Addr().String(), 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// ClientFactory is a transports.ClientFactory building one Recorder (with
// OnMade and OnData) per connection, the last in Proto; failures and losses
// go to Failed and LostCh (one buffered each). Proto and Started are loop
// goroutine only.
type ClientFactory struct {
	Failed  chan error
	LostCh  chan error
	Started int
	Proto   *Recorder
	OnMade  func(r *Recorder)
	OnData  func(r *Recorder, p []byte)
}

// NewClientFactory returns a ClientFactory with its channels made.
func NewClientFactory() *ClientFactory {
	return &ClientFactory{Failed: make(chan error, 1), LostCh: make(chan error, 1)}
}

// BuildProtocol implements transports.Factory.
func (f *ClientFactory) BuildProtocol(net.Addr) transports.Protocol {
	f.Proto = &Recorder{OnMade: f.OnMade, OnData: f.OnData}
	return f.Proto
}

// StartedConnecting implements transports.ClientFactory.
func (f *ClientFactory) StartedConnecting(transports.Connector) { f.Started++ }

// ClientConnectionFailed implements transports.ClientFactory.
func (f *ClientFactory) ClientConnectionFailed(_ transports.Connector, err error) {
	f.Failed <- err
}

// ClientConnectionLost implements transports.ClientFactory.
func (f *ClientFactory) ClientConnectionLost(_ transports.Connector, err error) { f.LostCh <- err }
