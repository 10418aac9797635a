package reactor_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/uring"
)

// errLog collects the errors a loop reports (goroutine-safe).
type errLog struct {
	mu   sync.Mutex
	errs []error
}

func (e *errLog) add(err error) { e.mu.Lock(); e.errs = append(e.errs, err); e.mu.Unlock() }

func (e *errLog) count(target error) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, err := range e.errs {
		if errors.Is(err, target) {
			n++
		}
	}
	return n
}

// newLoop creates (but does not run) a loop of kind, skipping where io_uring
// is unavailable. Its errors go to the returned log.
func newLoop(t *testing.T, kind reactor.BackendKind, cfg reactor.Config) (*reactor.Loop, *errLog) {
	t.Helper()
	log := &errLog{}
	cfg.Backend, cfg.IgnoreEnv, cfg.OnError = kind, true, log.add
	l, err := reactor.New(cfg)
	if errors.Is(err, uring.ErrUnavailable) {
		t.Skip(err)
	}
	require.NoError(t, err)
	return l, log
}

// runLoop runs l on a new goroutine and returns Run's result channel.
func runLoop(l *reactor.Loop) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- l.Run(context.Background()) }()
	return ch
}

// waitDone waits for l to stop; the bound only guards against a hang.
func waitDone(t *testing.T, l *reactor.Loop) {
	t.Helper()
	select {
	case <-l.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("loop never stopped")
	}
}

// opRes is a Resource owning one multishot recv op, which its Shutdown cancels.
type opRes struct {
	l        *reactor.Loop
	op       backend.Op
	shutdown int
	reason   error
	finals   int
}

func (r *opRes) Shutdown(reason error) {
	r.shutdown++
	r.reason = reason
	r.l.Cancel(r.op.Token)
}

func (r *opRes) Complete(_ *backend.Op, c *backend.Completion) {
	if !c.More() {
		r.finals++
	}
}

// start tracks r and arms its op on fd. Loop goroutine only.
func (r *opRes) start(t *testing.T, fd int) {
	r.l.Track(r)
	r.op = backend.Op{Kind: backend.KindRecv, Fd: int32(fd), Multishot: true, BufferSelect: true}
	require.NoError(t, r.l.Submit(&r.op, r))
}

func socketpair(t *testing.T) [2]int {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return [2]int(fds)
}

// A "before shutdown" trigger finished by another goroutine through Call: the
// Call is accepted (the loop still runs calls while it waits) and shutdown
// does not wait out ShutdownTimeout.
func TestCallAcceptedWhileBeforeShutdownTriggerWaits(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		l, log := newLoop(t, kind, reactor.Config{ShutdownTimeout: 3 * time.Second})
		callErr := make(chan error, 1)
		l.AddSystemEventTrigger(reactor.Shutdown, reactor.Before, func(done func()) {
			go func() { callErr <- l.Call(done) }()
		})
		ran := runLoop(l)
		require.NoError(t, l.Call(l.Stop))
		waitDone(t, l)
		require.NoError(t, <-ran)
		require.NoError(t, <-callErr, "Call made while the loop still runs calls was refused")
		require.Zero(t, log.count(reactor.ErrShutdownTimeout), "the trigger's done never ran")
		require.ErrorIs(t, l.Call(func() {}), reactor.ErrStopped)
	})
}

// Calls racing with Stop from many goroutines: every Call that returned nil
// ran exactly once; every later one returned ErrStopped.
func TestEveryAcceptedCallRuns(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		l, _ := newLoop(t, kind, reactor.Config{})
		ran := runLoop(l)
		const G, N = 8, 20000
		var accepted, executed, refused atomic.Int64
		var wg sync.WaitGroup
		for g := 0; g < G; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < N; i++ {
					if err := l.Call(func() { executed.Add(1) }); err != nil {
						require.ErrorIs(t, err, reactor.ErrStopped)
						refused.Add(1)
						return
					}
					accepted.Add(1)
					if i%64 == 0 {
						runtime.Gosched()
					}
				}
			}()
		}
		require.True(t, reactortest.WaitUntil(10*time.Second, func() bool { return executed.Load() >= G*N/4 }))
		l.Stop()
		wg.Wait()
		waitDone(t, l)
		require.NoError(t, <-ran)
		require.Equal(t, accepted.Load(), executed.Load(), "accepted calls were dropped")
		require.ErrorIs(t, l.Call(func() {}), reactor.ErrStopped)
	})
}

// Stop while a Startup "before" trigger has not called done: Stop wins, the
// rest of start-up is skipped, shutdown runs, and the loop sleeps while it
// waits (a handful of turns, not a spin).
func TestStopWhileStartupTriggerPending(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		l, _ := newLoop(t, kind, reactor.Config{})
		started := make(chan struct{})
		var events []string
		l.AddSystemEventTrigger(reactor.Startup, reactor.Before, func(func()) { close(started) })
		l.AddTrigger(reactor.Startup, reactor.During, func() { events = append(events, "startup-during") })
		l.AddTrigger(reactor.Shutdown, reactor.During, func() { events = append(events, "shutdown-during") })
		ran := runLoop(l)
		<-started
		// Let the loop wait a while: a spinning loop turns thousands of times.
		time.Sleep(50 * time.Millisecond)
		l.Stop()
		waitDone(t, l)
		require.NoError(t, <-ran)
		require.Equal(t, []string{"shutdown-during"}, events)
		require.LessOrEqual(t, reactor.Turns(l), uint64(10), "the loop spun while a startup trigger was pending")
	})
}

// Stop while a Shutdown "before" trigger never calls done: shutdown goes on
// after ShutdownTimeout, reported once, and the loop slept meanwhile (it
// neither spins nor polls).
func TestShutdownTriggerPendingTimesOutAsleep(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		l, log := newLoop(t, kind, reactor.Config{ShutdownTimeout: time.Second})
		var events []string
		l.AddSystemEventTrigger(reactor.Shutdown, reactor.Before, func(func()) { events = append(events, "before") })
		l.AddTrigger(reactor.Shutdown, reactor.During, func() { events = append(events, "during") })
		ran := runLoop(l)
		require.NoError(t, l.Call(func() {
			l.Stop()
			l.Stop()
		}))
		waitDone(t, l)
		require.NoError(t, <-ran)
		require.Equal(t, []string{"before", "during"}, events)
		require.Equal(t, 1, log.count(reactor.ErrShutdownTimeout))
		require.LessOrEqual(t, reactor.Turns(l), uint64(5), "the loop woke up while a shutdown trigger was pending")
	})
}

// A done called from a call, a timer or a completion ends the wait at once:
// the loop does not sleep on after the last done.
func TestBeforeShutdownDoneEndsWaitAtOnce(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		l, log := newLoop(t, kind, reactor.Config{ShutdownTimeout: time.Hour})
		l.AddSystemEventTrigger(reactor.Shutdown, reactor.Before, func(done func()) {
			require.NoError(t, l.Call(done))
		})
		l.AddSystemEventTrigger(reactor.Shutdown, reactor.Before, func(done func()) {
			l.CallLater(0, done)
		})
		ran := runLoop(l)
		require.NoError(t, l.Call(l.Stop))
		waitDone(t, l)
		require.NoError(t, <-ran)
		require.Zero(t, log.count(reactor.ErrShutdownTimeout))
		require.LessOrEqual(t, reactor.Turns(l), uint64(5))
	})
}

// Work queued with Call before Run, then Stop before Run: it runs, and what it
// started (a tracked resource with an op in flight) is shut down and drained.
func TestStopBeforeRunShutsDownQueuedWork(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		fds := socketpair(t)
		l, _ := newLoop(t, kind, reactor.Config{})
		res := &opRes{l: l}
		ranCall := false
		require.NoError(t, l.Call(func() { ranCall = true; res.start(t, fds[0]) }))
		l.Stop()
		waitDone(t, l)
		require.True(t, ranCall)
		require.Equal(t, 1, res.shutdown)
		require.ErrorIs(t, res.reason, reactor.ErrStopped)
		require.Equal(t, 1, res.finals, "the op queued before Stop never completed")
		require.ErrorIs(t, l.Call(func() {}), reactor.ErrStopped)
		require.ErrorIs(t, l.Run(context.Background()), reactor.ErrNotRestartable)
	})
}

// Resources tracked during shutdown reach their end state exactly once: one
// tracked in a "before" trigger (shut down with the others), one tracked by a
// Call made from an "after" trigger (after the others were shut down).
func TestResourcesTrackedDuringShutdown(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		fds := socketpair(t)
		fds2 := socketpair(t)
		l, _ := newLoop(t, kind, reactor.Config{})
		early, late := &opRes{l: l}, &opRes{l: l}
		var callErr error
		l.AddTrigger(reactor.Shutdown, reactor.Before, func() { early.start(t, fds[0]) })
		l.AddTrigger(reactor.Shutdown, reactor.After, func() {
			callErr = l.Call(func() { late.start(t, fds2[0]) })
		})
		ran := runLoop(l)
		require.NoError(t, l.Call(l.Stop))
		waitDone(t, l)
		require.NoError(t, <-ran)
		require.NoError(t, callErr)
		for name, r := range map[string]*opRes{"before": early, "after": late} {
			require.Equal(t, 1, r.shutdown, name)
			require.ErrorIs(t, r.reason, reactor.ErrStopped, name)
			require.Equal(t, 1, r.finals, name)
		}
	})
}

// An unknown GYRE_BACKEND is an error naming the value, not silently ignored.
func TestUnknownEnvBackendIsError(t *testing.T) {
	t.Setenv(reactor.EnvBackend, "bogus")
	_, err := reactor.New(reactor.Config{})
	require.ErrorIs(t, err, reactor.ErrUnknownBackend)
	require.ErrorContains(t, err, "bogus")
	require.ErrorContains(t, err, reactor.EnvBackend)

	l, err := reactor.New(reactor.Config{Backend: reactor.Epoll, IgnoreEnv: true})
	require.NoError(t, err)
	require.Equal(t, "epoll", l.Backend())
	l.Stop()
	<-l.Done()

	_, err = reactor.ParseBackend("nope")
	require.ErrorIs(t, err, reactor.ErrUnknownBackend)
	require.ErrorContains(t, err, "nope")
}

// A busy loop, which only ever blocks inside the backend's wait, still passes
// through the Go scheduler every YieldEvery, so the runtime never sees its P
// run one goroutine for its 10 ms preemption limit (sysmon would otherwise
// take the P away from every blocking wait); and it does so at most once per
// YieldEvery, not on every turn. Counted: yields against the loop's lifetime.
func TestBusyLoopYieldsToScheduler(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		l, _ := newLoop(t, kind, reactor.Config{})
		start := time.Now()
		ran := runLoop(l)
		// Calls one at a time: each one wakes the sleeping loop for a turn.
		done := make(chan struct{}, 1)
		calls := 0
		for ; calls < 200000 && (calls < 10 || time.Since(start) < 10*reactor.YieldEvery); calls++ {
			require.NoError(t, l.Call(func() { done <- struct{}{} }))
			<-done
		}
		l.Stop()
		waitDone(t, l)
		lifetime := time.Since(start)
		require.NoError(t, <-ran)
		turns, yields := reactor.Turns(l), reactor.Yields(l)
		t.Logf("%d calls, %d turns, %d yields in %v", calls, turns, yields, lifetime)
		// The first blocking turn yields, and a later one YieldEvery after it.
		require.GreaterOrEqual(t, yields, uint64(2), "a busy loop did not yield")
		require.LessOrEqual(t, yields, 1+uint64(lifetime/reactor.YieldEvery), "the loop yielded more than once per YieldEvery")
	})
}

// A loop that turns less often than every YieldEvery (here a chain of
// delayed calls 2×YieldEvery apart) never yields: its waits are long, and a
// yield would only add thread wake-ups to a nearly idle loop.
func TestSlowLoopDoesNotYield(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		l, _ := newLoop(t, kind, reactor.Config{})
		const ticks = 12
		n := 0
		var tick func()
		tick = func() {
			if n++; n == ticks {
				l.Stop()
				return
			}
			l.CallLater(2*reactor.YieldEvery, tick)
		}
		l.CallLater(2*reactor.YieldEvery, tick)
		ran := runLoop(l)
		waitDone(t, l)
		require.NoError(t, <-ran)
		require.Equal(t, ticks, n)
		t.Logf("%d turns, %d yields", reactor.Turns(l), reactor.Yields(l))
		require.Zero(t, reactor.Yields(l), "a loop turning every %v yielded", 2*reactor.YieldEvery)
	})
}

// With one P (GOMAXPROCS 1: a one-CPU container, a pinned server) a loop
// blocked in its wait holds the only P, so a goroutine a Call's function made
// runnable waits for sysmon to take the P away. A loop that ran calls in a
// turn therefore yields before it waits: each round trip below yields.
func TestLoopYieldsAfterCallsOnOneP(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		l, _ := newLoop(t, kind, reactor.Config{})
		ran := runLoop(l)
		done := make(chan struct{}, 1)
		// The loop learns GOMAXPROCS at its clock checks (at least every
		// few turns): the first round trips may not yield.
		const calls = 100
		for range calls {
			require.NoError(t, l.Call(func() { done <- struct{}{} }))
			<-done
		}
		l.Stop()
		waitDone(t, l)
		require.NoError(t, <-ran)
		t.Logf("%d calls, %d turns, %d yields", calls, reactor.Turns(l), reactor.Yields(l))
		require.GreaterOrEqual(t, reactor.Yields(l), uint64(calls-10), "the loop did not yield after its calls")
	})
}
