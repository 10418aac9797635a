package streamsuite

import (
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
)

// strict is a Protocol that checks Twisted's contract as it goes:
// ConnectionMade once, DataReceived only between ConnectionMade and
// ConnectionLost, ConnectionLost exactly once, nothing after it. Every
// violation fails the test at once (from the loop goroutine; t.Errorf is
// goroutine-safe). Its fields are guarded by mu so tests may read them from
// their own goroutine; the hooks run on the loop without mu held.
type strict struct {
	t    testing.TB
	name string

	mu     sync.Mutex
	tr     transports.Transport
	made   int
	lost   int
	reason error
	n      int    // bytes received
	keep   bool   // keep received bytes in got
	got    []byte // received bytes (when keep)
	// stopped: abort or lose was called through the helpers below; no
	// DataReceived may follow. inside: such a call is running; ConnectionLost
	// must not run inside it.
	stopped bool
	inside  int

	lostCh chan struct{} // closed by the first ConnectionLost
	onMade func(s *strict)
	onData func(s *strict, p []byte)
	onLost func(s *strict)
}

func newStrict(t testing.TB, name string) *strict {
	return &strict{t: t, name: name, lostCh: make(chan struct{})}
}

func (s *strict) ConnectionMade(tr transports.Transport) {
	s.mu.Lock()
	s.made++
	made, lost := s.made, s.lost
	s.tr = tr
	s.mu.Unlock()
	if made != 1 || lost != 0 {
		s.t.Errorf("%s: ConnectionMade #%d (lost %d)", s.name, made, lost)
	}
	if s.onMade != nil {
		s.onMade(s)
	}
}

func (s *strict) DataReceived(p []byte) {
	s.mu.Lock()
	made, lost, stopped := s.made, s.lost, s.stopped
	s.n += len(p)
	if s.keep {
		s.got = append(s.got, p...)
	}
	s.mu.Unlock()
	if made != 1 || lost != 0 {
		s.t.Errorf("%s: DataReceived(%d bytes) with made=%d lost=%d", s.name, len(p), made, lost)
	}
	if stopped {
		s.t.Errorf("%s: DataReceived(%d bytes) after Abort/LoseConnection", s.name, len(p))
	}
	if s.onData != nil {
		s.onData(s, p)
	}
}

func (s *strict) ConnectionLost(reason error) {
	s.mu.Lock()
	s.lost++
	made, lost, inside := s.made, s.lost, s.inside
	if lost == 1 {
		s.reason = reason
	}
	s.mu.Unlock()
	if inside > 0 {
		s.t.Errorf("%s: ConnectionLost inside Abort/LoseConnection", s.name)
	}
	if made != 1 || lost != 1 {
		s.t.Errorf("%s: ConnectionLost #%d (made %d): %v", s.name, lost, made, reason)
		return
	}
	close(s.lostCh)
	if s.onLost != nil {
		s.onLost(s)
	}
}

// abort calls Abort on the transport, recording that reading has stopped.
// Loop goroutine only.
func (s *strict) abort() error { return s.stop(transports.Transport.Abort) }

// lose calls LoseConnection likewise.
func (s *strict) lose() error { return s.stop(transports.Transport.LoseConnection) }

func (s *strict) stop(f func(transports.Transport) error) error {
	s.mu.Lock()
	s.stopped = true
	s.inside++
	tr := s.tr
	s.mu.Unlock()
	err := f(tr)
	s.mu.Lock()
	s.inside--
	s.mu.Unlock()
	return err
}

// state returns a consistent snapshot.
func (s *strict) state() (made, lost, n int, reason error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.made, s.lost, s.n, s.reason
}

func (s *strict) received() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.got...)
}

func (s *strict) transport() transports.Transport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tr
}

// waitLost waits (up to d) for ConnectionLost.
func (s *strict) waitLost(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case <-s.lostCh:
	case <-time.After(d):
		made, lost, n, _ := s.state()
		t.Fatalf("%s: no ConnectionLost within %v (made %d, lost %d, %d bytes)", s.name, d, made, lost, n)
	}
}

// strictServer listens on a fresh address of k and builds protocols with mk
// (given the accept index). It returns the port and the protocols built so
// far.
func strictServer(t *testing.T, k *Kind, h *reactortest.Loop, mk func(i int) *strict) (Port, func() []*strict) {
	t.Helper()
	var mu sync.Mutex
	var built []*strict
	f := transports.FactoryFunc(func(net.Addr) transports.Protocol {
		mu.Lock()
		s := mk(len(built))
		built = append(built, s)
		mu.Unlock()
		return s
	})
	p, err := k.listen(t, h, f)
	require.NoError(t, err)
	t.Cleanup(func() {
		select {
		case <-h.Done():
		default:
			h.Do(func() { _ = p.Close() })
		}
	})
	return p, func() []*strict {
		mu.Lock()
		defer mu.Unlock()
		return append([]*strict(nil), built...)
	}
}

// waitBuilt waits until at least n protocols were built and returns them.
func waitBuilt(t *testing.T, built func() []*strict, n int) []*strict {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b := built()
		if len(b) >= n {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d connections accepted", len(b), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitMade waits until s got ConnectionMade.
func waitMade(t *testing.T, s *strict) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if made, _, _, _ := s.state(); made > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no ConnectionMade", s.name)
		}
		time.Sleep(time.Millisecond)
	}
}

// socketFD finds the descriptor of this process whose socket has exactly this
// local and peer address (as sockaddrString gives them; -1 if none).
func socketFD(local, peer string) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		link, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || !strings.HasPrefix(link, "socket:") {
			continue
		}
		la, err1 := unix.Getsockname(fd)
		pa, err2 := unix.Getpeername(fd)
		if err1 != nil || err2 != nil {
			continue
		}
		if sockaddrString(la) == local && sockaddrString(pa) == peer {
			return fd
		}
	}
	return -1
}

// scaled returns n, divided under -short and under the race detector.
func scaled(n, short int) int {
	if testing.Short() {
		n = short
	}
	if raceEnabled {
		n /= 4
	}
	return max(n, 1)
}

// fdList describes this process's descriptors (for failure messages).
func fdList() map[string]string {
	out := map[string]string{}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		out[e.Name()] = l
	}
	return out
}
