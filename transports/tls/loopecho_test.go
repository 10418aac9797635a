package gyretls_test

import (
	ctls "crypto/tls"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	gyretls "github.com/gyre-io/gyre/transports/tls"
)

// pinger is a gyre TLS client protocol that sends msg, waits for it to come
// back in full, and repeats, all on the loop; done gets a value after each
// run of round trips.
type pinger struct {
	t     transports.Transport
	msg   []byte
	got   int
	left  int
	ready chan struct{}
	done  chan struct{}
}

func newPinger(size int) *pinger {
	return &pinger{msg: pattern(size), ready: make(chan struct{}), done: make(chan struct{}, 1)}
}

func (p *pinger) ConnectionMade(t transports.Transport)      { p.t = t }
func (p *pinger) HandshakeCompleted(ctls.ConnectionState)    { close(p.ready) }
func (p *pinger) ConnectionLost(error)                       {}
func (p *pinger) BuildProtocol(net.Addr) transports.Protocol { return p }
func (p *pinger) StartedConnecting(transports.Connector)     {}
func (p *pinger) ClientConnectionFailed(transports.Connector, error) {
}
func (p *pinger) ClientConnectionLost(transports.Connector, error) {}

// run (loop) starts n round trips.
func (p *pinger) run(n int) {
	p.left, p.got = n, 0
	_ = p.t.Write(p.msg)
}

func (p *pinger) DataReceived(b []byte) {
	p.got += len(b)
	if p.got < len(p.msg) {
		return
	}
	p.got = 0
	if p.left--; p.left > 0 {
		_ = p.t.Write(p.msg)
		return
	}
	p.done <- struct{}{}
}

// loopEcho connects a gyre TLS client (a pinger) to a gyre TLS echo server on
// the same loop; version 0 leaves crypto/tls's default (TLS 1.3).
func loopEcho(t testing.TB, h *reactortest.Loop, size int, version uint16) *pinger {
	t.Helper()
	p := testPKI(t)
	scfg := p.server()
	scfg.MinVersion, scfg.MaxVersion = version, version
	port, err := gyretls.Listen(h.Loop, "127.0.0.1:0", transports.FactoryFunc(func(net.Addr) transports.Protocol {
		return &echoProto{}
	}), scfg, gyretls.ListenOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { h.Do(func() { _ = port.Close() }) })
	pg := newPinger(size)
	conn, err := gyretls.Connect(h.Loop, port.Addr().String(), pg, p.client(), gyretls.ConnectOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { h.Do(func() { conn.Disconnect() }) })
	select {
	case <-pg.ready:
	case <-time.After(10 * time.Second):
		t.Fatal("no handshake")
	}
	return pg
}

// roundTrips runs n round trips and waits for them.
func (p *pinger) roundTrips(t testing.TB, h *reactortest.Loop, n int) {
	h.Do(func() { p.run(n) })
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatal("round trips did not finish")
	}
}

// Steady-state echo between a gyre TLS client and a gyre TLS server on one
// loop allocates one object per received batch and side: crypto/tls's
// atLeastReader, allocated by its readFromUntil whenever its buffer runs
// short (Go 1.26 conn.go), which no caller of tls.Conn.Read can avoid. It
// allocated two per side and 64 B round trip before the pipe framed records
// (tls.Conn.Read was called until "would block", and that last call asked
// for input too), and one more per extra TCP chunk a 16 KiB record spanned.
func TestSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers at random")
	}
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		for _, v := range []uint16{ctls.VersionTLS12, ctls.VersionTLS13} {
			for _, size := range []int{64, 16 << 10} {
				h := reactortest.Start(t, kind)
				pg := loopEcho(t, h, size, v)
				pg.roundTrips(t, h, 50) // past crypto/tls's dynamic record sizing (128 KB)
				const n = 500
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				pg.roundTrips(t, h, n)
				runtime.ReadMemStats(&after)
				per := float64(after.Mallocs-before.Mallocs) / n
				t.Logf("TLS %x, %d B: %.2f allocs per round trip", v, size, per)
				// 2: one atLeastReader on each side; the slack covers h.Do.
				require.LessOrEqual(t, per, 2.1, "TLS %x, %d B", v, size)
			}
		}
	})
}
