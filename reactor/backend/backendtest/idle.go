package backendtest

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
)

// idleScenarios: an idle backend sleeps in one kernel wait. Counted, never
// timed: the backend's Stats().Waits and the thread's voluntary context
// switches over an idle interval (idleFor) must stay at a handful.
func idleScenarios() []scenario {
	return []scenario{
		{name: "idle_wait_sleeps", fn: func(h *harness) { testIdle(h, false, false) }},
		{name: "idle_wait_sleeps_silent_conns", fn: func(h *harness) { testIdle(h, true, false) }},
		// After a batch of completions the next wait asks for a batch again,
		// with the BatchWait window (io_uring min-wait): it must still sleep.
		{name: "idle_wait_sleeps_after_batch", fn: func(h *harness) { testIdle(h, true, true) }},
	}
}

// idleFor is the idle interval of the idle scenarios; idleWaits and
// idleSwitches bound what may happen in it (a spinning wait makes thousands).
const (
	idleFor      = 300 * time.Millisecond
	idleWaits    = 3
	idleSwitches = 40
)

func testIdle(h *harness, conns, batch bool) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if conns {
		// Parked work that stays silent: a multishot recv and a plain recv
		// on idle connections, a multishot accept, a poll and a read on a
		// quiet pipe, and a timer far in the future.
		c, s := h.tcpPair()
		h.leave(h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(s), BufferSelect: true, Multishot: true}))
		h.leave(h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(c), Buf: make([]byte, 64)}))
		ln, _ := h.listener()
		h.leave(h.submit(&backend.Op{Kind: backend.KindAccept, Fd: int32(ln), Multishot: true}))
		r, _ := h.pipe(false)
		h.leave(h.submit(&backend.Op{Kind: backend.KindPoll, Fd: int32(r), Events: unix.POLLIN}))
		h.leave(h.submit(&backend.Op{Kind: backend.KindTimeout, Timeout: time.Hour}))
		h.settle()
	}
	if batch {
		toks := make([]backend.Token, 8)
		for i := range toks {
			toks[i] = h.submit(&backend.Op{Kind: backend.KindNop})
		}
		for _, tok := range toks {
			h.expectRes(tok, 0)
		}
	}

	// Untimed wait, ended by a Wake from another goroutine.
	var woke atomic.Bool
	var wakeErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(idleFor)
		woke.Store(true)
		wakeErr = h.b.Wake()
	}()
	w0, s0 := h.b.Stats().Waits, threadSwitches()
	n := h.wait(-1)
	waits, switches := h.b.Stats().Waits-w0, threadSwitches()-s0
	wg.Wait()
	require.NoError(h.t, wakeErr, "Wake")
	require.True(h.t, woke.Load(), "Wait(-1) returned %d completions before the Wake, with nothing due", n)
	require.LessOrEqual(h.t, waits, uint64(idleWaits), "kernel waits in one idle Wait(-1)")
	require.LessOrEqual(h.t, switches, uint64(idleSwitches), "voluntary context switches in one idle Wait(-1)")

	// Timed wait: ends at its timeout, still in one kernel wait.
	if batch {
		toks := make([]backend.Token, 8)
		for i := range toks {
			toks[i] = h.submit(&backend.Op{Kind: backend.KindNop})
		}
		for _, tok := range toks {
			h.expectRes(tok, 0)
		}
	}
	w0, s0 = h.b.Stats().Waits, threadSwitches()
	for end := time.Now().Add(idleFor); time.Now().Before(end); {
		h.wait(time.Until(end))
	}
	waits, switches = h.b.Stats().Waits-w0, threadSwitches()-s0
	require.LessOrEqual(h.t, waits, uint64(idleWaits), "kernel waits in an idle Wait(%v)", idleFor)
	require.LessOrEqual(h.t, switches, uint64(idleSwitches), "voluntary context switches in an idle Wait(%v)", idleFor)
}

// threadSwitches reads voluntary_ctxt_switches of the calling OS thread (the
// caller is locked to it); 0 when the kernel does not say (the Waits count
// still checks).
func threadSwitches() uint64 {
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
