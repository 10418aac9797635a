package stream

import (
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ownerRec is an OpHandler recording what it saw; touched on the loop only,
// read by the test through Do/Eventually.
type ownerRec struct {
	fd       int
	data     []byte
	finals   map[int]int   // slot -> final completions
	fdOpen   map[int]bool  // slot -> the fd was open at its final completion
	errs     map[int]error // slot -> error of the final completion
	closed   int           // onClosed calls
	closedAt int           // number of final completions seen when onClosed ran
	onComp   func(slot int, c *backend.Completion)
}

func newOwnerRec(fd int) *ownerRec {
	return &ownerRec{fd: fd, finals: map[int]int{}, fdOpen: map[int]bool{}, errs: map[int]error{}}
}

func (r *ownerRec) OpComplete(slot int, c *backend.Completion) {
	if c.Res > 0 && c.Flags&backend.FlagBuffer != 0 {
		r.data = append(r.data, c.Buf...)
	}
	if !c.More() {
		r.finals[slot]++
		_, err := unix.FcntlInt(uintptr(r.fd), unix.F_GETFD, 0)
		r.fdOpen[slot] = err == nil
		r.errs[slot] = c.Err()
	}
	if r.onComp != nil {
		r.onComp(slot, c)
	}
}

func (r *ownerRec) nFinals() int {
	n := 0
	for _, v := range r.finals {
		n += v
	}
	return n
}

func socketpair(t *testing.T) [2]int {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	return fds
}

// peerSeesEOF reports whether reading fd returns end of stream (the other
// end was closed), waiting up to 5 s.
func peerSeesEOF(t *testing.T, fd int) bool {
	t.Helper()
	buf := make([]byte, 64)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, err := unix.Read(fd, buf)
		if n == 0 && err == nil {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

func TestOwnerClosesAfterLastFinalCompletion(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		base := reactortest.FDCount()
		fds := socketpair(t)
		r := newOwnerRec(fds[0])
		var o Owner
		h.Do(func() {
			o.Init(h.Loop, fds[0], r, func() {
				r.closed++
				r.closedAt = r.nFinals()
			})
			require.NoError(t, o.Submit(0, backend.Op{Kind: backend.KindRecv, Multishot: true, BufferSelect: true}))
			// A second op that never completes by itself.
			require.NoError(t, o.Submit(1, backend.Op{Kind: backend.KindPoll, Events: unix.POLLPRI}))
			require.ErrorIs(t, o.Submit(0, backend.Op{Kind: backend.KindRecv}), ErrOpBusy)
			require.ErrorIs(t, o.Submit(MaxOps, backend.Op{Kind: backend.KindNop}), ErrBadSlot)
		})
		_, err := unix.Write(fds[1], []byte("hello"))
		require.NoError(t, err)
		require.True(t, h.Eventually(5*time.Second, func() bool { return string(r.data) == "hello" }))
		h.Do(func() {
			require.Zero(t, r.nFinals(), "the multishot recv is still in flight")
			o.Close()
			o.Close() // idempotent
			require.True(t, o.Closing())
			require.Zero(t, r.closed, "never inside Close")
			require.ErrorIs(t, o.Submit(2, backend.Op{Kind: backend.KindNop}), transports.ErrClosed)
		})
		require.True(t, h.Eventually(5*time.Second, func() bool { return r.closed > 0 }))
		require.True(t, peerSeesEOF(t, fds[1]), "descriptor closed")
		// More turns: onClosed stays at one.
		for range 3 {
			h.Do(func() {})
		}
		h.Do(func() {
			require.Equal(t, 1, r.closed)
			require.Equal(t, map[int]int{0: 1, 1: 1}, r.finals, "one final completion per op")
			require.Equal(t, map[int]bool{0: true, 1: true}, r.fdOpen, "the fd was open at each final completion")
			require.Equal(t, 2, r.closedAt, "onClosed after both final completions")
			require.ErrorIs(t, r.errs[0], syscall.ECANCELED)
			require.True(t, o.Closed())
			require.Equal(t, -1, o.Fd())
			require.Zero(t, h.InFlight())
		})
		require.NoError(t, unix.Close(fds[1]))
		require.Equal(t, base, reactortest.FDCount(), "no descriptor leaked")
	})
}

func TestOwnerCloseIdle(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		base := reactortest.FDCount()
		fds := socketpair(t)
		closed := 0
		var o Owner
		h.Do(func() {
			o.Init(h.Loop, fds[0], newOwnerRec(fds[0]), func() { closed++ })
			o.Close()
			require.Zero(t, closed)
		})
		require.True(t, h.Eventually(5*time.Second, func() bool { return closed == 1 }))
		require.True(t, peerSeesEOF(t, fds[1]))
		require.NoError(t, unix.Close(fds[1]))
		require.Equal(t, base, reactortest.FDCount())
	})
}

func TestOwnerResubmitAndCloseFromHandler(t *testing.T) {
	// A final completion frees its slot before OpComplete runs, so the
	// handler can re-arm; Close from inside OpComplete closes once the op
	// that is completing is the last.
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		fds := socketpair(t)
		r := newOwnerRec(fds[0])
		var o Owner
		got := 0
		buf := make([]byte, 8)
		r.onComp = func(slot int, c *backend.Completion) {
			got++
			if got < 3 {
				require.NoError(t, o.Submit(0, backend.Op{Kind: backend.KindRecv, Buf: buf}))
				return
			}
			o.Close()
		}
		h.Do(func() {
			o.Init(h.Loop, fds[0], r, func() { r.closed++ })
			require.NoError(t, o.Submit(0, backend.Op{Kind: backend.KindRecv, Buf: buf}))
		})
		for range 3 {
			_, err := unix.Write(fds[1], []byte("x"))
			require.NoError(t, err)
			time.Sleep(5 * time.Millisecond)
		}
		require.True(t, h.Eventually(5*time.Second, func() bool { return r.closed == 1 }))
		require.True(t, peerSeesEOF(t, fds[1]))
		h.Do(func() { require.Equal(t, 3, got) })
		require.NoError(t, unix.Close(fds[1]))
	})
}

func TestOwnerClosesEvenIfHandlerPanics(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		fds := socketpair(t)
		r := newOwnerRec(fds[0])
		r.onComp = func(int, *backend.Completion) { panic("handler boom") }
		var o Owner
		h.Do(func() {
			o.Init(h.Loop, fds[0], r, func() { r.closed++ })
			require.NoError(t, o.Submit(0, backend.Op{Kind: backend.KindRecv, Multishot: true, BufferSelect: true}))
			o.Close()
		})
		require.True(t, h.Eventually(5*time.Second, func() bool { return r.closed == 1 }))
		require.True(t, peerSeesEOF(t, fds[1]))
		require.NotEmpty(t, h.Errors(), "the panic was reported")
		require.NoError(t, unix.Close(fds[1]))
	})
}

func TestOwnerRelease(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		fds := socketpair(t)
		r := newOwnerRec(fds[0])
		var o Owner
		h.Do(func() {
			o.Init(h.Loop, fds[0], r, func() { r.closed++ })
			require.NoError(t, o.Submit(0, backend.Op{Kind: backend.KindPoll, Events: unix.POLLOUT}))
			_, err := o.Release()
			require.ErrorIs(t, err, ErrOpBusy)
		})
		require.True(t, h.Eventually(5*time.Second, func() bool { return !o.Busy() }))
		h.Do(func() {
			fd, err := o.Release()
			require.NoError(t, err)
			require.Equal(t, fds[0], fd)
			_, err = o.Release()
			require.ErrorIs(t, err, transports.ErrClosed)
			require.ErrorIs(t, o.Submit(0, backend.Op{Kind: backend.KindNop}), transports.ErrClosed)
			o.Close() // no-op: the descriptor is not ours any more
			require.False(t, o.Closing())
		})
		for range 3 {
			h.Do(func() {})
		}
		h.Do(func() { require.Zero(t, r.closed) })
		_, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GETFD, 0)
		require.NoError(t, err, "Release does not close")
		require.NoError(t, unix.Close(fds[0]))
		require.NoError(t, unix.Close(fds[1]))
	})
}

// refusingLoop is a Loop whose Submit fails (as a closing backend's does);
// CallLater queues for the test to run.
type refusingLoop struct {
	mu    sync.Mutex
	later []func()
}

func (l *refusingLoop) Submit(*backend.Op, reactor.Handler) error { return backend.ErrClosed }
func (l *refusingLoop) Cancel(backend.Token)                      {}
func (l *refusingLoop) CallLater(_ time.Duration, f func()) clock.Call {
	l.mu.Lock()
	l.later = append(l.later, f)
	l.mu.Unlock()
	return clock.Call{}
}

func TestOwnerCloseWhenLoopRefuses(t *testing.T) {
	var p [2]int
	require.NoError(t, unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC))
	base := reactortest.FDCount()
	l := &refusingLoop{}
	closed := 0
	var o Owner
	o.Init(l, p[1], newOwnerRec(p[1]), func() { closed++ })
	require.ErrorIs(t, o.Submit(0, backend.Op{Kind: backend.KindWrite, Buf: []byte("x")}), backend.ErrClosed)
	require.False(t, o.Busy(), "a refused op is not in flight")
	o.Close()
	require.Zero(t, closed, "reported on a later turn, not inside Close")
	require.Equal(t, base-1, reactortest.FDCount(), "closed directly")
	require.Len(t, l.later, 1)
	l.later[0]()
	l.later[0]()
	require.Equal(t, 1, closed)
	require.True(t, o.Closed())
	require.NoError(t, unix.Close(p[0]))
}

func TestOwnerIgnoresForeignOps(t *testing.T) {
	var o Owner
	r := newOwnerRec(-1)
	o.Init(&refusingLoop{}, -1, r, nil)
	o.Complete(&backend.Op{}, &backend.Completion{})
	require.Zero(t, r.nFinals())
	require.False(t, o.InFlight(-1))
	require.False(t, o.InFlight(MaxOps))
	o.Cancel(7)
}
