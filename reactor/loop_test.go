package reactor_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/uring"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCallLaterWakesBlockedLoop(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		fired := make(chan struct{})
		h.Do(func() {
			h.CallLater(20*time.Millisecond, func() { close(fired) })
		})
		select {
		case <-fired:
		case <-time.After(5 * time.Second):
			t.Fatal("timer did not wake the loop")
		}
	})
}

func TestCallLaterZeroNeverSynchronous(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		var order []string
		done := make(chan struct{})
		h.Do(func() {
			h.CallLater(0, func() {
				order = append(order, "a")
				h.CallLater(0, func() { order = append(order, "c"); close(done) })
				order = append(order, "b")
			})
		})
		<-done
		h.Do(func() { require.Equal(t, []string{"a", "b", "c"}, order) })
	})
}

func TestCallsFromManyGoroutines(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		const G, N = 64, 10000
		n := N
		if testing.Short() {
			n = 1000
		}
		last := make([]int, G) // touched only on the loop
		var ran atomic.Int64
		var bad atomic.Int64
		var wg sync.WaitGroup
		for g := 0; g < G; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 1; i <= n; i++ {
					require.NoError(t, h.Call(func() {
						if last[g] != i-1 {
							bad.Add(1)
						}
						last[g] = i
						ran.Add(1)
					}))
				}
			}()
		}
		wg.Wait()
		require.True(t, h.Eventually(20*time.Second, func() bool { return ran.Load() == int64(G*n) }))
		require.Zero(t, bad.Load(), "calls ran out of per-caller order")
		h.Do(func() {
			for g := range last {
				require.Equal(t, n, last[g])
			}
		})
	})
}

func TestCallAfterStopAndRunTwice(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		h.StopWait()
		require.ErrorIs(t, h.Call(func() {}), reactor.ErrStopped)
		require.ErrorIs(t, h.Run(context.Background()), reactor.ErrNotRestartable)
	})
}

func TestStopBeforeRunReleases(t *testing.T) {
	l, err := reactor.New(reactor.Config{Backend: reactor.Epoll, IgnoreEnv: true})
	require.NoError(t, err)
	before := reactortest.FDCount()
	l.Stop()
	<-l.Done()
	require.Less(t, reactortest.FDCount(), before)
	require.ErrorIs(t, l.Run(context.Background()), reactor.ErrNotRestartable)
}

func TestRunStopsOnContext(t *testing.T) {
	l, err := reactor.New(reactor.Config{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after ctx cancel")
	}
}

type recvHandler struct {
	finals atomic.Int32
	errs   []error
}

func (r *recvHandler) Complete(op *backend.Op, c *backend.Completion) {
	if !c.More() {
		r.finals.Add(1)
		r.errs = append(r.errs, c.Err())
	}
}

// closer is a Resource that records the shutdown.
type closer struct{ reason error }

func (c *closer) Shutdown(reason error) { c.reason = reason }

func TestStopDrainsOpsInFlight(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		before := reactortest.FDCount()
		l, err := reactor.New(reactor.Config{Backend: kind, IgnoreEnv: true})
		if errors.Is(err, uring.ErrUnavailable) {
			t.Skip(err)
		}
		require.NoError(t, err)
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		defer unix.Close(fds[0])
		defer unix.Close(fds[1])
		h := &recvHandler{}
		ops := make([]backend.Op, 8)
		res := &closer{}
		var events []string
		l.AddTrigger(reactor.Shutdown, reactor.Before, func() { events = append(events, "before") })
		l.AddTrigger(reactor.Shutdown, reactor.During, func() { events = append(events, "during") })
		l.AddTrigger(reactor.Shutdown, reactor.After, func() { events = append(events, "after") })
		l.AddTrigger(reactor.Startup, reactor.During, func() { events = append(events, "startup") })
		require.NoError(t, l.Call(func() {
			l.Track(res)
			for i := range ops {
				ops[i] = backend.Op{Kind: backend.KindRecv, Fd: int32(fds[0]), Multishot: true, BufferSelect: true}
				require.NoError(t, l.Submit(&ops[i], h))
				// Each op is cancelled by the resource shutdown below.
			}
			l.AddTrigger(reactor.Shutdown, reactor.During, func() {
				for i := range ops {
					l.Cancel(ops[i].Token)
				}
			})
			l.Stop()
		}))
		require.NoError(t, l.Run(context.Background()))
		require.Equal(t, int32(len(ops)), h.finals.Load())
		require.ErrorIs(t, res.reason, reactor.ErrStopped)
		require.Equal(t, []string{"startup", "before", "during", "after"}, events)
		require.LessOrEqual(t, reactortest.FDCount(), before+2)
	})
}

func TestBeforeShutdownTriggerDelays(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		l, err := reactor.New(reactor.Config{Backend: kind, IgnoreEnv: true})
		if errors.Is(err, uring.ErrUnavailable) {
			t.Skip(err)
		}
		require.NoError(t, err)
		var seq []string
		l.AddSystemEventTrigger(reactor.Shutdown, reactor.Before, func(done func()) {
			seq = append(seq, "before-start")
			l.CallLater(10*time.Millisecond, func() { seq = append(seq, "before-done"); done() })
		})
		l.AddTrigger(reactor.Shutdown, reactor.During, func() { seq = append(seq, "during") })
		id := l.AddTrigger(reactor.Shutdown, reactor.After, func() { seq = append(seq, "removed") })
		require.True(t, l.RemoveSystemEventTrigger(id))
		require.False(t, l.RemoveSystemEventTrigger(id))
		require.NoError(t, l.Call(l.Stop))
		require.NoError(t, l.Run(context.Background()))
		require.Equal(t, []string{"before-start", "before-done", "during"}, seq)
	})
}

func TestPanicInCallbackIsReported(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		h.Do(func() { h.CallLater(0, func() { panic("kaboom") }) })
		require.NoError(t, h.Call(func() { panic(errors.New("call panic")) }))
		ok := h.Eventually(5*time.Second, func() bool { return len(h.Errors()) == 2 })
		require.True(t, ok)
		var pe *reactor.PanicError
		require.ErrorAs(t, h.Errors()[0], &pe)
		// The loop still runs.
		h.Do(func() {})
	})
}

func TestForcedFallbackOnInjectedFailure(t *testing.T) {
	cfg := reactor.Config{IgnoreEnv: true}
	reactor.SetOpenUring(&cfg, func(backend.Config) (backend.Backend, error) {
		return nil, fmt.Errorf("injected: %w: %w", uring.ErrUnavailable, syscall.EPERM)
	})
	l, err := reactor.New(cfg)
	require.NoError(t, err)
	require.Equal(t, "epoll", l.Backend())
	l.Stop()
	<-l.Done()

	cfg.Backend = reactor.Uring
	_, err = reactor.New(cfg)
	require.ErrorIs(t, err, uring.ErrUnavailable)
	require.ErrorIs(t, err, syscall.EPERM)
}

func TestEnvOverridesBackend(t *testing.T) {
	t.Setenv(reactor.EnvBackend, "epoll")
	l, err := reactor.New(reactor.Config{Backend: reactor.Uring})
	require.NoError(t, err)
	require.Equal(t, "epoll", l.Backend())
	l.Stop()
	<-l.Done()
}

// TestSysctlDisabledFallsBack disables io_uring for real. It changes a
// machine-wide setting, so it only runs when GYRE_SYSCTL_TESTS=1 (CI runs it
// alone, never in parallel with other packages).
func TestSysctlDisabledFallsBack(t *testing.T) {
	if os.Getenv("GYRE_SYSCTL_TESTS") != "1" {
		t.Skip("set GYRE_SYSCTL_TESTS=1 to run (root, serialized)")
	}
	const path = "/proc/sys/kernel/io_uring_disabled"
	old, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("no %s: %v", path, err)
	}
	if err := os.WriteFile(path, []byte("2"), 0o644); err != nil {
		t.Skipf("cannot write %s: %v", path, err)
	}
	t.Cleanup(func() { _ = os.WriteFile(path, []byte(strings.TrimSpace(string(old))), 0o644) })
	l, err := reactor.New(reactor.Config{IgnoreEnv: true})
	require.NoError(t, err)
	require.Equal(t, "epoll", l.Backend())
	l.Stop()
	<-l.Done()
	_, err = reactor.New(reactor.Config{Backend: reactor.Uring, IgnoreEnv: true})
	require.ErrorIs(t, err, uring.ErrUnavailable)
}

func TestEINTRStormDoesNotBreakLoop(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		var ticks atomic.Int32
		h.Do(func() {
			var tick func()
			tick = func() {
				if ticks.Add(1) < 50 {
					h.CallLater(5*time.Millisecond, tick)
				}
			}
			tick()
		})
		for i := 0; i < 20; i++ {
			require.NoError(t, exec.Command("true").Run())
		}
		require.True(t, h.Eventually(10*time.Second, func() bool { return ticks.Load() >= 50 }))
	})
}

func TestTinyRingUnderLoad(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind, reactor.Config{Sizes: backend.Config{Entries: 2, CQEntries: 4, BufferCount: 4, BufferSize: 64}, CompletionBatch: 2})
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		defer unix.Close(fds[0])
		defer unix.Close(fds[1])
		const n = 64
		ops := make([]backend.Op, n)
		hd := &recvHandler{}
		h.Do(func() {
			for i := range ops {
				ops[i] = backend.Op{Kind: backend.KindTimeout, Timeout: time.Millisecond}
				require.NoError(t, h.Submit(&ops[i], hd))
			}
		})
		require.True(t, h.Eventually(10*time.Second, func() bool { return hd.finals.Load() == n }))
		h.Do(func() {
			for _, e := range hd.errs {
				require.ErrorIs(t, e, syscall.ETIME)
			}
			require.Zero(t, h.InFlight())
		})
	})
}

func TestTimerStormOnLoop(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		n := 100000
		if testing.Short() {
			n = 10000
		}
		type rec struct {
			when time.Time
			id   int
		}
		var fired []int
		var want []rec
		done := make(chan struct{})
		h.Do(func() {
			rng := uint64(42)
			next := func() uint64 { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng }
			calls := make([]interface{ Cancel() bool }, n)
			whens := make([]time.Time, n)
			for i := 0; i < n; i++ {
				d := time.Duration(next()%50) * time.Millisecond
				if i%10 == 0 {
					d = 25 * time.Millisecond // many equal deadlines
				}
				c := h.CallLater(d, func() { fired = append(fired, i) })
				calls[i] = c
				whens[i] = c.Time()
			}
			for i := 0; i < n; i++ {
				if next()%2 == 0 {
					require.True(t, calls[i].Cancel())
				} else {
					want = append(want, rec{whens[i], i})
				}
			}
			h.CallLater(100*time.Millisecond, func() { close(done) })
		})
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("timers did not all fire")
		}
		// The naive model: by deadline, ties in scheduling order.
		h.Do(func() {
			require.Equal(t, len(want), len(fired))
			model := append([]rec(nil), want...)
			slices.SortStableFunc(model, func(a, b rec) int { return a.when.Compare(b.when) })
			for i := range model {
				if model[i].id != fired[i] {
					t.Fatalf("position %d: fired %d, model %d", i, fired[i], model[i].id)
				}
			}
		})
	})
}
