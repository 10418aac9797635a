package backendtest

import (
	"os"
	"path/filepath"
	"sync"
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
		{name: "file_read_write", fn: testFile},
		{name: "poll", fn: testPoll},
		{name: "poll_multishot", fn: testPollMultishot},
		{name: "cancel_fd", fn: testCancelFd},
		{name: "cancel_same_batch", fn: testCancelSameBatch},
		{name: "cancel_each_parked_kind", fn: testCancelEachKind},
		{name: "mixed_load_one_final_each", fn: testMixedLoad},
		{name: "fd_reuse_after_close_op", fn: func(h *harness) { testFdReuse(h, true) }},
		{name: "fd_reuse_after_direct_close", fn: func(h *harness) { testFdReuse(h, false) }},
		{name: "wake_storm", fn: testWakeStorm},
		{name: "bad_descriptors", fn: testBadFds},
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

// Regular files: read and write at the current offset, never parked.
func testFile(h *harness) {
	f, err := os.OpenFile(filepath.Join(h.t.TempDir(), "data"), os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(h.t, err)
	fd, err := unix.Dup(int(f.Fd())) // a descriptor of our own, not os.File's
	require.NoError(h.t, err)
	require.NoError(h.t, f.Close())
	h.track(fd)
	data := pattern(10000, 4)
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindWrite, Fd: int32(fd), Buf: data[:6000]}), 6000)
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindWrite, Fd: int32(fd), Buf: data[6000:]}), 4000)
	_, err = unix.Seek(fd, 0, 0)
	require.NoError(h.t, err)
	buf := make([]byte, 20000)
	got := 0
	for got < len(data) {
		c, _ := h.final(h.submit(&backend.Op{Kind: backend.KindRead, Fd: int32(fd), Buf: buf[got:]}))
		require.Greater(h.t, c.Res, int32(0), "file read: %s", errText(c.Res))
		got += int(c.Res)
	}
	require.Equal(h.t, data, buf[:got])
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindRead, Fd: int32(fd), Buf: buf}), 0) // EOF
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

// A descriptor that had ops waiting on it is closed (through KindClose, or
// directly by the caller after cancelling them) and its number is reused at
// once: ops on the new descriptor must work, and nothing meant for the old one
// may reach them.
func testFdReuse(h *harness, closeOp bool) {
	for round := 0; round < 3; round++ {
		a, b := h.socketpair()
		ln, _ := h.listener()
		recv := h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(a), Buf: make([]byte, 8)})
		acc := h.submit(&backend.Op{Kind: backend.KindAccept, Fd: int32(ln), Multishot: true})
		h.settle()
		for _, fd := range []int{a, ln} {
			h.expectRes(h.submit(&backend.Op{Kind: backend.KindCancelFd, Fd: int32(fd)}), 1)
		}
		h.expectRes(recv, eCANCELED)
		h.expectRes(acc, eCANCELED)
		for _, fd := range []int{a, b, ln} {
			if closeOp {
				h.untrack(fd)
				h.expectRes(h.submit(&backend.Op{Kind: backend.KindClose, Fd: int32(fd)}), 0)
			} else {
				h.closeNow(fd)
			}
		}
		// The lowest free numbers are reused: the new listener and pair take
		// the old numbers, in some order.
		ln2, port2 := h.listener()
		c, d := h.socketpair()
		buf := make([]byte, 8)
		recv = h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(c), Buf: buf})
		acc = h.submit(&backend.Op{Kind: backend.KindAccept, Fd: int32(ln2)})
		h.settle()
		require.False(h.t, h.pending(recv), "recv on a reused descriptor completed with no data")
		require.False(h.t, h.pending(acc), "accept on a reused descriptor completed with no client")
		h.writeAll(d, []byte("new"))
		h.expectRes(recv, 3)
		require.Equal(h.t, "new", string(buf[:3]))
		h.dial(port2)
		last, _ := h.final(acc)
		checkAccepted(h, last.Res)
	}
}

// Many goroutines hammer Wake while the loop waits; every Wait(-1) returns and
// a Wake after the storm still wakes the next Wait.
func testWakeStorm(h *harness) {
	safety := h.submit(&backend.Op{Kind: backend.KindTimeout, Timeout: waitLimit})
	var wg sync.WaitGroup
	var stop atomic.Bool
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000 && !stop.Load(); i++ {
				if err := h.b.Wake(); err != nil {
					h.t.Errorf("Wake: %v", err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		default:
			h.wait(10 * time.Millisecond)
			require.False(h.t, h.pending(safety), "storm outlived the safety timeout")
		}
	}
	stop.Store(true)
	require.NoError(h.t, h.b.Wake())
	h.wait(-1)
	require.False(h.t, h.pending(safety), "a Wake after the storm did not wake Wait")
	cancel := h.submit(&backend.Op{Kind: backend.KindCancel, Target: safety})
	h.expectRes(safety, eCANCELED)
	h.expectRes(cancel, 0)
}

// Ops on descriptors that do not exist fail with -EBADF; nothing hangs, panics
// or leaks.
func testBadFds(h *harness) {
	closed := h.socket(unix.SOCK_STREAM)
	h.closeNow(closed)
	for _, fd := range []int32{-1, int32(closed), 1 << 30} {
		for _, op := range []*backend.Op{
			{Kind: backend.KindRecv, Fd: fd, Buf: make([]byte, 4)},
			{Kind: backend.KindRecv, Fd: fd, BufferSelect: true, Multishot: true},
			{Kind: backend.KindSend, Fd: fd, Buf: []byte("x")},
			{Kind: backend.KindAccept, Fd: fd, Multishot: true},
			{Kind: backend.KindPoll, Fd: fd, Events: unix.POLLIN},
			{Kind: backend.KindPoll, Fd: fd, Events: unix.POLLIN, Multishot: true},
			{Kind: backend.KindRead, Fd: fd, Buf: make([]byte, 4)},
			{Kind: backend.KindClose, Fd: fd},
		} {
			c, _ := h.final(h.submit(op))
			require.Equal(h.t, -int32(unix.EBADF), c.Res, "%v on fd %d: %s", op.Kind, fd, errText(c.Res))
		}
	}
}

// Every kind of op that can wait can be cancelled by token while it waits: a
// send on a full socket, an accept, a pipe read and write, a recvmsg, a poll.
func testCancelEachKind(h *harness) {
	a, _ := h.socketpair()
	full := make([]byte, 65536)
	for { // fill a's send buffer (and the peer's receive buffer)
		if _, err := unix.Write(a, full); err != nil {
			require.ErrorIs(h.t, err, unix.EAGAIN)
			break
		}
	}
	ln, _ := h.listener()
	r, _ := h.pipe(false)
	_, w := h.pipe(false)
	for { // fill the second pipe
		if _, err := unix.Write(w, full); err != nil {
			require.ErrorIs(h.t, err, unix.EAGAIN)
			break
		}
	}
	u, _ := h.udp()
	var from unix.RawSockaddrAny
	ops := []*backend.Op{
		{Kind: backend.KindSend, Fd: int32(a), Buf: full[:1000]},
		{Kind: backend.KindSendv, Fd: int32(a), Bufs: [][]byte{full[:10], full[:10]}},
		{Kind: backend.KindAccept, Fd: int32(ln)},
		{Kind: backend.KindRead, Fd: int32(r), Buf: make([]byte, 8)},
		{Kind: backend.KindWrite, Fd: int32(w), Buf: full[:1000]},
		{Kind: backend.KindRecvMsg, Fd: int32(u), Buf: make([]byte, 8), Addr: &from, AddrLen: unix.SizeofSockaddrAny},
		{Kind: backend.KindPoll, Fd: int32(r), Events: unix.POLLIN},
	}
	for _, op := range ops {
		h.submit(op)
	}
	h.settle()
	for _, op := range ops {
		require.False(h.t, h.pending(op.Token), "%v completed while it should wait", op.Kind)
		cancel := h.submit(&backend.Op{Kind: backend.KindCancel, Target: op.Token})
		last, _ := h.final(op.Token)
		require.Equal(h.t, eCANCELED, last.Res, "%v: %s", op.Kind, errText(last.Res))
		h.expectRes(cancel, 0)
	}
}
