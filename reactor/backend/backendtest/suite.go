// Package backendtest is the conformance suite every backend.Backend must pass.
//
// A backend package runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(tb testing.TB, cfg backend.Config) backend.Backend {
//			b, err := epoll.New(cfg)
//			require.NoError(tb, err)
//			return b
//		})
//	}
//
// Every scenario runs as a subtest on a fresh backend, on loopback sockets, pipes
// and timers only. Besides its own assertions each scenario checks the contract's
// bookkeeping: every completion names a submitted token, no completion follows a
// final one, every op reaches exactly one final completion, every provided buffer
// is released exactly once, and no descriptor leaks (the /proc/self/fd count is
// the same before and after). A scenario needing a native feature the backend
// lacks calls t.Skip; emulated features (multishot, provided buffers, zero-copy
// sends) are required of every backend.
//
// Nothing here relies on timing: waits are bounded (a scenario that hangs fails
// after a deadline instead of blocking the test binary) but never asserted.
package backendtest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor/backend"
)

// NewFunc builds a fresh backend for one scenario or benchmark. The suite closes
// the backend itself; a NewFunc that cannot build one should fail tb (or call
// tb.Skip when the backend is unavailable on this machine).
type NewFunc func(tb testing.TB, cfg backend.Config) backend.Backend

// waitLimit bounds every wait for a completion: a backend that loses a
// completion fails the scenario after this long instead of hanging the binary.
const waitLimit = 10 * time.Second

type scenario struct {
	name string
	cfg  backend.Config
	fn   func(h *harness)
}

// scenarios is the whole table; each group lives in its own file.
func scenarios() []scenario {
	var all []scenario
	all = append(all, basicScenarios()...)
	all = append(all, streamScenarios()...)
	all = append(all, bufferScenarios()...)
	all = append(all, netScenarios()...)
	all = append(all, cmsgScenarios()...)
	all = append(all, recvmsgMultiScenarios()...)
	all = append(all, miscScenarios()...)
	all = append(all, fairnessScenarios()...)
	all = append(all, idleScenarios()...)
	all = append(all, agreeScenarios()...)
	all = append(all, shortReadScenarios()...)
	return all
}

// Run runs every conformance scenario against backends built by newBackend, each
// as a subtest of t on its own fresh backend. Scenarios run one after another
// (not in parallel) so the descriptor-leak check can count /proc/self/fd.
func Run(t *testing.T, newBackend NewFunc) {
	// The Go runtime opens its own poller descriptors lazily, the first time
	// an os.File needs them; do it now so no scenario counts them as a leak.
	if r, w, err := os.Pipe(); err == nil {
		_ = r.Close()
		_ = w.Close()
	}
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			before := countFds(t)
			h := newHarness(t, newBackend(t, sc.cfg))
			func() {
				defer h.cleanup()
				sc.fn(h)
				if !t.Failed() && !t.Skipped() {
					h.finish()
				}
			}()
			if !t.Failed() && !t.Skipped() {
				require.Equal(t, before, countFds(t), "descriptor leak: /proc/self/fd count changed")
			}
		})
	}
}

// countFds counts this process's open descriptors.
func countFds(tb testing.TB) int {
	tb.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}

// opRec is the harness's record of one submitted op.
type opRec struct {
	op    *backend.Op
	comps []backend.Completion
	seen  int  // completions already handed to the scenario by next
	final bool // the final completion arrived
	leave bool // the scenario leaves this op in flight on purpose
}

// harness wraps a backend and checks the contract's bookkeeping on every
// completion it sees.
type harness struct {
	t      testing.TB
	b      backend.Backend
	out    []backend.Completion
	slot   uint32
	ops    map[backend.Token]*opRec
	held   map[uint16]bool // provided buffers handed out and not yet released
	fds    []int           // descriptors closed at cleanup
	closed bool
}

func newHarness(tb testing.TB, b backend.Backend) *harness {
	require.NotNil(tb, b, "newBackend returned nil")
	return &harness{
		t:    tb,
		b:    b,
		out:  make([]backend.Completion, 64),
		ops:  make(map[backend.Token]*opRec),
		held: make(map[uint16]bool),
	}
}

// token makes a fresh token with a non-trivial generation so a backend that
// truncates or mangles tokens is caught.
func (h *harness) token() backend.Token {
	h.slot++
	return backend.MakeToken(h.slot, 0x9e370000|h.slot)
}

// submit gives op a fresh token, submits it and records it. It returns the token.
func (h *harness) submit(op *backend.Op) backend.Token {
	h.t.Helper()
	op.Token = h.token()
	require.NoError(h.t, h.b.Submit(op), "submit %v", op.Kind)
	h.ops[op.Token] = &opRec{op: op}
	return op.Token
}

// leave marks tok as deliberately left in flight (it is not drained at finish).
func (h *harness) leave(tok backend.Token) { h.ops[tok].leave = true }

// wait calls Wait once and records what it returns; it returns the count.
func (h *harness) wait(timeout time.Duration) int {
	h.t.Helper()
	n, err := h.b.Wait(h.out, timeout)
	require.NoError(h.t, err, "Wait")
	require.GreaterOrEqual(h.t, n, 0)
	require.LessOrEqual(h.t, n, len(h.out))
	for i := 0; i < n; i++ {
		h.record(h.out[i])
	}
	return n
}

func (h *harness) record(c backend.Completion) {
	h.t.Helper()
	rec := h.ops[c.Token]
	require.NotNil(h.t, rec, "completion for unknown token %#x (res %d)", uint64(c.Token), c.Res)
	require.False(h.t, rec.final, "%v: completion after the final one (res %d flags %#x)", rec.op.Kind, c.Res, c.Flags)
	if c.Flags&backend.FlagMore == 0 {
		rec.final = true
	}
	if c.Flags&backend.FlagBuffer != 0 {
		require.GreaterOrEqual(h.t, c.Res, int32(0), "FlagBuffer on an error completion")
		require.Len(h.t, c.Buf, int(c.Res), "provided buffer view must be Res bytes")
		require.False(h.t, h.held[c.BufID], "buffer %d handed out twice", c.BufID)
		h.held[c.BufID] = true
	}
	rec.comps = append(rec.comps, c)
}

// next returns tok's next completion not yet returned, waiting for it.
func (h *harness) next(tok backend.Token) backend.Completion {
	h.t.Helper()
	rec := h.ops[tok]
	require.NotNil(h.t, rec)
	deadline := time.Now().Add(waitLimit)
	for rec.seen >= len(rec.comps) {
		require.True(h.t, time.Now().Before(deadline), "%v: no completion within %v", rec.op.Kind, waitLimit)
		h.wait(100 * time.Millisecond)
	}
	c := rec.comps[rec.seen]
	rec.seen++
	return c
}

// final waits for tok's final completion and returns it, skipping (and
// returning in more) any earlier FlagMore completions not yet seen.
func (h *harness) final(tok backend.Token) (last backend.Completion, more []backend.Completion) {
	h.t.Helper()
	for {
		c := h.next(tok)
		if !c.More() {
			return c, more
		}
		more = append(more, c)
	}
}

// expectRes waits for tok's final completion and checks its result.
func (h *harness) expectRes(tok backend.Token, want int32) backend.Completion {
	h.t.Helper()
	c, more := h.final(tok)
	require.Empty(h.t, more, "unexpected FlagMore completions for %v", h.ops[tok].op.Kind)
	require.Equal(h.t, want, c.Res, "%v: got %v, want %v", h.ops[tok].op.Kind, errText(c.Res), errText(want))
	return c
}

// pending reports whether tok has a completion not yet returned by next.
func (h *harness) pending(tok backend.Token) bool {
	rec := h.ops[tok]
	return rec.seen < len(rec.comps)
}

// settle polls the backend a few times without blocking, so anything ready is
// recorded.
func (h *harness) settle() {
	h.t.Helper()
	for i := 0; i < 3; i++ {
		h.wait(0)
	}
}

// release gives a provided buffer back.
func (h *harness) release(id uint16) {
	h.t.Helper()
	require.True(h.t, h.held[id], "releasing buffer %d that is not held", id)
	delete(h.held, id)
	h.b.ReleaseBuffer(id)
}

// finish drains every op not left in flight and checks the bookkeeping.
func (h *harness) finish() {
	h.t.Helper()
	if h.closed {
		return
	}
	deadline := time.Now().Add(waitLimit)
	for {
		missing := ""
		for _, rec := range h.ops {
			if !rec.final && !rec.leave {
				missing = rec.op.Kind.String()
			}
		}
		if missing == "" {
			break
		}
		require.True(h.t, time.Now().Before(deadline), "op %s never reached a final completion", missing)
		h.wait(50 * time.Millisecond)
	}
	require.Empty(h.t, h.held, "provided buffers never released")
}

// cleanup closes the backend (if the scenario did not) and every test descriptor.
func (h *harness) cleanup() {
	if !h.closed {
		h.closed = true
		if err := h.b.Close(); err != nil {
			h.t.Errorf("Close: %v", err)
		}
	}
	for _, fd := range h.fds {
		_ = closeFd(fd)
	}
	h.fds = nil
}

// closeBackend closes the backend now and checks that it returned.
func (h *harness) closeBackend() {
	h.t.Helper()
	h.closed = true
	require.NoError(h.t, h.b.Close())
}

// errText renders a result for messages.
func errText(res int32) string {
	if res >= 0 {
		return fmt.Sprint(res)
	}
	c := backend.Completion{Res: res}
	return fmt.Sprintf("%d (%v)", res, c.Err())
}
