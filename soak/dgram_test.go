package soak

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/udp"
	"github.com/gyre-io/gyre/transports/unixgram"
)

// The datagram soak: an echo server port and a few client ports on one
// faulty loop, each client sending numbered datagrams (a window of them at
// a time) that the server echoes to their sender. The injector fails and
// delays recvmsg ops and reorders completions across ports (it never
// shortens a recvmsg or sendmsg; the transports send with sendmsg(2)
// directly, so sends see no injected fault). Loopback neither loses within
// a bounded window, nor duplicates, nor corrupts, so after every run:
//
//   - every datagram delivered (to the server, and back to its client) is
//     byte-exact one that was sent, and arrives at most once;
//   - every datagram Write accepted arrives, except the echoes the server's
//     Write refused with ErrQueueFull (counted, and cross-checked with
//     DatagramStats.Refused); on a UNIX socket in the order sent;
//   - no datagram is delivered while the port is paused;
//   - StartProtocol and StopProtocol ran exactly once per port, nothing after
//     StopProtocol, StopListening's done exactly once;
//   - and the harness's rest and baseline checks.

const (
	nDgClients = 3
	nDatagrams = 40
	dgWindow   = 8
	dgHeader   = 8 // client id, sequence number (big endian uint32 each)
)

func TestSoakDgram(t *testing.T) {
	eachSeed(t, []string{"udp/echo", "unixgram/echo"}, func(t *testing.T, kind reactor.BackendKind, c string, seed uint64) {
		h := startHarness(t, kind, seed)
		if h == nil {
			return
		}
		switch c {
		case "udp/echo":
			(&dgRun[netip.AddrPort]{h: h, seed: seed, listen: func(loop *reactor.Loop, i, queue int, p transports.DatagramProtocol) (transports.DatagramTransport, error) {
				o := udp.ListenOptions{QueueDatagrams: queue}
				if i%2 == 1 {
					o.MaxPacketSize = 8192 // one receive at a time into the port's buffer
				}
				return udp.Listen(loop, "127.0.0.1:0", p, o)
			}}).do()
		case "unixgram/echo":
			dir := t.TempDir()
			(&dgRun[string]{h: h, seed: seed, ordered: true, listen: func(loop *reactor.Loop, i, queue int, p transports.UnixDatagramProtocol) (transports.UnixDatagramTransport, error) {
				o := unixgram.ListenOptions{QueueDatagrams: queue}
				if i%2 == 1 {
					o.MaxPacketSize = 8192
				}
				return unixgram.Listen(loop, filepath.Join(dir, fmt.Sprintf("p%d.sock", i)), p, o)
			}}).do()
		}
	})
}

type dgRun[A transports.DatagramAddr] struct {
	h       *harness
	seed    uint64
	ordered bool // the socket family keeps one sender's order (AF_UNIX)
	// listen binds port i (0: the server) with protocol p and a send
	// queue of queue datagrams (0: the default).
	listen func(loop *reactor.Loop, i, queue int, p transports.DatagramProtocolOf[A]) (transports.DatagramTransportOf[A], error)

	server  *dgPort[A]
	clients []*dgClient[A]
	byAddr  map[A]*dgClient[A]
	echoRef int // echoes the server's Write refused (ErrQueueFull)
	pauses  int
}

// dgPort records one port's protocol lifecycle and forwards its datagrams.
type dgPort[A transports.DatagramAddr] struct {
	r                    *dgRun[A]
	name                 string
	tr                   transports.DatagramTransportOf[A]
	starts, stops, after int
	done                 int
	paused               bool
	pausedRecv           int // datagrams delivered while paused
	refusedCalls         int // ConnectionRefused (never connected: must stay 0)
	recv                 func(p []byte, addr A)
}

func (p *dgPort[A]) StartProtocol(transports.DatagramTransportOf[A]) {
	p.starts++
	if p.stops > 0 {
		p.after++
	}
	if p.recv != nil && p.starts == 1 && p.r.server != p {
		p.r.byName(p).pump()
	}
}

func (p *dgPort[A]) DatagramReceived(b []byte, addr A) {
	if p.stops > 0 {
		p.after++
	}
	if p.paused {
		p.pausedRecv++
	}
	p.recv(b, addr)
}

func (p *dgPort[A]) ConnectionRefused() { p.refusedCalls++ }

func (p *dgPort[A]) StopProtocol() {
	p.stops++
}

// dgClient is one client port's sending state.
type dgClient[A transports.DatagramAddr] struct {
	id          int
	port        *dgPort[A]
	addr        A
	rng         *rand.Rand
	sent        [][]byte // per sequence number: the datagram Write accepted (nil: refused)
	state       []byte   // per sequence number: dgUnsent, dgOut, dgEchoed, dgRefused, dgEchoRefused
	atServer    []int    // per sequence number: times the server received it
	next        int
	outstanding int
	lastEcho    int
	refused     int // own Writes refused with ErrQueueFull
	bad         []string
}

const (
	dgUnsent = iota
	dgOut
	dgEchoed
	dgRefused
	dgEchoRefused
)

func (r *dgRun[A]) byName(p *dgPort[A]) *dgClient[A] {
	for _, c := range r.clients {
		if c.port == p {
			return c
		}
	}
	return nil
}

func (c *dgClient[A]) errorf(format string, args ...any) {
	if len(c.bad) < 10 {
		c.bad = append(c.bad, fmt.Sprintf(format, args...))
	}
}

// pump sends numbered datagrams while fewer than dgWindow are out.
func (c *dgClient[A]) pump() {
	for c.outstanding < dgWindow && c.next < nDatagrams && c.port.stops == 0 {
		seq := c.next
		c.next++
		b := make([]byte, dgHeader+c.rng.IntN(3960-dgHeader))
		binary.BigEndian.PutUint32(b, uint32(c.id))
		binary.BigEndian.PutUint32(b[4:], uint32(seq))
		for j := dgHeader; j < len(b); j++ {
			b[j] = byte(c.rng.Uint32())
		}
		err := c.port.tr.Write(b, c.port.r.server.tr.LocalAddr())
		switch {
		case err == nil:
			c.sent[seq], c.state[seq] = b, dgOut
			c.outstanding++
		case errors.Is(err, transports.ErrQueueFull):
			c.state[seq] = dgRefused
			c.refused++
		default:
			c.state[seq] = dgRefused
			c.errorf("Write of datagram %d: %v", seq, err)
		}
	}
}

// parse returns the client and sequence number b names, if b is a datagram
// that client's Write accepted, byte-exact.
func (r *dgRun[A]) parse(b []byte, where string) (*dgClient[A], int, bool) {
	if len(b) < dgHeader {
		r.h.t.Errorf("%s: datagram of %d bytes, shorter than any sent", where, len(b))
		return nil, 0, false
	}
	id, seq := int(binary.BigEndian.Uint32(b)), int(binary.BigEndian.Uint32(b[4:]))
	if id >= len(r.clients) || seq >= nDatagrams {
		r.h.t.Errorf("%s: datagram names client %d seq %d, never sent", where, id, seq)
		return nil, 0, false
	}
	c := r.clients[id]
	if c.sent[seq] == nil || !bytes.Equal(c.sent[seq], b) {
		c.errorf("%s: datagram %d (%d bytes) is not the one sent (%d bytes)", where, seq, len(b), len(c.sent[seq]))
		return nil, 0, false
	}
	return c, seq, true
}

// serverRecv echoes b to its sender.
func (r *dgRun[A]) serverRecv(b []byte, addr A) {
	c, seq, ok := r.parse(b, "server")
	if !ok {
		return
	}
	if r.byAddr[addr] != c {
		c.errorf("server: datagram %d from %v, client %d is %v", seq, addr, c.id, c.addr)
	}
	c.atServer[seq]++
	if c.atServer[seq] > 1 {
		c.errorf("server: datagram %d delivered %d times", seq, c.atServer[seq])
		return
	}
	err := r.server.tr.Write(b, addr)
	switch {
	case err == nil:
	case errors.Is(err, transports.ErrQueueFull):
		r.echoRef++
		if c.state[seq] == dgOut {
			c.state[seq] = dgEchoRefused
			c.outstanding--
			c.pump()
		}
	default:
		c.errorf("server: echo of datagram %d: %v", seq, err)
	}
	// Now and then pause reading for a moment (datagrams racing with the
	// pause must be held, not delivered, and none lost).
	if !r.server.paused && c.rng.IntN(16) == 0 {
		r.pauses++
		r.server.paused = true
		r.server.tr.PauseReading()
		r.h.loop.CallLater(time.Millisecond, func() {
			r.server.paused = false
			if r.server.stops == 0 {
				r.server.tr.ResumeReading()
			}
		})
	}
}

// clientRecv checks an echo.
func (c *dgClient[A]) recv(b []byte, _ A) {
	r := c.port.r
	c2, seq, ok := r.parse(b, fmt.Sprintf("client %d", c.id))
	if !ok {
		return
	}
	if c2 != c {
		c.errorf("echo of client %d's datagram %d delivered to client %d", c2.id, seq, c.id)
		return
	}
	switch c.state[seq] {
	case dgOut:
	case dgEchoed:
		c.errorf("echo of datagram %d delivered twice", seq)
		return
	default:
		c.errorf("echo of datagram %d in state %d", seq, c.state[seq])
		return
	}
	if seq < c.lastEcho {
		if r.ordered {
			c.errorf("echo of datagram %d after that of %d", seq, c.lastEcho)
		} else {
			r.h.t.Logf("client %d: echo of datagram %d after that of %d", c.id, seq, c.lastEcho)
		}
	}
	c.lastEcho = seq
	c.state[seq] = dgEchoed
	c.outstanding--
	c.pump()
}

func (r *dgRun[A]) finished() bool {
	for _, c := range r.clients {
		if c.next < nDatagrams || c.outstanding > 0 {
			return false
		}
	}
	return true
}

func (r *dgRun[A]) do() {
	h, t := r.h, r.h.t
	rng := rand.New(rand.NewPCG(r.seed, 11))
	r.byAddr = map[A]*dgClient[A]{}
	var ports []*dgPort[A]
	h.loop.Do(func() {
		for i := range nDgClients + 1 {
			p := &dgPort[A]{r: r, name: "server"}
			if i == 0 {
				p.recv = r.serverRecv
				r.server = p
			} else {
				c := &dgClient[A]{id: i - 1, port: p, rng: rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())),
					sent: make([][]byte, nDatagrams), state: make([]byte, nDatagrams), atServer: make([]int, nDatagrams)}
				p.name, p.recv = fmt.Sprintf("client %d", c.id), c.recv
				r.clients = append(r.clients, c)
			}
			queue := 0
			if i == 0 && r.seed%2 == 1 {
				// A short send queue and the least send buffer on
				// the server, so that echoes meet EAGAIN and are
				// queued, then refused with ErrQueueFull (an AF_UNIX
				// datagram is charged to its sender until read; a UDP
				// one is freed at loopback's transmit: no effect).
				queue = 1 + rng.IntN(4)
			}
			tr, err := r.listen(h.loop.Loop, i, queue, p)
			if err != nil {
				t.Errorf("listen %s: %v", p.name, err)
				return
			}
			if queue > 0 {
				if err := tr.SetWriteBuffer(1); err != nil {
					t.Errorf("SetWriteBuffer: %v", err)
				}
			}
			p.tr = tr
			ports = append(ports, p)
			if i > 0 {
				c := r.clients[i-1]
				c.addr = tr.LocalAddr()
				r.byAddr[c.addr] = c
			}
		}
	})
	if !t.Failed() && !h.loop.Eventually(15*time.Second, r.finished) {
		t.Errorf("datagrams neither echoed nor refused after 15 s")
	}
	var stopErrs []error
	h.loop.Do(func() {
		for _, p := range ports {
			if err := p.tr.StopListening(func() { p.done++ }); err != nil {
				stopErrs = append(stopErrs, fmt.Errorf("%s: StopListening: %w", p.name, err))
			}
		}
	})
	for _, err := range stopErrs {
		t.Error(err)
	}
	h.loop.Eventually(5*time.Second, func() bool {
		for _, p := range ports {
			if p.done == 0 {
				return false
			}
		}
		return true
	})
	inj := h.settle()
	h.stop(inj, func() { r.check(ports) })
	t.Logf("pauses %d, echoes refused %d, server %+v", r.pauses, r.echoRef, r.server.tr.Stats())
}

// check verifies the lifecycle and datagram invariants (the loop has
// stopped: its state may be read from the test goroutine).
func (r *dgRun[A]) check(ports []*dgPort[A]) {
	t := r.h.t
	for _, p := range ports {
		if p.starts != 1 || p.stops != 1 || p.done != 1 {
			t.Errorf("%s: StartProtocol %d, StopProtocol %d, StopListening done %d times (want 1 each)", p.name, p.starts, p.stops, p.done)
		}
		if p.after != 0 {
			t.Errorf("%s: %d calls after StopProtocol", p.name, p.after)
		}
		if p.pausedRecv != 0 {
			t.Errorf("%s: %d datagrams delivered while paused", p.name, p.pausedRecv)
		}
		if p.refusedCalls != 0 {
			t.Errorf("%s: ConnectionRefused %d times on an unconnected port", p.name, p.refusedCalls)
		}
	}
	var delivered, echoRefused uint64
	for _, c := range r.clients {
		for _, msg := range c.bad {
			t.Errorf("client %d: %s", c.id, msg)
		}
		var lost, echoed []int
		for seq, st := range c.state {
			switch st {
			case dgOut:
				lost = append(lost, seq)
			case dgEchoed:
				echoed = append(echoed, seq)
			case dgEchoRefused:
				echoRefused++
			}
			if c.atServer[seq] > 0 {
				delivered++
			}
		}
		if len(lost) > 0 {
			t.Errorf("client %d: %d datagrams accepted by Write and neither echoed nor refused: %v", c.id, len(lost), lost)
		}
		st := c.port.tr.Stats()
		if st.Refused != uint64(c.refused) {
			t.Errorf("client %d: Stats.Refused %d, Write refused %d", c.id, st.Refused, c.refused)
		}
		if st.Received != uint64(len(echoed)) {
			t.Errorf("client %d: Stats.Received %d, %d echoes delivered", c.id, st.Received, len(echoed))
		}
		if st.Truncated != 0 {
			t.Errorf("client %d: %d datagrams truncated", c.id, st.Truncated)
		}
	}
	st := r.server.tr.Stats()
	if st.Refused != echoRefused || uint64(r.echoRef) != echoRefused {
		t.Errorf("server: Stats.Refused %d, echoes refused %d (by state %d)", st.Refused, r.echoRef, echoRefused)
	}
	if st.Received != delivered {
		t.Errorf("server: Stats.Received %d, %d datagrams delivered", st.Received, delivered)
	}
}
