package udp_test

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
	"github.com/gyre-io/gyre/transports/udp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 10 * time.Second

type dgram struct {
	data []byte
	from netip.AddrPort
}

// rec records everything a datagram protocol sees; echo makes it answer.
type rec struct {
	mu                            sync.Mutex
	echo                          bool
	tr                            transports.DatagramTransport
	got                           []dgram
	starts, stops, refused, trunc int
	writeErrs                     []error
}

func (r *rec) StartProtocol(t transports.DatagramTransport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tr = t
	r.starts++
}

func (r *rec) DatagramReceived(p []byte, addr netip.AddrPort) {
	r.mu.Lock()
	r.got = append(r.got, dgram{append([]byte{}, p...), addr})
	echo, tr := r.echo, r.tr
	r.mu.Unlock()
	if echo {
		if err := tr.Write(p, addr); err != nil {
			r.mu.Lock()
			r.writeErrs = append(r.writeErrs, err)
			r.mu.Unlock()
		}
	}
}

func (r *rec) ConnectionRefused() { r.mu.Lock(); r.refused++; r.mu.Unlock() }
func (r *rec) StopProtocol()      { r.mu.Lock(); r.stops++; r.mu.Unlock() }
func (r *rec) DatagramTruncated(fit int, addr netip.AddrPort) {
	r.mu.Lock()
	r.trunc++
	r.mu.Unlock()
}

func (r *rec) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.got) }
func (r *rec) snapshot() (got []dgram, starts, stops, refused, trunc int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]dgram{}, r.got...), r.starts, r.stops, r.refused, r.trunc
}

// listen starts a port on h and returns it.
func listen(t *testing.T, h *reactortest.Loop, addr string, r *rec, o udp.ListenOptions) *udp.Port {
	t.Helper()
	var p *udp.Port
	var err error
	h.Do(func() { p, err = udp.Listen(h.Loop, addr, r, o) })
	require.NoError(t, err)
	return p
}

// stop stops p and waits for its done callback; StopProtocol ran once.
func stop(t *testing.T, h *reactortest.Loop, p *udp.Port, r *rec) {
	t.Helper()
	done := make(chan struct{})
	var err error
	h.Do(func() { err = p.StopListening(func() { close(done) }) })
	require.NoError(t, err)
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("StopListening never completed")
	}
	_, starts, stops, _, _ := r.snapshot()
	require.Equal(t, 1, starts)
	require.Equal(t, 1, stops)
	h.Do(func() { require.ErrorIs(t, p.StopListening(nil), transports.ErrClosed) })
}

func readFrom(t *testing.T, c *net.UDPConn, n int) ([]byte, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, n+1)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	k, from, err := c.ReadFromUDPAddrPort(buf)
	require.NoError(t, err)
	return buf[:k], from
}

// Echo over IPv4 and IPv6 with port 0: every datagram, an empty one
// included, comes back to its sender, and receiving goes on after it.
func TestEchoV4V6(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		fds := reactortest.FDCount()
		h := reactortest.Start(t, kind)
		for _, host := range []string{"127.0.0.1", "::1"} {
			r := &rec{echo: true}
			p := listen(t, h, net.JoinHostPort(host, "0"), r, udp.ListenOptions{})
			la := p.LocalAddr()
			require.NotZero(t, la.Port())
			require.Equal(t, host, la.Addr().String())
			c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(la))
			require.NoError(t, err)
			for _, msg := range []string{"hello", "", "after empty", string(bytes.Repeat([]byte("x"), 1400))} {
				_, err := c.Write([]byte(msg))
				require.NoError(t, err)
				got, _ := readFrom(t, c, 2000)
				require.Equal(t, msg, string(got))
			}
			got, _, _, _, _ := r.snapshot()
			require.Len(t, got, 4)
			require.Equal(t, netip.MustParseAddrPort(c.LocalAddr().String()), got[0].from)
			require.NoError(t, c.Close())
			h.Do(func() { require.Equal(t, uint64(4), p.Stats().Received); require.Equal(t, uint64(4), p.Stats().Sent) })
			stop(t, h, p, r)
		}
		h.StopWait()
		require.Empty(t, h.Errors())
		require.Equal(t, fds, reactortest.FDCount())
	})
}

// A datagram larger than the receive room is reported truncated, never
// delivered cut, and the next one is delivered.
func TestTruncatedReported(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		for _, max := range []int{0, 5000} { // multishot room, own buffer (beyond the room)
			r := &rec{}
			p := listen(t, h, "127.0.0.1:0", r, udp.ListenOptions{MaxPacketSize: max})
			room := max
			if max == 0 {
				room = udp.MaxPacketSize(h.Loop)
			}
			c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(p.LocalAddr()))
			require.NoError(t, err)
			_, err = c.Write(make([]byte, room+1))
			require.NoError(t, err)
			_, err = c.Write(make([]byte, room))
			require.NoError(t, err)
			require.True(t, h.Eventually(wait, func() bool { return r.count() == 1 }))
			got, _, _, _, trunc := r.snapshot()
			require.Equal(t, 1, trunc)
			require.Len(t, got[0].data, room)
			h.Do(func() { require.Equal(t, uint64(1), p.Stats().Truncated) })
			require.NoError(t, c.Close())
			stop(t, h, p, r)
		}
		h.StopWait()
	})
}

// The documented receive room: 3968 bytes with the default loop; a loop
// with 16 KiB buffers receives a 9000-byte datagram whole with the default
// MaxPacketSize.
func TestDefaultMaxPacketSize(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		require.Equal(t, 3968, udp.MaxPacketSize(h.Loop))
		h.StopWait()
		h = reactortest.Start(t, kind, reactor.Config{Sizes: backend.Config{BufferSize: 16384}})
		require.Equal(t, 16256, udp.MaxPacketSize(h.Loop))
		r := &rec{}
		p := listen(t, h, "127.0.0.1:0", r, udp.ListenOptions{})
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(p.LocalAddr()))
		require.NoError(t, err)
		_, err = c.Write(make([]byte, 9000))
		require.NoError(t, err)
		require.True(t, h.Eventually(wait, func() bool { return r.count() == 1 }))
		got, _, _, _, trunc := r.snapshot()
		require.Zero(t, trunc)
		require.Len(t, got[0].data, 9000)
		require.NoError(t, c.Close())
		stop(t, h, p, r)
		h.StopWait()
	})
}

// 65,507-byte datagrams (the UDP/IPv4 maximum) both ways.
func TestLargest(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		r := &rec{echo: true}
		p := listen(t, h, "127.0.0.1:0", r, udp.ListenOptions{MaxPacketSize: 65507})
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(p.LocalAddr()))
		require.NoError(t, err)
		big := make([]byte, 65507)
		for i := range big {
			big[i] = byte(i * 7)
		}
		_, err = c.Write(big)
		require.NoError(t, err)
		got, _ := readFrom(t, c, 65507)
		require.Equal(t, big, got)
		h.Do(func() {
			err := p.Write(make([]byte, 65508), p.LocalAddr())
			require.ErrorIs(t, err, transports.ErrMessageTooLong)
			require.ErrorIs(t, err, syscall.EMSGSIZE)
			require.EqualError(t, err, "gyre/udp: datagram too long")
		})
		require.NoError(t, c.Close())
		stop(t, h, p, r)
		h.StopWait()
	})
}

// ICMP port unreachable on a connected port reaches ConnectionRefused, and
// the port keeps working: once the peer listens, its datagrams arrive.
func TestConnectionRefusedKeepsWorking(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		pa := netip.MustParseAddrPort(peer.LocalAddr().String())
		require.NoError(t, peer.Close())
		r := &rec{}
		p := listen(t, h, "127.0.0.1:0", r, udp.ListenOptions{})
		h.Do(func() {
			require.ErrorIs(t, p.Write([]byte("x"), netip.AddrPort{}), transports.ErrNotConnected)
			require.NoError(t, p.Connect(pa))
			require.ErrorIs(t, p.Connect(pa), transports.ErrAlreadyConnected)
			require.NoError(t, p.Write([]byte("anyone?"), netip.AddrPort{}))
		})
		require.True(t, h.Eventually(wait, func() bool { _, _, _, n, _ := r.snapshot(); return n >= 1 }))
		h.Do(func() {
			// The refusal is pending on the socket: the next send reports it.
			err := p.Write([]byte("still?"), netip.AddrPort{})
			if err != nil {
				require.ErrorIs(t, err, transports.ErrConnectionRefused)
				require.EqualError(t, err, "gyre/udp: connection refused")
			}
		})
		peer, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(pa))
		if err != nil {
			t.Skipf("peer port %v taken meanwhile: %v", pa, err)
		}
		defer peer.Close()
		_, err = peer.WriteToUDPAddrPort([]byte("back"), p.LocalAddr())
		require.NoError(t, err)
		require.True(t, h.Eventually(wait, func() bool { return r.count() == 1 }))
		h.Do(func() { require.NoError(t, p.Write([]byte("again"), netip.AddrPort{})) })
		got, _ := readFrom(t, peer, 100)
		require.Equal(t, "again", string(got))
		stop(t, h, p, r)
		h.StopWait()
	})
}

// A burst larger than the provided-buffer pool loses nothing: the receive
// ends with ENOBUFS, is re-armed, and every datagram arrives in order.
func TestBurstBeyondPool(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind, reactor.Config{Sizes: backend.Config{BufferCount: 4}})
		r := &rec{}
		p := listen(t, h, "127.0.0.1:0", r, udp.ListenOptions{})
		h.Do(p.PauseReading)
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(p.LocalAddr()))
		require.NoError(t, err)
		const n = 64
		for i := range n {
			_, err := c.Write([]byte{byte(i)})
			require.NoError(t, err)
		}
		time.Sleep(10 * time.Millisecond) // let loopback deliver (not asserted)
		require.Zero(t, r.count(), "paused")
		h.Do(p.ResumeReading)
		require.True(t, h.Eventually(wait, func() bool { return r.count() == n }))
		got, _, _, _, _ := r.snapshot()
		for i := range n {
			require.Equal(t, []byte{byte(i)}, got[i].data)
		}
		h.Do(func() { require.NotZero(t, p.Stats().NoBuffers, "the pool of 4 must have run dry") })
		require.NoError(t, c.Close())
		stop(t, h, p, r)
		h.StopWait()
	})
}

// Options: SO_REUSEADDR/SO_REUSEPORT let two ports share an address;
// broadcast and buffer sizes; a bad address is ErrBadOptions.
func TestOptions(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		r1, r2 := &rec{}, &rec{}
		o := udp.ListenOptions{ReuseAddr: true, ReusePort: true}
		p1 := listen(t, h, "127.0.0.1:0", r1, o)
		p2 := listen(t, h, p1.LocalAddr().String(), r2, o)
		require.Equal(t, p1.LocalAddr(), p2.LocalAddr())
		h.Do(func() {
			on, err := p1.Broadcast()
			require.NoError(t, err)
			require.False(t, on)
			require.NoError(t, p1.SetBroadcast(true))
			on, err = p1.Broadcast()
			require.NoError(t, err)
			require.True(t, on)
			require.NoError(t, p1.SetReadBuffer(1<<20))
			require.NoError(t, p1.SetWriteBuffer(1<<20))
			_, err = udp.Listen(h.Loop, "localhost:0", &rec{}, udp.ListenOptions{})
			require.ErrorIs(t, err, transports.ErrBadOptions)
			_, err = udp.Listen(h.Loop, p1.LocalAddr().String(), &rec{}, udp.ListenOptions{})
			require.Error(t, err, "the address is taken without SO_REUSEPORT")
		})
		stop(t, h, p1, r1)
		stop(t, h, p2, r2)
		h.StopWait()
	})
}

// Stopping the loop stops the port: StopProtocol once, descriptor closed.
func TestLoopStopStopsPort(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		fds := reactortest.FDCount()
		h := reactortest.Start(t, kind)
		r := &rec{}
		listen(t, h, "127.0.0.1:0", r, udp.ListenOptions{})
		h.StopWait()
		_, starts, stops, _, _ := r.snapshot()
		require.Equal(t, 1, starts)
		require.Equal(t, 1, stops)
		require.Equal(t, fds, reactortest.FDCount())
	})
}

// The reactor interface: stream.Reactor(loop).ListenUDP reaches this
// package (registered as "udp") with its options; other option types are
// ErrBadOptions.
func TestReactorListenUDP(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		var r transports.Reactor = stream.Reactor(h.Loop)
		_, err := r.ListenUDP("127.0.0.1:0", &rec{}, 42)
		require.ErrorIs(t, err, transports.ErrBadOptions)
		_, err = r.ListenUDP("nohost", &rec{}, nil)
		require.ErrorIs(t, err, transports.ErrBadOptions)
		e := &rec{echo: true}
		tr, err := r.ListenUDP("127.0.0.1:0", e, &udp.ListenOptions{QueueDatagrams: 2})
		require.NoError(t, err)
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(tr.LocalAddr()))
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte("via reactor"))
		require.NoError(t, err)
		got, _ := readFrom(t, c, 20)
		require.Equal(t, "via reactor", string(got))
		stop(t, h, tr.(*udp.Port), e)
	})
}
