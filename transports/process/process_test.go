package process_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/process"
)

const wait = 20 * time.Second

// spawn runs Spawn on the loop.
func spawn(t *testing.T, h *reactortest.Loop, r transports.ProcessProtocol, cfg process.Config) (p *process.Process) {
	t.Helper()
	var err error
	h.Do(func() { p, err = process.Spawn(h.Loop, r, cfg) })
	require.NoError(t, err)
	return p
}

// TestCat: bytes written to cat's stdin come back on its stdout; closing
// stdin ends it: every pipe ends cleanly, the exit status is 0, and the
// callbacks come exactly once in the contract's order.
func TestCat(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		r := &rec{onMade: func(r *rec) {
			_ = r.t.Write([]byte("hello "))
			_ = r.t.Write([]byte("world"))
			_ = r.t.CloseStdin()
		}}
		spawn(t, h, r, process.Config{Path: "cat"})
		require.True(t, h.Eventually(wait, func() bool { return r.ended }))
		h.Do(func() {
			require.Equal(t, "hello world", string(r.out))
			checkOrder(t, r, 0, 1, 2)
			require.True(t, r.status.Success(), "%v", r.status)
			require.NoError(t, r.status.Err())
			for fd, reason := range r.lost {
				require.ErrorIs(t, reason, transports.ErrConnectionDone, "pipe %d", fd)
			}
			require.Positive(t, r.pid)
			require.Zero(t, r.t.Pid(), "pid after reaping")
			require.ErrorIs(t, r.t.Signal(0), transports.ErrProcessExited)
			require.ErrorIs(t, r.t.Write([]byte("x")), transports.ErrClosed)
		})
		require.Empty(t, h.Errors())
	})
}

// TestExitCodeArgsEnvDir: argv, environment and working directory reach the
// child; a non-zero exit code is reported as such, not as a signal.
func TestExitCodeArgsEnvDir(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		dir := t.TempDir()
		cfg := helper(t, "env", "a b", "c")
		cfg.Env = append(cfg.Env, "GYRE_X=yes")
		cfg.Dir = dir
		r := &rec{}
		spawn(t, h, r, cfg)
		require.True(t, h.Eventually(wait, func() bool { return r.ended }))
		h.Do(func() { require.Equal(t, "a b,c|yes|"+dir, string(r.out)) })

		r = &rec{}
		spawn(t, h, r, helper(t, "exit", "3"))
		require.True(t, h.Eventually(wait, func() bool { return r.ended }))
		h.Do(func() {
			checkOrder(t, r, 0, 1, 2)
			require.True(t, r.status.Exited())
			require.False(t, r.status.Signaled())
			require.Equal(t, 3, r.status.Code)
			require.Equal(t, 3, r.status.ExitCode())
			require.ErrorIs(t, r.status.Err(), transports.ErrProcessTerminated)
			require.Equal(t, "exit status 3", r.status.String())
		})
	})
}

// TestSignalKilled: a child killed by a signal reports the signal (and
// 128+n as its shell exit code); Kill is SIGKILL; signalling a reaped child
// is ErrProcessExited.
func TestSignalKilled(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
			r := &rec{}
			p := spawn(t, h, r, helper(t, "sleep"))
			h.Do(func() {
				if sig == syscall.SIGKILL {
					require.NoError(t, p.Kill())
				} else {
					require.NoError(t, p.Signal(sig))
				}
			})
			require.True(t, h.Eventually(wait, func() bool { return r.ended }))
			h.Do(func() {
				checkOrder(t, r, 0, 1, 2)
				require.True(t, r.status.Signaled())
				require.Equal(t, sig, r.status.Signal)
				require.Equal(t, 128+int(sig), r.status.ExitCode())
				require.ErrorIs(t, r.status.Err(), transports.ErrProcessTerminated)
				require.ErrorIs(t, p.Kill(), transports.ErrProcessExited)
			})
		}
		require.Empty(t, h.Errors())
	})
}

// TestMissingExecutable: a path that does not exist, or a name not on PATH,
// is an error from Spawn — no hang, no protocol call, no descriptor left.
func TestMissingExecutable(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		before := reactortest.FDCount()
		r := &rec{}
		var err1, err2, err3 error
		h.Do(func() {
			_, err1 = process.Spawn(h.Loop, r, process.Config{Path: "/nonexistent/gyre-no-such-program"})
			_, err2 = process.Spawn(h.Loop, r, process.Config{Path: "gyre-no-such-program"})
			_, err3 = process.Spawn(h.Loop, r, process.Config{Path: "/"}) // a directory
		})
		require.ErrorIs(t, err1, fs.ErrNotExist)
		require.ErrorIs(t, err2, exec.ErrNotFound)
		require.ErrorIs(t, err3, syscall.EACCES)
		require.Empty(t, r.events)
		require.Equal(t, before, reactortest.FDCount())
		require.Empty(t, children(t))
	})
}

// TestLargeOutputPaused: a child writes 100 MB to stdout while the protocol
// pauses reading after every MiB for a moment: every byte arrives in order,
// nothing is delivered while paused, and the heap stays bounded (the pipe
// pushes back on the child; nothing accumulates in the parent).
func TestLargeOutputPaused(t *testing.T) {
	const total = 100 << 20
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		base := ms.HeapAlloc
		var got, nextPause, nextSample int
		var maxHeap uint64
		paused, whilePaused, bad := false, 0, -1
		r := &rec{}
		r.onOut = func(r *rec, p []byte) {
			r.out = r.out[:0] // the recorder must not keep 100 MB
			if paused {
				whilePaused += len(p)
			}
			if bad < 0 && !bytes.Equal(p, patternBlock[got%251:got%251+len(p)]) {
				bad = got
			}
			got += len(p)
			if got >= nextSample {
				nextSample += 8 << 20
				runtime.ReadMemStats(&ms)
				maxHeap = max(maxHeap, ms.HeapAlloc)
			}
			if got >= nextPause {
				nextPause += 1 << 20
				paused = true
				r.t.PauseReading()
				h.CallLater(time.Millisecond, func() { paused = false; r.t.ResumeReading() })
			}
		}
		spawn(t, h, r, helper(t, "pattern", strconv.Itoa(total)))
		require.True(t, h.Eventually(60*time.Second, func() bool { return r.ended }))
		h.Do(func() {
			checkOrder(t, r, 0, 1, 2)
			require.True(t, r.status.Success(), "%v", r.status)
			require.Equal(t, total, got)
			require.Equal(t, -1, bad, "bytes differ from offset %d", bad)
			require.Zero(t, whilePaused, "bytes delivered while paused")
			require.Less(t, maxHeap, base+32<<20, "heap grew from %d to %d", base, maxHeap)
		})
		require.Empty(t, h.Errors())
	})
}

// pushRec is a push producer recording its pause/resume calls.
type pushRec struct{ pauses, resumes, stops int }

func (p *pushRec) PauseProducing()  { p.pauses++ }
func (p *pushRec) ResumeProducing() { p.resumes++ }
func (p *pushRec) StopProducing()   { p.stops++ }

// TestStdinNeverRead: 10 MB queued for a child that never reads its stdin:
// Write does not block, the loop keeps running (timers fire, calls run),
// the stdin producer is paused at the watermark; when the child is killed
// the stdin pipe is lost (the queued bytes cannot be delivered: EPIPE), the
// producer is stopped, and the process ends.
func TestStdinNeverRead(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		prod := &pushRec{}
		r := &rec{onMade: func(r *rec) {
			_ = r.t.RegisterProducer(prod, true)
			_ = r.t.Write(make([]byte, 10<<20))
		}}
		p := spawn(t, h, r, helper(t, "sleep"))
		ticks := 0
		h.Do(func() { h.CallLater(20*time.Millisecond, func() { ticks++ }) })
		require.True(t, h.Eventually(wait, func() bool { return ticks == 1 }), "the loop stopped running timers")
		h.Do(func() {
			require.Greater(t, p.Buffered(0), 9<<20, "the child read its stdin?")
			require.Equal(t, 1, prod.pauses)
			require.False(t, r.exited)
			require.NoError(t, p.Kill())
		})
		require.True(t, h.Eventually(wait, func() bool { return r.ended }))
		h.Do(func() {
			checkOrder(t, r, 0, 1, 2)
			require.ErrorIs(t, r.lost[0], transports.ErrConnectionLost)
			require.ErrorIs(t, r.lost[0], syscall.EPIPE)
			require.Equal(t, syscall.SIGKILL, r.status.Signal)
			require.Equal(t, 1, prod.stops)
		})
	})
}

// TestStdinHangupWithoutWrite: a child that exits without reading its
// stdin, while nothing is queued for it, still ends the stdin pipe (the
// write end reports POLLERR once the read end closes), so ProcessEnded
// comes without the parent ever writing; nothing was lost, so every pipe
// ends cleanly (ErrConnectionDone, not EPIPE) — for a child that exits by
// itself ("true") and for one killed by a signal alike.
func TestStdinHangupWithoutWrite(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		for _, c := range []struct {
			name string
			cfg  process.Config
			kill bool
		}{
			{"true", process.Config{Path: "true"}, false},
			{"exit 0", helper(t, "exit", "0"), false},
			{"killed", helper(t, "sleep"), true},
		} {
			r := &rec{}
			p := spawn(t, h, r, c.cfg)
			if c.kill {
				h.Do(func() { require.NoError(t, p.Kill()) })
			}
			require.True(t, h.Eventually(wait, func() bool { return r.ended }), c.name)
			h.Do(func() {
				checkOrder(t, r, 0, 1, 2)
				for fd, reason := range r.lost {
					require.ErrorIs(t, reason, transports.ErrConnectionDone, "%s: pipe %d", c.name, fd)
					require.NotErrorIs(t, reason, transports.ErrConnectionLost, "%s: pipe %d", c.name, fd)
				}
			})
		}
	})
}

// TestCloseStdoutEarly: a child that closes its stdout and keeps running:
// the stdout pipe ends (cleanly) while the child runs; stdin and stderr go
// on working; the process ends when the child exits.
func TestCloseStdoutEarly(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		r := &rec{}
		p := spawn(t, h, r, helper(t, "closeout"))
		require.True(t, h.Eventually(wait, func() bool { _, ok := r.lost[1]; return ok }))
		h.Do(func() {
			require.False(t, r.exited)
			require.ErrorIs(t, r.lost[1], transports.ErrConnectionDone)
			require.NoError(t, p.Signal(0), "the child should still run")
			require.NoError(t, p.Write([]byte("ping")))
			require.NoError(t, p.CloseStdin())
		})
		require.True(t, h.Eventually(wait, func() bool { return r.ended }))
		h.Do(func() {
			checkOrder(t, r, 0, 1, 2)
			require.Equal(t, "got:ping", string(r.errOut))
			require.True(t, r.status.Success())
			require.Equal(t, []string{"made", "lost:1"}, r.events[:2])
		})
	})
}

// TestGrandchildHoldsPipe: the child exits while its own child keeps the
// stdout pipe open: ProcessExited comes at once, ProcessEnded only when
// that pipe closes too (here: the grandchild is killed).
func TestGrandchildHoldsPipe(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		r := &rec{}
		spawn(t, h, r, helper(t, "grandchild"))
		var grand int
		require.True(t, h.Eventually(wait, func() bool {
			if !r.exited || !bytes.HasSuffix(r.out, []byte("\n")) {
				return false
			}
			grand, _ = strconv.Atoi(strings.TrimSpace(string(r.out)))
			return true
		}))
		require.Positive(t, grand)
		defer syscall.Kill(grand, syscall.SIGKILL)
		time.Sleep(50 * time.Millisecond) // give a wrong ProcessEnded a chance to show
		h.Do(func() {
			require.True(t, r.exitSt.Success())
			require.False(t, r.ended, "ProcessEnded while a grandchild holds stdout")
			_, lost := r.lost[1]
			require.False(t, lost)
		})
		require.NoError(t, syscall.Kill(grand, syscall.SIGKILL))
		require.True(t, h.Eventually(wait, func() bool { return r.ended }))
		h.Do(func() {
			checkOrder(t, r, 0, 1, 2)
			require.Less(t, indexOf(r.events, "exited"), indexOf(r.events, "lost:1"))
		})
	})
}

func indexOf(s []string, v string) int {
	for i, e := range s {
		if e == v {
			return i
		}
	}
	return -1
}

// TestManyChildren: 500 short-lived children one after the other leave no
// descriptor, zombie or goroutine behind (goroutines: TestMain's goleak).
func TestManyChildren(t *testing.T) {
	const n = 500
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		before := reactortest.FDCount()
		goroutines := runtime.NumGoroutine()
		done, failed := 0, 0
		var spawnErr error
		var next func()
		next = func() {
			r := &rec{onEnded: func(r *rec) {
				done++
				if !r.status.Success() || len(r.events) != 6 {
					failed++
				}
				if done < n {
					next()
				}
			}}
			if _, err := process.Spawn(h.Loop, r, process.Config{Path: "/bin/true"}); err != nil {
				spawnErr = err
			}
		}
		h.Do(next)
		require.True(t, h.Eventually(60*time.Second, func() bool { return done == n || spawnErr != nil }))
		require.NoError(t, spawnErr)
		require.Zero(t, failed)
		require.Equal(t, before, reactortest.FDCount(), "descriptors left")
		require.Empty(t, zombies(t))
		require.Empty(t, children(t))
		require.LessOrEqual(t, runtime.NumGoroutine(), goroutines)
	})
}

// TestChildFDs: extra pipes in both directions (child fd 3 read by the
// loop, fd 4 written by it) and one of our descriptors passed through as
// child fd 5; misuse errors.
func TestChildFDs(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		pr, pw, err := os.Pipe()
		require.NoError(t, err)
		defer pr.Close()
		cfg := helper(t, "extra")
		cfg.ChildFDs = map[int]process.FD{
			0: process.ToChild, 1: process.FromChild, 2: process.FromChild,
			3: process.FromChild, 4: process.ToChild, 5: process.Inherit(int(pw.Fd())),
		}
		r := &rec{onMade: func(r *rec) {
			_ = r.t.WriteToChild(4, []byte("abc"))
			_ = r.t.CloseChildFD(4)
		}}
		p := spawn(t, h, r, cfg)
		h.Do(func() {
			require.ErrorIs(t, p.WriteToChild(3, []byte("x")), transports.ErrNoChildFD)
			require.ErrorIs(t, p.WriteToChild(7, []byte("x")), transports.ErrNoChildFD)
			require.ErrorIs(t, p.CloseChildFD(7), transports.ErrNoChildFD)
		})
		require.True(t, h.Eventually(wait, func() bool { return r.ended }))
		h.Do(func() {
			checkOrder(t, r, 0, 1, 2, 3, 4)
			require.Equal(t, "ABC", string(r.child[3]))
			require.True(t, r.status.Success(), "%v", r.status)
		})
		require.NoError(t, pw.Close())
		got, err := io.ReadAll(pr)
		require.NoError(t, err)
		require.Equal(t, "inherited", string(got))

		// A pipe from child fd 3 needs a ChildDataReceiver.
		var spawnErr error
		h.Do(func() {
			_, spawnErr = process.Spawn(h.Loop, struct{ transports.ProcessProtocol }{&rec{}},
				process.Config{Path: "/bin/true", ChildFDs: map[int]process.FD{3: process.FromChild}})
		})
		require.ErrorIs(t, spawnErr, process.ErrBadConfig)
	})
}

// TestNoStdin: a child without descriptor 0 in its map has it closed; the
// stdin methods answer ErrNoChildFD.
func TestNoStdin(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		r := &rec{}
		p := spawn(t, h, r, process.Config{Path: "/bin/sh", Args: []string{"sh", "-c", "cat; echo rc=$?"},
			ChildFDs: map[int]process.FD{1: process.FromChild}})
		h.Do(func() {
			require.ErrorIs(t, p.Write([]byte("x")), transports.ErrNoChildFD)
			require.ErrorIs(t, p.RegisterProducer(&pushRec{}, true), transports.ErrNoChildFD)
		})
		require.True(t, h.Eventually(wait, func() bool { return r.ended }))
		h.Do(func() {
			checkOrder(t, r, 1)
			require.Equal(t, "rc=1\n", string(r.out))
		})
	})
}

// TestStopPolicy: children still running when the loop stops. Default:
// SIGTERM, then reaped; a child ignoring SIGTERM is killed with SIGKILL
// after Grace, or at the drain timeout; Leave leaves it running, Detached.
// No zombie is left.
func TestStopPolicy(t *testing.T) {
	cases := []struct {
		name   string
		mode   []string
		policy process.StopPolicy
		want   syscall.Signal
	}{
		{"default", []string{"sleep"}, process.StopPolicy{}, syscall.SIGTERM},
		{"grace", []string{"sleep", "ignore-term"}, process.StopPolicy{Grace: 50 * time.Millisecond}, syscall.SIGKILL},
		{"drain", []string{"sleep", "ignore-term"}, process.StopPolicy{}, syscall.SIGKILL},
		{"signal", []string{"sleep"}, process.StopPolicy{Signal: syscall.SIGINT}, syscall.SIGINT},
		{"leave", []string{"sleep"}, process.StopPolicy{Leave: true}, 0},
	}
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				drain := 300 * time.Millisecond
				if c.name == "grace" {
					drain = time.Minute // Grace, not the drain timeout, must end it
				}
				h := reactortest.Start(t, kind, reactor.Config{DrainTimeout: drain})
				// A resource with nothing in flight: the loop's drain does not
				// wait for it, so it sees a second Shutdown (ErrDrainTimeout)
				// only if the drain timed out.
				probe := &probeRes{}
				h.Do(func() { h.Track(probe) })
				r := &rec{}
				cfg := helper(t, c.mode[0], c.mode[1:]...)
				cfg.Stop = c.policy
				spawn(t, h, r, cfg)
				if len(c.mode) > 1 { // wait until SIGTERM is ignored
					require.True(t, h.Eventually(wait, func() bool { return len(r.out) > 0 }))
				}
				h.StopWait()
				require.True(t, r.ended, "ProcessEnded at Stop")
				checkOrder(t, r, 0, 1, 2)
				if c.policy.Leave {
					require.True(t, r.status.Detached, "%v", r.status)
					require.ErrorIs(t, r.status.Err(), transports.ErrProcessDetached)
					require.NoError(t, syscall.Kill(r.pid, 0), "the child should still run")
					require.NoError(t, syscall.Kill(r.pid, syscall.SIGKILL))
					var ws syscall.WaitStatus
					_, err := syscall.Wait4(r.pid, &ws, 0, nil)
					require.NoError(t, err)
				} else {
					require.Equal(t, c.want, r.status.Signal, "%v", r.status)
				}
				require.Equal(t, c.name == "drain", probe.aborted, "drain timed out: %v", probe.aborted)
				require.Empty(t, zombies(t))
				require.Empty(t, children(t))
			})
		}
	})
}

// TestProtocolPanic: a panic in a process protocol callback is reported to
// the loop and aborts that child (pipes aborted, child killed); the
// contract's calls still come, each once.
func TestProtocolPanic(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		r := &rec{onMade: func(r *rec) { panic(errors.New("boom")) }}
		spawn(t, h, r, helper(t, "sleep"))
		require.True(t, h.Eventually(wait, func() bool { return r.ended }))
		h.Do(func() {
			checkOrder(t, r, 0, 1, 2)
			require.Equal(t, syscall.SIGKILL, r.status.Signal)
		})
		require.Len(t, h.Errors(), 1)
	})
}

// probeRes records whether the loop's second shutdown stage reached it.
type probeRes struct{ aborted bool }

func (p *probeRes) Shutdown(reason error) {
	if errors.Is(reason, reactor.ErrDrainTimeout) {
		p.aborted = true
	}
}
