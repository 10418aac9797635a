package streamsuite

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
)

// stopPeer is how the far end of a connection behaves while the loop stops.
type stopPeer int

const (
	peerReads     stopPeer = iota // reads everything until EOF, then closes
	peerNeverRead                 // never reads, never closes (gone without RST)
	peerHalfOpen                  // sends FIN at once, then never reads or closes
)

func (p stopPeer) String() string {
	return [...]string{"reads", "never-reads", "half-open"}[p]
}

// stopBig is queued by the "queued" resources: far more than a peer that
// does not read can take (its receive buffer is kept small).
const stopBig = 8 << 20

// halfStrict is a strict protocol that is also half-closeable.
type halfStrict struct {
	*strict
	readLost  atomic.Int32
	writeLost atomic.Int32
	onReadEOF func(s *strict)
}

func (h *halfStrict) ReadConnectionLost() {
	h.readLost.Add(1)
	if h.onReadEOF != nil {
		h.onReadEOF(h.strict)
	}
}
func (h *halfStrict) WriteConnectionLost() { h.writeLost.Add(1) }

// countProducer is a push producer counting the calls it gets.
type countProducer struct{ pause, resume, stop atomic.Int32 }

func (p *countProducer) PauseProducing()  { p.pause.Add(1) }
func (p *countProducer) ResumeProducing() { p.resume.Add(1) }
func (p *countProducer) StopProducing()   { p.stop.Add(1) }

// stopResource is one kind of connection state at Stop.
type stopResource struct {
	name string
	// setup configures the connection's protocol (on the loop, in
	// ConnectionMade); prod, when set, is registered as a push producer.
	made func(s *strict)
	half bool // the protocol is half-closeable; ReadConnectionLost writes stopBig
	prod bool
	// big: a peer that does not read cannot take what this connection
	// queued, so the graceful close cannot finish and Stop must abort it.
	big bool
}

var stopResources = []stopResource{
	{name: "idle"},
	{name: "queued", big: true, made: func(s *strict) { _ = s.tr.Write(make([]byte, stopBig)) }},
	{name: "producer", big: true, prod: true, made: func(s *strict) { _ = s.tr.Write(make([]byte, stopBig)) }},
	{name: "paused", made: func(s *strict) { s.tr.PauseReading() }},
	{name: "half-closed", made: func(s *strict) { _ = s.tr.CloseWrite() }},
	// Writes stopBig once the peer half-closes: only the half-open peer does.
	{name: "peer-half-closed", half: true},
}

// rawPeerSocket makes a blocking socket of k's family with a small receive
// buffer.
func rawPeerSocket(t *testing.T, k *Kind) int {
	fd := rawSocket(t, k)
	require.NoError(t, unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 64<<10))
	return fd
}

// behave makes fd act as peer; it returns a channel closed when the peer is
// finished with fd (for peerReads: read EOF or an error), and the test closes
// fd after the loop stopped.
func behave(t *testing.T, fd int, peer stopPeer) <-chan struct{} {
	done := make(chan struct{})
	switch peer {
	case peerReads:
		go func() {
			defer close(done)
			buf := make([]byte, 256<<10)
			for {
				n, err := unix.Read(fd, buf)
				if n <= 0 || err != nil {
					return
				}
			}
		}()
	case peerHalfOpen:
		require.NoError(t, unix.Shutdown(fd, unix.SHUT_WR))
		close(done)
	default:
		close(done)
	}
	return done
}

// TestStopEndsEveryResource: whatever state a connection is in and whatever
// its peer does, Stop ends it: ConnectionLost exactly once, with
// ErrConnectionDone (and reactor.ErrStopped) when its queue was flushed and
// closed cleanly within DrainTimeout, and with ErrConnectionLost (and
// reactor.ErrDrainTimeout) when it had to be aborted; producers get
// StopProducing once; the port ends (Done); a connect hanging on a full
// backlog fails once with ErrConnectStopped; no descriptor or goroutine is
// left. Server side (accepted) and client side (Kind.Connect) connections.
func testStopEndsEveryResource(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		for _, side := range []string{"server", "client"} {
			for _, res := range stopResources {
				for _, peer := range []stopPeer{peerReads, peerNeverRead, peerHalfOpen} {
					t.Run(fmt.Sprintf("%s/%s/%s", side, res.name, peer), func(t *testing.T) {
						stopOne(t, k, kind, side == "client", res, peer)
					})
				}
			}
		}
		t.Run("connector-full-backlog", func(t *testing.T) {
			if why := needHungConnect(k.Caps); why != "" {
				t.Skip(why)
			}
			stopHungConnect(t, k, kind)
		})
	})
}

func stopOne(t *testing.T, k *Kind, kind reactor.BackendKind, client bool, res stopResource, peer stopPeer) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	before := reactortest.FDCount()
	beforeList := fdList()
	h := reactortest.Start(t, kind, reactor.Config{DrainTimeout: 300 * time.Millisecond})

	s := newStrict(t, res.name)
	var hs *halfStrict
	var proto transports.Protocol = s
	if res.half {
		hs = &halfStrict{strict: s, onReadEOF: func(s *strict) { _ = s.tr.Write(make([]byte, stopBig)) }}
		proto = hs
	}
	prod := &countProducer{}
	made := make(chan struct{})
	s.onMade = func(s *strict) {
		if res.prod {
			require.NoError(t, s.tr.RegisterProducer(prod, true))
		}
		if res.made != nil {
			res.made(s)
		}
		close(made)
	}

	var peerFD int
	var port Port
	var cf *cancelClient
	if client {
		lfd, addr := rawListener(t, k, 1)
		// The accepted socket inherits the listener's small receive buffer.
		require.NoError(t, unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_RCVBUF, 64<<10))
		cf = &cancelClient{proto: s, done: make(chan struct{})}
		f := transports.ClientFactory(cf)
		if res.half {
			f = &halfClient{cancelClient: cf, proto: hs}
		}
		_, err := k.Connect(h.Loop, addr, f, 0)
		require.NoError(t, err)
		peerFD, _, err = unix.Accept(lfd)
		_ = unix.Close(lfd)
		require.NoError(t, err)
	} else {
		f := transports.FactoryFunc(func(net.Addr) transports.Protocol { return proto })
		var err error
		port, err = k.listen(t, h, f)
		require.NoError(t, err)
		peerFD = rawPeerSocket(t, k)
		require.NoError(t, unix.Connect(peerFD, sockaddrOf(t, k, port.Addr())))
	}
	defer func() { _ = unix.Close(peerFD) }()
	select {
	case <-made:
	case <-time.After(10 * time.Second):
		t.Fatal("no ConnectionMade")
	}
	peerDone := behave(t, peerFD, peer)
	if res.half && peer == peerHalfOpen {
		require.True(t, h.Eventually(10*time.Second, func() bool { return hs.readLost.Load() == 1 }))
	}
	h.Do(func() {}) // what ConnectionMade queued has been handed to the kernel

	h.StopWait()
	select {
	case <-peerDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the reading peer did not see the end of the connection")
	}

	madeN, lostN, _, reason := s.state()
	require.Equal(t, 1, madeN)
	require.Equal(t, 1, lostN, "ConnectionLost count")
	big := res.big || (res.half && peer == peerHalfOpen)
	if big && peer != peerReads {
		require.ErrorIs(t, reason, transports.ErrConnectionLost)
		require.ErrorIs(t, reason, reactor.ErrDrainTimeout)
		require.ErrorIs(t, reason, reactor.ErrStopped)
	} else {
		require.ErrorIs(t, reason, transports.ErrConnectionDone)
		require.NotErrorIs(t, reason, transports.ErrConnectionLost)
		if peer != peerHalfOpen || res.half {
			// (Else the peer's FIN may have closed it before Stop.)
			require.ErrorIs(t, reason, reactor.ErrStopped)
		}
	}
	if res.prod {
		require.EqualValues(t, 1, prod.stop.Load(), "StopProducing count")
	}
	if port != nil {
		select {
		case <-port.Done():
		default:
			t.Fatal("the port did not finish closing")
		}
	}
	if cf != nil {
		cf.mu.Lock()
		require.Empty(t, cf.failed)
		require.Len(t, cf.lost, 1, "ClientConnectionLost count")
		cf.mu.Unlock()
	}
	_ = unix.Close(peerFD)
	peerFD = -1
	if n := reactortest.FDCount(); n > before {
		t.Fatalf("descriptors left after the loop stopped: %d > %d\nbefore %v\nafter  %v", n, before, beforeList, fdList())
	}
}

// halfClient is a cancelClient whose protocol is half-closeable.
type halfClient struct {
	*cancelClient
	proto *halfStrict
}

func (f *halfClient) BuildProtocol(net.Addr) transports.Protocol { return f.proto }

// stopHungConnect: a connector whose connect hangs on a full backlog when the
// loop stops fails once with ErrConnectStopped, and its socket is closed.
func stopHungConnect(t *testing.T, k *Kind, kind reactor.BackendKind) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addr := fullBacklog(t, k)
	before := reactortest.FDCount()
	h := reactortest.Start(t, kind, reactor.Config{DrainTimeout: 300 * time.Millisecond})
	f := &cancelClient{proto: newStrict(t, "never"), done: make(chan struct{})}
	_, err := k.Connect(h.Loop, addr, f, time.Minute)
	require.NoError(t, err)
	h.Do(func() {})
	h.StopWait()
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.failed, 1)
	require.True(t, errors.Is(f.failed[0], transports.ErrConnectStopped), "%v", f.failed[0])
	require.Empty(t, f.lost)
	require.LessOrEqual(t, reactortest.FDCount(), before)
}
