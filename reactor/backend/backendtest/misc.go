package backendtest

import (
	"sync/atomic"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
)

// miscScenarios: pipes, poll, cancel by descriptor, mixed load.
func miscScenarios() []scenario {
	return []scenario{
		{name: "pipe_read_write", fn: testPipe},
		{name: "pipe_blocking_read_does_not_block_wait", fn: testPipeBlocking},
		{name: "poll", fn: testPoll},
		{name: "poll_multishot", fn: testPollMultishot},
		{name: "cancel_fd", fn: testCancelFd},
		{name: "cancel_same_batch", fn: testCancelSameBatch},
		{name: "mixed_load_one_final_each", fn: testMixedLoad},
	}
}

func testPipe(h *harness) {
	r, w := h.pipe(false)
	buf := make([]byte, 32)
	read := h.submit(&backend.Op{Kind: backend.KindRead, Fd: int32(r), Buf: buf})
	h.settle()
	require.False(h.t, h.pending(read), "read of an empty pipe completed")
	write := h.submit(&backend.Op{Kind: backend.KindWrite, Fd: int32(w), Buf: []byte("through the pipe")})
	h.expectRes(write, 16)
	h.expectRes(read, 16)
	require.Equal(h.t, "through the pipe", string(buf[:16]))
	h.closeNow(w)
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindRead, Fd: int32(r), Buf: buf}), 0)
}

// A read on an empty pipe in blocking mode must park like any other op, not
// block Wait. If it did block, a rescue goroutine writes after waitLimit and the
// scenario fails instead of hanging.
func testPipeBlocking(h *harness) {
	r, w := h.pipe(true)
	buf := make([]byte, 32)
	read := h.submit(&backend.Op{Kind: backend.KindRead, Fd: int32(r), Buf: buf})
	var rescued atomic.Bool
	done := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-stop:
		case <-time.After(waitLimit):
			rescued.Store(true)
			_, _ = unix.Write(w, []byte("rescue"))
		}
	}()
	h.wait(10 * time.Millisecond)
	close(stop)
	<-done
	require.False(h.t, rescued.Load(), "Wait blocked in a read on a blocking pipe")
	require.False(h.t, h.pending(read), "read of an empty pipe completed")
	write := h.submit(&backend.Op{Kind: backend.KindWrite, Fd: int32(w), Buf: []byte("late")})
	h.expectRes(write, 4)
	h.expectRes(read, 4)
}

func testPoll(h *harness) {
	a, b := h.socketpair()
	in := h.submit(&backend.Op{Kind: backend.KindPoll, Fd: int32(b), Events: unix.POLLIN})
	out := h.submit(&backend.Op{Kind: backend.KindPoll, Fd: int32(b), Events: unix.POLLOUT})
	c, _ := h.final(out)
	require.NotZero(h.t, c.Res&unix.POLLOUT, "an empty socket is writable")
	h.settle()
	require.False(h.t, h.pending(in), "POLLIN fired with no data")
	h.writeAll(a, []byte("x"))
	c, _ = h.final(in)
	require.NotZero(h.t, c.Res&unix.POLLIN)
	// Already readable: fires at once.
	c, _ = h.final(h.submit(&backend.Op{Kind: backend.KindPoll, Fd: int32(b), Events: unix.POLLIN}))
	require.NotZero(h.t, c.Res&unix.POLLIN)
}

func testPollMultishot(h *harness) {
	a, b := h.socketpair()
	tok := h.submit(&backend.Op{Kind: backend.KindPoll, Fd: int32(b), Events: unix.POLLIN, Multishot: true})
	h.settle()
	require.False(h.t, h.pending(tok))
	rbuf := make([]byte, 16)
	for i := 0; i < 3; i++ {
		h.writeAll(a, []byte("x"))
		c := h.next(tok)
		require.True(h.t, c.More(), "multishot poll ended early: %s", errText(c.Res))
		require.NotZero(h.t, c.Res&unix.POLLIN)
		_, err := unix.Read(b, rbuf) // drain so the next write is a new event
		require.NoError(h.t, err)
		h.settle()
	}
	cancel := h.submit(&backend.Op{Kind: backend.KindCancel, Target: tok})
	last, _ := h.final(tok)
	require.Equal(h.t, eCANCELED, last.Res)
	h.expectRes(cancel, 0)
}

// KindCancelFd ends every op parked on the descriptor and only those.
func testCancelFd(h *harness) {
	_, b := h.socketpair()
	c, d := h.socketpair()
	buf := make([]byte, 8)
	toks := []backend.Token{
		h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(b), Buf: buf}),
		h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(b), BufferSelect: true, Multishot: true}),
		h.submit(&backend.Op{Kind: backend.KindPoll, Fd: int32(b), Events: unix.POLLIN}),
	}
	other := h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(d), Buf: make([]byte, 8)})
	h.settle()
	cancel := h.submit(&backend.Op{Kind: backend.KindCancelFd, Fd: int32(b)})
	for _, tok := range toks {
		last, _ := h.final(tok)
		require.Equal(h.t, eCANCELED, last.Res, "%v", h.ops[tok].op.Kind)
	}
	h.expectRes(cancel, int32(len(toks)))
	h.settle()
	require.False(h.t, h.pending(other), "cancel by fd touched another descriptor")
	h.writeAll(c, []byte("ok"))
	h.expectRes(other, 2)
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindCancelFd, Fd: int32(b)}), eNOENT)
}

// A cancel submitted in the same batch as its target still ends it.
func testCancelSameBatch(h *harness) {
	_, b := h.socketpair()
	recv := h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(b), Buf: make([]byte, 8)})
	cancel := h.submit(&backend.Op{Kind: backend.KindCancel, Target: recv})
	h.expectRes(recv, eCANCELED)
	c, _ := h.final(cancel)
	require.Contains(h.t, []int32{0, eALREADY}, c.Res)
}

// Many ops of different kinds in flight at once; every one ends with exactly
// one final completion (checked by the harness), whatever order they finish in.
func testMixedLoad(h *harness) {
	const pairs = 16
	type conn struct{ a, b int }
	conns := make([]conn, pairs)
	for i := range conns {
		conns[i].a, conns[i].b = h.socketpair()
	}
	var cancels []backend.Token
	for round := 0; round < 5; round++ {
		for i, c := range conns {
			h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(c.b), Buf: make([]byte, 32)})
			h.submit(&backend.Op{Kind: backend.KindSend, Fd: int32(c.a), Buf: pattern(20, byte(i))})
			h.submit(&backend.Op{Kind: backend.KindNop})
			t := h.submit(&backend.Op{Kind: backend.KindTimeout, Timeout: time.Duration(i%3) * time.Millisecond})
			if i%4 == 0 {
				cancels = append(cancels, h.submit(&backend.Op{Kind: backend.KindCancel, Target: t}))
			}
		}
		h.wait(0)
	}
	// Closing the writers ends any recv still parked (a recv may have taken
	// bytes of two sends). finish() then drains and checks each op.
	for _, c := range conns {
		h.closeNow(c.a)
	}
	for _, c := range cancels {
		last, _ := h.final(c)
		require.Contains(h.t, []int32{0, eNOENT, eALREADY}, last.Res)
	}
}
