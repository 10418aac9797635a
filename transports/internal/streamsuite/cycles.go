package streamsuite

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
)

// cycler is a client factory that runs connect → write → echo →
// LoseConnection cycles back to back, reconnecting from
// ClientConnectionLost, all on the loop. Loop goroutine only, except the
// fields read after done is closed.
type cycler struct {
	t      *testing.T
	total  int
	built  int
	made   int
	lost   int
	data   int
	failed []error
	bad    []error
	done   chan struct{}
}

// cycleProto is deliberately tiny (no strict bookkeeping): 10k of them.
type cycleProto struct {
	f    *cycler
	tr   transports.Transport
	made bool
	lost bool
}

func (p *cycleProto) ConnectionMade(tr transports.Transport) {
	if p.made || p.lost {
		p.f.t.Errorf("ConnectionMade twice or after ConnectionLost")
	}
	p.made, p.tr = true, tr
	p.f.made++
	_ = tr.Write([]byte{'x'})
}

func (p *cycleProto) DataReceived(b []byte) {
	if !p.made || p.lost {
		p.f.t.Errorf("DataReceived outside the connection's life")
	}
	p.f.data += len(b)
	_ = p.tr.LoseConnection()
}

func (p *cycleProto) ConnectionLost(reason error) {
	if !p.made || p.lost {
		p.f.t.Errorf("ConnectionLost twice or without ConnectionMade")
	}
	p.lost = true
	p.f.lost++
}

func (f *cycler) BuildProtocol(net.Addr) transports.Protocol {
	f.built++
	return &cycleProto{f: f}
}
func (f *cycler) StartedConnecting(transports.Connector) {}
func (f *cycler) ClientConnectionFailed(_ transports.Connector, err error) {
	f.failed = append(f.failed, err)
	close(f.done)
}
func (f *cycler) ClientConnectionLost(c transports.Connector, err error) {
	if !errorsIsDone(err) {
		f.bad = append(f.bad, err)
	}
	if f.lost >= f.total {
		close(f.done)
		return
	}
	if err := c.Connect(); err != nil {
		f.failed = append(f.failed, err)
		close(f.done)
	}
}

func errorsIsDone(err error) bool { return errors.Is(err, transports.ErrConnectionDone) }

// TestTenThousandConnectCloseCycles: 10k (1k with -short, fewer under
// -race) connect/echo/close cycles through a Connector against a port on the
// same loop: every cycle accepted and served, every protocol on both sides
// lost exactly once, and the descriptor count back to where it started.
func testTenThousandConnectCloseCycles(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		before := reactortest.FDCount()
		var server struct{ built, lost int }
		sf := transports.FactoryFunc(func(net.Addr) transports.Protocol {
			server.built++
			return &echoLost{t: t, lost: &server.lost}
		})
		p, err := k.listen(t, h, sf)
		require.NoError(t, err)
		n := scaled(10000, 1000)
		f := &cycler{t: t, total: n, done: make(chan struct{})}
		start := time.Now()
		_, err = k.Connect(h.Loop, p.Addr().String(), f, 0)
		require.NoError(t, err)
		select {
		case <-f.done:
		case <-time.After(120 * time.Second):
			t.Fatalf("cycles did not finish")
		}
		elapsed := time.Since(start)
		h.Do(func() {
			require.Empty(t, f.failed)
			require.Empty(t, f.bad)
			require.Equal(t, n, f.built)
			require.Equal(t, n, f.made)
			require.Equal(t, n, f.lost)
			require.Equal(t, n, f.data)
		})
		require.True(t, h.Eventually(10*time.Second, func() bool { return server.lost == n }), "server side lost")
		h.Do(func() {
			require.Equal(t, n, server.built)
			require.NoError(t, p.Close())
		})
		settle(h)
		require.LessOrEqual(t, reactortest.FDCount(), before, "descriptors left after %d cycles", n)
		t.Logf("%d cycles in %v", n, elapsed)
	})
}

// echoLost echoes and counts its ConnectionLost.
type echoLost struct {
	t    *testing.T
	tr   transports.Transport
	lost *int
	done bool
}

func (e *echoLost) ConnectionMade(tr transports.Transport) { e.tr = tr }
func (e *echoLost) DataReceived(p []byte)                  { _ = e.tr.Write(p) }
func (e *echoLost) ConnectionLost(error) {
	if e.done {
		e.t.Errorf("server ConnectionLost twice")
	}
	e.done = true
	*e.lost++
}
