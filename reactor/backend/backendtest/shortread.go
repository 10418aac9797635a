package backendtest

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
)

// shortReadScenarios: a multishot recv must deliver everything queued on its
// socket without more traffic arriving, whatever a short read seems to say.
// A backend may stop reading after a recv that returned less than it asked
// for (a byte stream is then empty, and new bytes raise a new edge), but not
// when that read consumed an end of stream, stopped at TCP's urgent mark, or
// took one of several queued datagrams.
func shortReadScenarios() []scenario {
	var all []scenario
	for _, kind := range []string{"unix", "tcp"} {
		for _, mode := range []string{"parked", "queued", "rearmed_while_send_parked"} {
			all = append(all, scenario{
				name: fmt.Sprintf("multishot_recv_data_then_eof_%s_%s", kind, mode),
				fn:   func(h *harness) { testDataThenEOF(h, kind, mode) },
			})
		}
	}
	for _, mode := range []string{"parked", "queued"} {
		all = append(all, scenario{
			name: "multishot_recv_tcp_urgent_mark_" + mode,
			fn:   func(h *harness) { testUrgentMark(h, mode == "parked") },
		})
		all = append(all, scenario{
			name: "multishot_recv_tcp_urgent_mark_signalled_" + mode,
			fn:   func(h *harness) { testUrgentMarkSignalled(h, mode == "parked") },
		})
		for _, kind := range []string{"udp", "unixgram", "seqpacket"} {
			all = append(all, scenario{
				name: fmt.Sprintf("multishot_recv_queued_datagrams_%s_%s", kind, mode),
				fn:   func(h *harness) { testQueuedDatagrams(h, kind, mode == "parked") },
			})
		}
	}
	for _, registered := range []bool{true, false} {
		all = append(all, scenario{
			name: fmt.Sprintf("multishot_recv_stream_number_reused_by_datagrams_registered_%v", registered),
			cfg:  backend.Config{BufferCount: 64, BufferSize: 1 << 10},
			fn:   func(h *harness) { testStreamReusedByDgram(h, registered) },
		})
	}
	big := backend.Config{BufferCount: 64, BufferSize: 1 << 10}
	for _, kind := range []string{"unix", "tcp"} {
		all = append(all, scenario{name: "multishot_recv_large_writes_" + kind, cfg: big, fn: func(h *harness) { testLargeWrites(h, kind) }})
	}
	return all
}

// streamPairOf returns a connected stream pair (writer, reader) of kind
// "unix" or "tcp".
func (h *harness) streamPairOf(kind string) (int, int) {
	if kind == "tcp" {
		return h.tcpPair()
	}
	return h.socketpair()
}

// collect pumps m until it holds want bytes (or has ended), failing after
// waitLimit: nothing more is written meanwhile, so a backend that waits for
// an edge that will not come fails here.
func (m *msRecv) collect(want int) {
	deadline := time.Now().Add(waitLimit)
	for !m.pump(false) && len(m.got) < want {
		require.True(m.h.t, time.Now().Before(deadline), "multishot recv stalled with %d of %d bytes", len(m.got), want)
		m.h.wait(50 * time.Millisecond)
	}
}

// cancel ends m's op and waits for its final completion (-ECANCELED),
// releasing any buffer delivered meanwhile.
func (m *msRecv) cancel() {
	h := m.h
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindCancel, Target: m.tok}), 0)
	last, more := h.final(m.tok)
	require.Equal(h.t, eCANCELED, last.Res, "cancelled multishot recv: %s", errText(last.Res))
	for _, c := range more {
		if c.Flags&backend.FlagBuffer != 0 {
			h.release(c.BufID)
		}
	}
}

// A few bytes followed at once by the end of the stream: the recv that takes
// the bytes is short, and may consume the FIN's readiness with them. The
// end must still be reported (final completion, Res 0).
//   - parked: the recv waits on an idle socket when both arrive;
//   - queued: both are queued before the recv is submitted;
//   - rearmed_while_send_parked: both arrive (and are seen by the backend)
//     while no recv is armed but a send waits on the same socket, then a
//     fresh multishot recv is submitted.
func testDataThenEOF(h *harness, kind, mode string) {
	w, r := h.streamPairOf(kind)
	msg := []byte("last words")
	m := &msRecv{h: h, fd: r}
	var send backend.Token
	switch mode {
	case "parked":
		m.arm()
		h.settle()
	case "rearmed_while_send_parked":
		m.arm()
		h.settle()
		m.cancel()
		// Fill r's send direction (w does not read) so a send parks on r.
		for {
			if _, err := unix.Write(r, make([]byte, 64<<10)); err != nil {
				require.ErrorIs(h.t, err, unix.EAGAIN)
				break
			}
		}
		send = h.submit(&backend.Op{Kind: backend.KindSend, Fd: int32(r), Buf: make([]byte, 1<<10)})
		h.settle()
		require.False(h.t, h.pending(send), "send on a full socket completed")
	}
	h.writeAll(w, msg)
	require.NoError(h.t, unix.Shutdown(w, unix.SHUT_WR))
	if mode == "rearmed_while_send_parked" {
		h.settle() // the end's readiness is reported while no recv waits
	}
	if mode != "parked" {
		m.arm()
	}
	m.collect(len(msg) + 1)
	require.True(h.t, m.eof, "end of stream not reported after %q", m.got)
	require.Equal(h.t, string(msg), string(m.got))
	if send != 0 {
		// End the send however it stands: io_uring may be blocked in it
		// (-EALREADY) until the peer goes away.
		c, _ := h.final(h.submit(&backend.Op{Kind: backend.KindCancel, Target: send}))
		require.Contains(h.t, []int32{0, -int32(unix.ENOENT), -int32(unix.EALREADY)}, c.Res, "cancel: %s", errText(c.Res))
		h.closeNow(w)
		h.final(send)
	}
}

// TCP urgent data: recv stops at the urgent mark (the urgent byte itself is
// out of band), so the read before it is short though bytes follow. They
// must be delivered without more traffic.
func testUrgentMark(h *harness, parked bool) {
	w, r := h.tcpPair()
	urgentRound(h, w, r, parked, nil)
}

// urgentRound sends "ab", the urgent byte and "cd" from w and has a multishot
// recv on r collect "abcd"; storm (if not nil) is on from the first write to
// the last byte received.
func urgentRound(h *harness, w, r int, parked bool, storm *atomic.Bool) {
	m := &msRecv{h: h, fd: r}
	if parked {
		m.arm()
		h.settle()
	}
	if storm != nil {
		storm.Store(true)
		defer storm.Store(false)
	}
	h.writeAll(w, []byte("ab"))
	_, err := unix.SendmsgN(w, []byte("!"), nil, nil, unix.MSG_OOB)
	require.NoError(h.t, err)
	h.writeAll(w, []byte("cd"))
	if !parked {
		// Let every segment arrive before the recv starts.
		pfd := []unix.PollFd{{Fd: int32(r), Events: unix.POLLPRI}}
		_, _ = unix.Poll(pfd, int(waitLimit.Milliseconds()))
		m.arm()
	}
	m.collect(4)
	require.Equal(h.t, "abcd", string(m.got))
	m.cancel()
}

// testUrgentMarkSignalled is testUrgentMark with signals landing on the
// thread that drives the backend. A recv at TCP's urgent mark that finds a
// signal pending returns EAGAIN although bytes wait behind the mark
// (tcp_recvmsg_locked: "Stop if we have read anything or have SIGURG
// pending", for any signal), and no new edge announces them: a backend that
// trusts that EAGAIN stalls. Go sends such signals itself (SIGURG for
// preemption, SIGPROF while profiling). The storm is bounded in rounds and
// time; every round must deliver all four bytes.
func testUrgentMarkSignalled(h *harness, parked bool) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	var storm, stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pid := unix.Getpid()
		for !stop.Load() {
			if storm.Load() {
				_ = unix.Tgkill(pid, tid, unix.SIGURG)
			} else {
				runtime.Gosched()
			}
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()
	end := time.Now().Add(time.Second)
	for round := 0; round < 100 && time.Now().Before(end); round++ {
		w, r := h.tcpPair()
		require.NoError(h.t, unix.SetsockoptInt(w, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1))
		urgentRound(h, w, r, parked, &storm)
		h.closeNow(w)
		h.closeNow(r)
	}
}

// Datagrams (and records) queued together: each recv takes one and is
// short, yet the others must be delivered without more traffic.
func testQueuedDatagrams(h *harness, kind string, parked bool) {
	var w, r int
	var to *unix.RawSockaddrAny
	var tolen uint32
	switch kind {
	case "udp":
		w, _ = h.udp()
		var port int
		r, port = h.udp()
		to, tolen = inet4(port)
	case "unixgram":
		w, r = h.socketpairType(unix.SOCK_DGRAM)
	case "seqpacket":
		w, r = h.socketpairType(unix.SOCK_SEQPACKET)
	}
	m := &msRecv{h: h, fd: r}
	if parked {
		m.arm()
		h.settle()
	}
	const n = 5
	want := ""
	for i := 0; i < n; i++ {
		msg := fmt.Sprintf("datagram %d", i)
		want += msg
		h.expectRes(h.submit(&backend.Op{Kind: backend.KindSendMsg, Fd: int32(w), Buf: []byte(msg), Addr: to, AddrLen: tolen}), int32(len(msg)))
	}
	if !parked {
		m.arm()
	}
	m.collect(len(want))
	require.Equal(h.t, want, string(m.got))
	m.cancel()
}

// A stream socket's number, once read with a multishot recv, is closed
// directly and reused by a datagram socket with several datagrams queued:
// what the backend learnt about the old socket must not make it stop after
// the first datagram. registered: the first recv waited for its data (an
// epoll backend registered the descriptor); otherwise a buffer's worth of
// data and the end of the stream were queued before it, so it may have
// finished without ever waiting.
func testStreamReusedByDgram(h *harness, registered bool) {
	w, r := h.socketpair()
	m := &msRecv{h: h, fd: r}
	msg := pattern(1<<10, 3) // one provided buffer exactly
	if registered {
		m.arm()
		h.settle()
		h.writeAll(w, msg)
		m.collect(len(msg))
		m.cancel()
	} else {
		h.writeAll(w, msg)
		require.NoError(h.t, unix.Shutdown(w, unix.SHUT_WR))
		m.arm()
		m.collect(len(msg) + 1)
		require.True(h.t, m.eof, "end of stream not reported")
	}
	require.Equal(h.t, msg, m.got)
	gw, gr := h.socketpairType(unix.SOCK_DGRAM)
	h.closeNow(r)
	require.NoError(h.t, unix.Dup3(gr, r, unix.O_CLOEXEC))
	h.track(r)
	want := ""
	for i := 0; i < 5; i++ {
		msg := fmt.Sprintf("dgram %d", i)
		want += msg
		_, err := unix.Write(gw, []byte(msg))
		require.NoError(h.t, err)
	}
	m2 := &msRecv{h: h, fd: r}
	m2.arm()
	m2.collect(len(want))
	require.Equal(h.t, want, string(m2.got))
	m2.cancel()
}

// Large writes of varied sizes, many buffers each, through one multishot recv
// on a small pool (a backend may read several buffers at once): the stream
// arrives whole and in order, each buffer handed out once, re-arming after
// ENOBUFS; then the end of the stream ends it.
func testLargeWrites(h *harness, kind string) {
	w, r := h.streamPairOf(kind)
	m := &msRecv{h: h, fd: r}
	m.arm()
	var want []byte
	for i, size := range []int{64 << 10, 1, 1 << 10, 200 << 10, 1023, 1025, 33 << 10, 17} {
		want = append(want, pattern(size, byte(i*13))...)
	}
	deadline := time.Now().Add(waitLimit)
	for rest := want; len(rest) > 0 || len(m.got) < len(want); {
		if len(rest) > 0 {
			n, err := unix.Write(w, rest)
			if err != unix.EAGAIN {
				require.NoError(h.t, err)
				rest = rest[n:]
			}
		}
		m.pump(true)
		require.True(h.t, time.Now().Before(deadline), "stalled with %d of %d bytes", len(m.got), len(want))
		if len(m.got) < len(want) {
			h.wait(10 * time.Millisecond)
		}
	}
	require.True(h.t, bytes.Equal(want, m.got), "stream corrupted")
	h.closeNow(w)
	m.collect(len(want) + 1)
	require.True(h.t, m.eof, "end of stream not reported")
}
