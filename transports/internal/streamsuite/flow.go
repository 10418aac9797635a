package streamsuite

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
	"weak"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
)

// TestPeerCloseWhileRecvInFlight: an idle connection (its receive armed and
// waiting) whose peer closes gets ConnectionLost(ErrConnectionDone) once; a
// peer reset gives ErrConnectionLost wrapping ECONNRESET. Server and client
// side.
func testPeerCloseWhileRecvInFlight(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		for _, reset := range []bool{false, true} {
			t.Run(fmt.Sprintf("server reset=%v", reset), func(t *testing.T) {
				if why := needReset(k.Caps); reset && why != "" {
					t.Skip(why)
				}
				p, built := strictServer(t, k, h, func(i int) *strict { return newStrict(t, "server") })
				c := Dial(t, k, p)
				s := waitBuilt(t, built, 1)[0]
				waitMade(t, s)
				settle(h) // the receive is in flight, nothing arrives
				if reset {
					resetConn(t, c)
				} else {
					require.NoError(t, c.Close())
				}
				s.waitLost(t, 5*time.Second)
				settle(h)
				_, lost, n, reason := s.state()
				require.Equal(t, 1, lost)
				require.Zero(t, n)
				if reset {
					require.ErrorIs(t, reason, transports.ErrConnectionLost)
					require.ErrorIs(t, reason, syscall.ECONNRESET)
				} else {
					require.ErrorIs(t, reason, transports.ErrConnectionDone)
				}
			})
			t.Run(fmt.Sprintf("client reset=%v", reset), func(t *testing.T) {
				if why := needReset(k.Caps); reset && why != "" {
					t.Skip(why)
				}
				ln := k.netListen(t)
				defer ln.Close()
				f := &cancelClient{proto: newStrict(t, "client"), done: make(chan struct{})}
				_, err := k.Connect(h.Loop, ln.Addr().String(), f, 0)
				require.NoError(t, err)
				peer, err := ln.Accept()
				require.NoError(t, err)
				waitMade(t, f.proto)
				settle(h)
				if reset {
					resetConn(t, peer)
				} else {
					require.NoError(t, peer.Close())
				}
				select {
				case <-f.done:
				case <-time.After(5 * time.Second):
					t.Fatal("client connection not lost")
				}
				settle(h)
				_, lost, _, reason := f.proto.state()
				require.Equal(t, 1, lost)
				f.mu.Lock()
				defer f.mu.Unlock()
				require.Len(t, f.lost, 1)
				if reset {
					require.ErrorIs(t, reason, syscall.ECONNRESET)
				} else {
					require.ErrorIs(t, reason, transports.ErrConnectionDone)
				}
			})
		}
	})
}

// pumpPeer writes total bytes of a deterministic stream to c and returns the
// stream's hash; it stops early on a write error.
func pumpPeer(c net.Conn, total int, seed byte) [32]byte {
	h := sha256.New()
	buf := make([]byte, 16<<10)
	for sent := 0; sent < total; {
		n := min(len(buf), total-sent)
		for i := range buf[:n] {
			buf[i] = seed + byte(sent+i)
		}
		if _, err := c.Write(buf[:n]); err != nil {
			break
		}
		h.Write(buf[:n])
		sent += n
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// hashing is a strict protocol hashing what it receives.
type hashing struct {
	*strict
	mu sync.Mutex
	h  interface {
		Write([]byte) (int, error)
		Sum([]byte) []byte
	}
}

func newHashing(t *testing.T, name string) *hashing {
	hs := &hashing{strict: newStrict(t, name), h: sha256.New()}
	hs.onData = func(_ *strict, p []byte) {
		hs.mu.Lock()
		hs.h.Write(p)
		hs.mu.Unlock()
	}
	return hs
}

func (hs *hashing) digest() []byte {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.h.Sum(nil)
}

// TestSlowConsumerOthersFlow: one connection pauses reading for a while
// (its peer keeps sending until the windows fill) and then consumes slowly,
// while 10 echo connections run to completion; the pool is small, so
// receive buffers run out (ENOBUFS on io_uring) along the way. Afterwards
// every byte of the slow stream has arrived, in order.
func testSlowConsumerOthersFlow(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind, reactor.Config{Sizes: backend.Config{BufferCount: 16, BufferSize: 2048}})
		var slow *hashing
		first := true
		var mu sync.Mutex
		p, built := strictServer(t, k, h, func(i int) *strict {
			mu.Lock()
			defer mu.Unlock()
			if first {
				first = false
				slow = newHashing(t, "slow")
				slow.onMade = func(s *strict) { s.tr.PauseReading() }
				inner := slow.onData
				chunks := 0
				slow.onData = func(s *strict, p []byte) {
					inner(s, p)
					if chunks++; chunks%64 == 0 {
						time.Sleep(time.Millisecond) // a slow consumer holds the loop now and then
					}
				}
				return slow.strict
			}
			s := newStrict(t, fmt.Sprintf("echo %d", i))
			s.onData = func(s *strict, p []byte) { _ = s.tr.Write(p) }
			return s
		})
		slowTotal := scaled(8<<20, 2<<20)
		slowPeer := Dial(t, k, p)
		waitBuilt(t, built, 1)
		wantSlow := make(chan [32]byte, 1)
		go func() { wantSlow <- pumpPeer(slowPeer, slowTotal, 7) }()

		// The echo connections run to completion while the slow one is paused.
		const nEcho = 10
		echoTotal := scaled(1<<20, 256<<10)
		var wg sync.WaitGroup
		errs := make(chan error, nEcho)
		for i := 0; i < nEcho; i++ {
			c := Dial(t, k, p)
			wg.Add(1)
			go func() {
				defer wg.Done()
				go pumpPeer(c, echoTotal, byte(i))
				got := make([]byte, echoTotal)
				if _, err := io.ReadFull(c, got); err != nil {
					errs <- err
					return
				}
				want := make([]byte, echoTotal)
				for j := range want {
					want[j] = byte(i) + byte(j)
				}
				if !bytes.Equal(want, got) {
					errs <- fmt.Errorf("echo %d: stream differs", i)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		_, _, n, _ := slow.state()
		require.Zero(t, n, "data delivered to the paused connection")

		h.Do(func() { slow.tr.ResumeReading() })
		var want [32]byte
		select {
		case want = <-wantSlow:
		case <-time.After(30 * time.Second):
			t.Fatal("slow peer could not send everything")
		}
		require.True(t, h.Eventually(30*time.Second, func() bool {
			_, _, n, _ := slow.state()
			return n >= slowTotal
		}), "slow connection did not receive everything")
		_, _, n, _ = slow.state()
		require.Equal(t, slowTotal, n)
		require.Equal(t, want[:], slow.digest())
	})
}

// TestHotConnectionsDoNotStarveOthers: 20 peers send as fast as they can to
// echoing connections; within a bounded time every connection must have
// received data (no connection is starved by the others).
func testHotConnectionsDoNotStarveOthers(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		const nConn = 20
		p, built := strictServer(t, k, h, func(i int) *strict {
			s := newStrict(t, fmt.Sprintf("hot %d", i))
			s.onData = func(s *strict, p []byte) { _ = s.tr.Write(p) }
			return s
		})
		var peers sync.WaitGroup
		var conns []net.Conn
		t.Cleanup(func() {
			for _, c := range conns {
				_ = c.Close()
			}
			peers.Wait()
		})
		for i := 0; i < nConn; i++ {
			c := Dial(t, k, p)
			conns = append(conns, c)
			peers.Add(2)
			go func() {
				defer peers.Done()
				buf := make([]byte, 8<<10)
				for {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
			go func() {
				defer peers.Done()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
		ok := h.Eventually(5*time.Second, func() bool {
			b := built()
			if len(b) < nConn {
				return false
			}
			for _, s := range b {
				if _, _, n, _ := s.state(); n == 0 {
					return false
				}
			}
			return true
		})
		if !ok {
			var counts []int
			for _, s := range built() {
				_, _, n, _ := s.state()
				counts = append(counts, n)
			}
			t.Fatalf("some connections starved (bytes received per connection): %v", counts)
		}
	})
}

// TestNoProtocolRetainedAfterConnectionLost: once ConnectionLost has run,
// neither the protocol nor the transport is reachable from the loop, the
// port or the connector (weak pointers go nil after GC).
func testNoProtocolRetainedAfterConnectionLost(t *testing.T, k *Kind) {
	type probe struct {
		proto   weak.Pointer[strict]
		trAlive func() bool
	}
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		var mu sync.Mutex
		var probes []probe
		lost := make(chan struct{}, 64)
		track := func(s *strict) {
			s.onMade = func(s *strict) {
				mu.Lock()
				probes = append(probes, probe{proto: weak.Make(s), trAlive: k.Weak(s.tr)})
				mu.Unlock()
			}
			s.onLost = func(*strict) { lost <- struct{}{} }
		}
		f := transports.FactoryFunc(func(net.Addr) transports.Protocol {
			s := newStrict(t, "server")
			s.onData = func(s *strict, p []byte) { _ = s.tr.Write(p) }
			track(s)
			return s
		})
		p, err := k.listen(t, h, f)
		require.NoError(t, err)
		defer h.Do(func() { _ = p.Close() })

		const n = 4
		// Server side: echo a little, then the peer closes.
		for i := 0; i < n; i++ {
			c := Dial(t, k, p)
			_, _ = c.Write([]byte("ping"))
			buf := make([]byte, 4)
			_, err := io.ReadFull(c, buf)
			require.NoError(t, err)
			require.NoError(t, c.Close())
		}
		// Client side: connect, exchange, LoseConnection; and one Abort.
		for i := 0; i < n; i++ {
			s := newStrict(t, "client")
			track(s)
			abort := i == 0
			made := s.onMade
			s.onMade = func(s *strict) { made(s); _ = s.tr.Write([]byte("ping")) }
			s.onData = func(s *strict, _ []byte) {
				if abort {
					_ = s.tr.Abort()
				} else {
					_ = s.tr.LoseConnection()
				}
			}
			cf := &cancelClient{proto: s, done: make(chan struct{})}
			_, err := k.Connect(h.Loop, p.Addr().String(), cf, 0)
			require.NoError(t, err)
			<-cf.done
			cf.proto = nil
		}
		// n server-side, n client connections and their n server sides.
		for i := 0; i < 3*n; i++ {
			select {
			case <-lost:
			case <-time.After(5 * time.Second):
				t.Fatalf("only %d of %d connections lost", i, 3*n)
			}
		}
		settle(h)
		var alive int
		for try := 0; try < 10; try++ {
			runtime.GC()
			h.Do(func() {}) // let the loop turn (and drop what it still held)
			alive = 0
			mu.Lock()
			for _, pr := range probes {
				if pr.proto.Value() != nil || pr.trAlive() {
					alive++
				}
			}
			mu.Unlock()
			if alive == 0 {
				break
			}
		}
		mu.Lock()
		require.Len(t, probes, 3*n)
		for i, pr := range probes {
			require.Nil(t, pr.proto.Value(), "protocol %d still reachable after ConnectionLost", i)
			require.False(t, pr.trAlive(), "transport %d still reachable after ConnectionLost", i)
		}
		mu.Unlock()
	})
}
