package backendtest

import (
	"errors"
	"sync"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
)

const (
	eTIME     = -int32(unix.ETIME)
	eCANCELED = -int32(unix.ECANCELED)
	eNOENT    = -int32(unix.ENOENT)
	eALREADY  = -int32(unix.EALREADY)
	eNOBUFS   = -int32(unix.ENOBUFS)
)

// basicScenarios: nop, timeouts, cancellation, Wait and Wake, Submit errors, Close.
func basicScenarios() []scenario {
	return []scenario{
		{name: "nop", fn: testNop},
		{name: "nop_batch_small_out", fn: testNopBatchSmallOut},
		{name: "token_round_trip", fn: testTokenRoundTrip},
		{name: "timeout_fires", fn: testTimeoutFires},
		{name: "timeout_order", fn: testTimeoutOrder},
		{name: "timeout_cancelled", fn: testTimeoutCancelled},
		{name: "cancel_unknown", fn: testCancelUnknown},
		{name: "cancel_completed", fn: testCancelCompleted},
		{name: "wait_timeout_empty", fn: testWaitTimeoutEmpty},
		{name: "wake_unblocks_wait", fn: testWakeUnblocksWait},
		{name: "wake_before_wait", fn: testWakeBeforeWait},
		{name: "submit_rejects_bad_op", fn: testSubmitRejects},
		{name: "close_with_ops_in_flight", fn: testCloseInFlight},
		{name: "close_with_buffers_held", cfg: backend.Config{BufferCount: 8, BufferSize: 128}, fn: testCloseBuffersHeld},
	}
}

func testNop(h *harness) {
	tok := h.submit(&backend.Op{Kind: backend.KindNop})
	h.expectRes(tok, 0)
}

// Many completions, read through a one-entry out slice: leftovers must come
// back from later Waits, none lost or duplicated.
func testNopBatchSmallOut(h *harness) {
	const n = 100
	ops := make([]backend.Op, n)
	for i := range ops {
		ops[i].Kind = backend.KindNop
		h.submit(&ops[i])
	}
	h.out = h.out[:1]
	got := 0
	deadline := time.Now().Add(waitLimit)
	for got < n {
		require.True(h.t, time.Now().Before(deadline), "only %d of %d nops completed", got, n)
		got += h.wait(100 * time.Millisecond)
	}
	for i := range ops {
		h.expectRes(ops[i].Token, 0)
	}
}

func testTokenRoundTrip(h *harness) {
	op := &backend.Op{Kind: backend.KindNop}
	op.Token = backend.MakeToken(0xfffffffe, 0xdeadbeef)
	require.NoError(h.t, h.b.Submit(op))
	h.ops[op.Token] = &opRec{op: op}
	c := h.expectRes(op.Token, 0)
	require.Equal(h.t, uint32(0xfffffffe), c.Token.Slot())
	require.Equal(h.t, uint32(0xdeadbeef), c.Token.Gen())
}

func testTimeoutFires(h *harness) {
	tok := h.submit(&backend.Op{Kind: backend.KindTimeout, Timeout: 5 * time.Millisecond})
	h.expectRes(tok, eTIME)
	tok = h.submit(&backend.Op{Kind: backend.KindTimeout}) // zero: fires at once
	h.expectRes(tok, eTIME)
}

// Timeouts with different durations all fire; the short one first.
func testTimeoutOrder(h *harness) {
	long := h.submit(&backend.Op{Kind: backend.KindTimeout, Timeout: 60 * time.Millisecond})
	short := h.submit(&backend.Op{Kind: backend.KindTimeout, Timeout: 1 * time.Millisecond})
	h.expectRes(short, eTIME)
	h.expectRes(long, eTIME)
	require.Equal(h.t, 1, len(h.ops[long].comps))
}

func testTimeoutCancelled(h *harness) {
	tok := h.submit(&backend.Op{Kind: backend.KindTimeout, Timeout: time.Hour})
	h.settle()
	require.False(h.t, h.pending(tok), "an hour-long timeout completed early")
	cancel := h.submit(&backend.Op{Kind: backend.KindCancel, Target: tok})
	h.expectRes(tok, eCANCELED)
	h.expectRes(cancel, 0)
}

func testCancelUnknown(h *harness) {
	cancel := h.submit(&backend.Op{Kind: backend.KindCancel, Target: backend.MakeToken(123456, 789)})
	h.expectRes(cancel, eNOENT)
	cfd := h.submit(&backend.Op{Kind: backend.KindCancelFd, Fd: int32(h.socket(unix.SOCK_STREAM))})
	h.expectRes(cfd, eNOENT)
}

// Cancelling an op that already completed finds nothing.
func testCancelCompleted(h *harness) {
	tok := h.submit(&backend.Op{Kind: backend.KindNop})
	h.expectRes(tok, 0)
	cancel := h.submit(&backend.Op{Kind: backend.KindCancel, Target: tok})
	c, _ := h.final(cancel)
	require.Contains(h.t, []int32{eNOENT, eALREADY}, c.Res, "cancel of a finished op: %s", errText(c.Res))
}

func testWaitTimeoutEmpty(h *harness) {
	require.Equal(h.t, 0, h.wait(20*time.Millisecond))
	require.Equal(h.t, 0, h.wait(0))
}

// A Wait(-1) with nothing to do returns when another goroutine calls Wake. A
// safety timeout keeps a broken Wake from hanging the test: if it is what ends
// the Wait, the scenario fails.
func testWakeUnblocksWait(h *harness) {
	safety := h.submit(&backend.Op{Kind: backend.KindTimeout, Timeout: waitLimit})
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(10 * time.Millisecond)
			if err := h.b.Wake(); err != nil {
				h.t.Errorf("Wake: %v", err)
			}
		}()
		h.wait(-1)
		wg.Wait()
		require.False(h.t, h.pending(safety), "Wait(-1) returned only when the safety timeout fired: Wake did not wake it")
	}
	cancel := h.submit(&backend.Op{Kind: backend.KindCancel, Target: safety})
	h.expectRes(safety, eCANCELED)
	h.expectRes(cancel, 0)
}

// A Wake before Wait makes the next Wait return.
func testWakeBeforeWait(h *harness) {
	safety := h.submit(&backend.Op{Kind: backend.KindTimeout, Timeout: waitLimit})
	h.settle()
	require.NoError(h.t, h.b.Wake())
	require.NoError(h.t, h.b.Wake()) // coalescing is allowed, blocking is not
	h.wait(-1)
	require.False(h.t, h.pending(safety), "Wait(-1) after Wake blocked until the safety timeout")
	cancel := h.submit(&backend.Op{Kind: backend.KindCancel, Target: safety})
	h.expectRes(safety, eCANCELED)
	h.expectRes(cancel, 0)
}

// Submit fails for unknown kinds and produces no completion for them.
func testSubmitRejects(h *harness) {
	bad := &backend.Op{Kind: backend.Kind(200), Token: h.token()}
	require.Error(h.t, h.b.Submit(bad))
	tok := h.submit(&backend.Op{Kind: backend.KindNop})
	h.expectRes(tok, 0)
	h.settle() // a completion for bad would fail record (unknown token)
}

// Close with ops parked on sockets, a timer and a multishot accept must return,
// leak nothing, and make every method report ErrClosed.
func testCloseInFlight(h *harness) {
	a, _ := h.socketpair()
	ln, _ := h.listener()
	buf := make([]byte, 64)
	toks := []backend.Token{
		h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(a), Buf: buf}),
		h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(a), BufferSelect: true, Multishot: true}),
		h.submit(&backend.Op{Kind: backend.KindPoll, Fd: int32(a), Events: unix.POLLIN}),
		h.submit(&backend.Op{Kind: backend.KindAccept, Fd: int32(ln), Multishot: true}),
		h.submit(&backend.Op{Kind: backend.KindTimeout, Timeout: time.Hour}),
	}
	h.settle()
	for _, tok := range toks {
		require.False(h.t, h.pending(tok), "%v completed with nothing to do", h.ops[tok].op.Kind)
		h.leave(tok)
	}
	// One more submitted but never flushed by a Wait.
	h.leave(h.submit(&backend.Op{Kind: backend.KindNop}))
	h.closeBackend()

	require.ErrorIs(h.t, h.b.Submit(&backend.Op{Kind: backend.KindNop}), backend.ErrClosed)
	_, err := h.b.Wait(h.out, 0)
	require.ErrorIs(h.t, err, backend.ErrClosed)
	require.ErrorIs(h.t, h.b.Wake(), backend.ErrClosed)
	require.True(h.t, errors.Is(h.b.Close(), backend.ErrClosed), "second Close must report ErrClosed")
	h.b.ReleaseBuffer(0) // must not panic
}

// Close while provided buffers are still held by the caller (never released)
// and a multishot recv is still armed must return and leak nothing.
func testCloseBuffersHeld(h *harness) {
	a, b := h.socketpair()
	tok := h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(b), BufferSelect: true, Multishot: true})
	h.writeAll(a, pattern(300, 2))
	got := 0
	deadline := time.Now().Add(waitLimit)
	for got < 300 && !h.ops[tok].final {
		require.True(h.t, time.Now().Before(deadline), "multishot recv delivered %d of 300 bytes", got)
		h.wait(100 * time.Millisecond)
		for h.pending(tok) {
			got += max(int(h.next(tok).Res), 0)
		}
	}
	require.NotEmpty(h.t, h.held)
	h.leave(tok)
	h.closeBackend()
	clear(h.held) // the pool is gone with the backend
}
