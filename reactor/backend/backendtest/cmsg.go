package backendtest

import (
	"fmt"
	"os"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
)

// cmsgScenarios: control messages (Op.Control) on sendmsg and recvmsg:
// SCM_RIGHTS and SCM_CREDENTIALS over AF_UNIX stream and datagram sockets.
func cmsgScenarios() []scenario {
	return []scenario{
		{name: "cmsg_rights_stream_both_ways", fn: testCmsgRightsStream},
		{name: "cmsg_credentials", fn: testCmsgCredentials},
		{name: "cmsg_ctrunc_closes_extra_fds", fn: testCmsgCtrunc},
		{name: "cmsg_recv_without_control_drops_fds", fn: testCmsgRecvWithoutControl},
		{name: "cmsg_rights_dgram", fn: testCmsgRightsDgram},
		{name: "cmsg_stream_zero_bytes_passes_nothing", fn: testCmsgStreamZeroBytes},
		{name: "cmsg_malformed_control_einval", fn: testCmsgMalformed},
		{name: "cmsg_close_discards_received_fds", fn: testCmsgCloseDiscards},
	}
}

// socketpairType returns a connected AF_UNIX pair of type typ.
func (h *harness) socketpairType(typ int) (int, int) {
	h.t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(h.t, err)
	return h.track(fds[0]), h.track(fds[1])
}

// rightsOf parses the SCM_RIGHTS descriptors out of control messages and
// tracks them for cleanup.
func (h *harness) rightsOf(control []byte) []int {
	h.t.Helper()
	msgs, err := unix.ParseSocketControlMessage(control)
	require.NoError(h.t, err)
	var fds []int
	for i := range msgs {
		if msgs[i].Header.Level == unix.SOL_SOCKET && msgs[i].Header.Type == unix.SCM_RIGHTS {
			got, err := unix.ParseUnixRights(&msgs[i])
			require.NoError(h.t, err)
			for _, fd := range got {
				fds = append(fds, h.track(fd))
			}
		}
	}
	return fds
}

// requireCloexec checks that fd is open and close-on-exec.
func (h *harness) requireCloexec(fd int) {
	h.t.Helper()
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	require.NoError(h.t, err)
	require.NotZero(h.t, fl&unix.FD_CLOEXEC, "received descriptor %d must be close-on-exec (MSG_CMSG_CLOEXEC)", fd)
}

// requirePipeWorks writes through w and reads the bytes back from r.
func (h *harness) requirePipeWorks(r, w int, msg string) {
	h.t.Helper()
	h.writeAll(w, []byte(msg))
	require.Equal(h.t, msg, string(h.readN(r, len(msg))))
}

// requireNoReader checks that every descriptor of a pipe's read end is closed
// (in this process and in flight in a socket): a write fails with EPIPE.
func (h *harness) requireNoReader(w int) {
	h.t.Helper()
	_, err := unix.Write(w, []byte("?"))
	require.ErrorIs(h.t, err, unix.EPIPE, "a copy of the pipe's read end is still open somewhere")
}

// sendRights sends data with an SCM_RIGHTS message for fds on fd through the
// backend and checks the result.
func (h *harness) sendRights(fd int, data []byte, fds ...int) {
	h.t.Helper()
	op := &backend.Op{Kind: backend.KindSendMsg, Fd: int32(fd), Buf: data, Control: unix.UnixRights(fds...)}
	h.expectRes(h.submit(op), int32(len(data)))
}

// A descriptor passes over a stream socketpair in both directions, with the
// receive parked before the send in one and issued after it in the other;
// it arrives close-on-exec and working, and the descriptor count returns to
// its baseline once everything is closed.
func testCmsgRightsStream(h *harness) {
	base := countFds(h.t)
	a, b := h.socketpair()
	pr, pw := h.pipe(false)

	// a -> b, receive parked first; data vectored.
	buf := make([]byte, 16)
	ctl := make([]byte, unix.CmsgSpace(4))
	recvOp := &backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Buf: buf, Control: ctl}
	recv := h.submit(recvOp)
	h.settle()
	require.False(h.t, h.pending(recv), "recvmsg completed with nothing sent")
	send := &backend.Op{Kind: backend.KindSendMsg, Fd: int32(a), Bufs: [][]byte{[]byte("f"), []byte("d!")}, Control: unix.UnixRights(pr)}
	h.expectRes(h.submit(send), 3)
	c := h.expectRes(recv, 3)
	require.Equal(h.t, "fd!", string(buf[:3]))
	require.Zero(h.t, c.Flags&(backend.FlagCtrunc|backend.FlagTrunc))
	require.NotEmpty(h.t, c.Control)
	require.Same(h.t, &ctl[0], &c.Control[0], "Control must be a view of Op.Control")
	got := h.rightsOf(c.Control)
	require.Len(h.t, got, 1)
	h.requireCloexec(got[0])
	h.requirePipeWorks(got[0], pw, "through a passed read end")
	require.Equal(h.t, base+5, countFds(h.t), "a, b, pr, pw and one received descriptor")
	h.closeNow(got[0])

	// b -> a, send first: the write end travels back.
	h.sendRights(b, []byte("w"), pw)
	ctl2 := make([]byte, unix.CmsgSpace(4))
	c = h.expectRes(h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(a), Buf: buf, Control: ctl2}), 1)
	require.Equal(h.t, byte('w'), buf[0])
	got = h.rightsOf(c.Control)
	require.Len(h.t, got, 1)
	h.requireCloexec(got[0])
	h.requirePipeWorks(pr, got[0], "through a passed write end")
	h.closeNow(got[0])

	// Without descriptors a recvmsg with Control reports none.
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindSendMsg, Fd: int32(a), Buf: []byte("plain")}), 5)
	c = h.expectRes(h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Buf: buf, Control: ctl}), 5)
	require.Empty(h.t, c.Control)
	require.Zero(h.t, c.Flags&backend.FlagCtrunc)

	for _, fd := range []int{a, b, pr, pw} {
		h.closeNow(fd)
	}
	require.Equal(h.t, base, countFds(h.t), "descriptor count back to baseline")
}

// SCM_CREDENTIALS: with SO_PASSCRED the receiver gets the sender's
// credentials, sent explicitly or filled in by the kernel.
func testCmsgCredentials(h *harness) {
	a, b := h.socketpair()
	require.NoError(h.t, unix.SetsockoptInt(b, unix.SOL_SOCKET, unix.SO_PASSCRED, 1))
	me := unix.Ucred{Pid: int32(os.Getpid()), Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())}
	buf := make([]byte, 16)
	for _, explicit := range []bool{true, false} {
		send := &backend.Op{Kind: backend.KindSendMsg, Fd: int32(a), Buf: []byte("cred")}
		if explicit {
			send.Control = unix.UnixCredentials(&me)
		}
		h.expectRes(h.submit(send), 4)
		ctl := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
		c := h.expectRes(h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Buf: buf, Control: ctl}), 4)
		require.Zero(h.t, c.Flags&backend.FlagCtrunc)
		msgs, err := unix.ParseSocketControlMessage(c.Control)
		require.NoError(h.t, err)
		require.Len(h.t, msgs, 1)
		cred, err := unix.ParseUnixCredentials(&msgs[0])
		require.NoError(h.t, err)
		require.Equal(h.t, me, *cred, "explicit=%v", explicit)
	}
}

// A control buffer too small for every descriptor: FlagCtrunc, the
// descriptors that fit are installed (close-on-exec), the others are closed by
// the kernel and hold nothing open.
func testCmsgCtrunc(h *harness) {
	a, b := h.socketpair()
	buf := make([]byte, 16)
	for _, tc := range []struct {
		room int // bytes of Control
		fit  int // descriptors that fit in it
	}{
		{unix.CmsgSpace(4), 2}, // aligned room for two of three
		{unix.CmsgLen(4), 1},
		{8, 0}, // not even a cmsghdr
	} {
		base := countFds(h.t)
		pr, pw := h.pipe(false)
		d1, err := unix.Dup(pr)
		require.NoError(h.t, err)
		d2, err := unix.Dup(pr)
		require.NoError(h.t, err)
		h.sendRights(a, []byte("3"), pr, d1, d2)
		require.NoError(h.t, unix.Close(d1))
		require.NoError(h.t, unix.Close(d2))
		h.closeNow(pr)

		ctl := make([]byte, tc.room)
		c := h.expectRes(h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Buf: buf, Control: ctl}), 1)
		require.NotZero(h.t, c.Flags&backend.FlagCtrunc, "room %d: MSG_CTRUNC expected", tc.room)
		var got []int
		if len(c.Control) > 0 {
			got = h.rightsOf(c.Control)
		}
		require.Len(h.t, got, tc.fit, "room %d", tc.room)
		require.Equal(h.t, base+1+tc.fit, countFds(h.t), "room %d: pw and the received descriptors only", tc.room)
		for _, fd := range got {
			h.requireCloexec(fd)
			h.closeNow(fd)
		}
		h.requireNoReader(pw)
		h.closeNow(pw)
		require.Equal(h.t, base, countFds(h.t), "room %d: count back to baseline", tc.room)
	}
}

// A recvmsg without Control (as a recv) reading the byte a descriptor is
// attached to: FlagCtrunc, and the kernel closes the descriptor.
func testCmsgRecvWithoutControl(h *harness) {
	a, b := h.socketpair()
	base := countFds(h.t)
	pr, pw := h.pipe(false)
	h.sendRights(a, []byte("x"), pr)
	h.closeNow(pr)
	buf := make([]byte, 4)
	c := h.expectRes(h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Buf: buf}), 1)
	require.NotZero(h.t, c.Flags&backend.FlagCtrunc)
	require.Nil(h.t, c.Control)
	// The same through a plain recv.
	h.sendRights(a, []byte("y"), pw)
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(b), Buf: buf}), 1)
	require.Equal(h.t, byte('y'), buf[0])
	h.requireNoReader(pw)
	h.closeNow(pw)
	require.Equal(h.t, base, countFds(h.t))
}

// Datagram AF_UNIX sockets: a descriptor with data on a connected pair (the
// receive parked first), with an empty datagram, into a provided buffer, with
// both data and control truncated, and to an address from a bound (abstract)
// sender whose address the receiver gets back.
func testCmsgRightsDgram(h *harness) {
	base := countFds(h.t)
	a, b := h.socketpairType(unix.SOCK_DGRAM)
	pr, pw := h.pipe(false)
	buf := make([]byte, 32)
	ctl := make([]byte, unix.CmsgSpace(4))
	checkOne := func(c backend.Completion) {
		h.t.Helper()
		got := h.rightsOf(c.Control)
		require.Len(h.t, got, 1)
		h.requireCloexec(got[0])
		h.requirePipeWorks(got[0], pw, "dgram")
		h.closeNow(got[0])
	}

	recv := h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Buf: buf, Control: ctl})
	h.settle()
	require.False(h.t, h.pending(recv))
	h.sendRights(a, []byte("dgram"), pr)
	c := h.expectRes(recv, 5)
	require.Zero(h.t, c.Flags&(backend.FlagTrunc|backend.FlagCtrunc))
	require.Equal(h.t, "dgram", string(buf[:5]))
	checkOne(c)

	// An empty datagram carries a descriptor too.
	h.sendRights(a, nil, pr)
	checkOne(h.expectRes(h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Buf: buf, Control: ctl}), 0))

	// A provided buffer for the data, the caller's Control for the rest.
	h.sendRights(a, []byte("pool"), pr)
	c = h.expectRes(h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), BufferSelect: true, Control: ctl}), 4)
	require.NotZero(h.t, c.Flags&backend.FlagBuffer)
	require.Equal(h.t, "pool", string(c.Buf))
	h.release(c.BufID)
	checkOne(c)

	// An empty datagram into a provided buffer: Res 0 and no buffer handed
	// out (as for the end of a stream), the descriptor still delivered.
	h.sendRights(a, nil, pr)
	c = h.expectRes(h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), BufferSelect: true, Control: ctl}), 0)
	require.Zero(h.t, c.Flags&backend.FlagBuffer, "no provided buffer for an empty datagram")
	checkOne(c)

	// Both truncated: the datagram's tail and the descriptor are gone.
	h.sendRights(a, pattern(20, 3), pr)
	c = h.expectRes(h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Buf: buf[:4], Control: ctl[:8]}), 4)
	require.Equal(h.t, backend.FlagTrunc|backend.FlagCtrunc, c.Flags&(backend.FlagTrunc|backend.FlagCtrunc))
	require.Nil(h.t, c.Control)

	// Addressed: bound sender and receiver.
	tag := fmt.Sprintf("gyre-backendtest-%d-%d", os.Getpid(), time.Now().UnixNano())
	snd := h.unixgram("@" + tag + "-s")
	rcv := h.unixgram("@" + tag + "-r")
	to, tolen := abstractAddr(tag + "-r")
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindSendMsg, Fd: int32(snd), Bufs: [][]byte{[]byte("to "), []byte("you")},
		Addr: to, AddrLen: tolen, Control: unix.UnixRights(pr)}), 6)
	var from unix.RawSockaddrAny
	recvOp := &backend.Op{Kind: backend.KindRecvMsg, Fd: int32(rcv), Buf: buf, Addr: &from, Control: ctl}
	c = h.expectRes(h.submit(recvOp), 6)
	require.Equal(h.t, "to you", string(buf[:6]))
	want, wantLen := abstractAddr(tag + "-s")
	require.Equal(h.t, wantLen, recvOp.AddrLen, "sender's address length")
	require.Equal(h.t, unsafe.Slice((*byte)(unsafe.Pointer(want)), wantLen), unsafe.Slice((*byte)(unsafe.Pointer(&from)), recvOp.AddrLen))
	checkOne(c)

	for _, fd := range []int{a, b, pr, pw, snd, rcv} {
		h.closeNow(fd)
	}
	require.Equal(h.t, base, countFds(h.t))
}

// unixgram returns a non-blocking AF_UNIX datagram socket bound to name.
func (h *harness) unixgram(name string) int {
	h.t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(h.t, err)
	h.track(fd)
	require.NoError(h.t, unix.Bind(fd, &unix.SockaddrUnix{Name: name}))
	return fd
}

// abstractAddr is the raw AF_UNIX address of the abstract name (no leading
// '@') and its length.
func abstractAddr(name string) (*unix.RawSockaddrAny, uint32) {
	var raw unix.RawSockaddrAny
	sa := (*unix.RawSockaddrUnix)(unsafe.Pointer(&raw))
	sa.Family = unix.AF_UNIX
	for i := range len(name) {
		sa.Path[1+i] = int8(name[i])
	}
	return &raw, uint32(2 + 1 + len(name))
}

// A stream sendmsg of zero bytes with control messages sends nothing, so the
// descriptor is not passed (Linux); both backends report Res 0.
func testCmsgStreamZeroBytes(h *harness) {
	a, b := h.socketpair()
	base := countFds(h.t)
	pr, pw := h.pipe(false)
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindSendMsg, Fd: int32(a), Control: unix.UnixRights(pr)}), 0)
	h.closeNow(pr)
	h.requireNoReader(pw)
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindSendMsg, Fd: int32(a), Buf: []byte("z")}), 1)
	buf := make([]byte, 4)
	c := h.expectRes(h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Buf: buf, Control: make([]byte, 64)}), 1)
	require.Empty(h.t, c.Control)
	h.closeNow(pw)
	require.Equal(h.t, base, countFds(h.t))
}

// A malformed control message is the kernel's to refuse: -EINVAL in the
// completion on every backend, nothing sent.
func testCmsgMalformed(h *harness) {
	a, b := h.socketpair()
	bad := unix.UnixRights(b)
	(*unix.Cmsghdr)(unsafe.Pointer(&bad[0])).Len = 4 // shorter than its own header
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindSendMsg, Fd: int32(a), Buf: []byte("x"), Control: bad}), -int32(unix.EINVAL))
	_, err := unix.Read(b, make([]byte, 1))
	require.ErrorIs(h.t, err, unix.EAGAIN, "nothing may have been sent")
}

// Descriptors received by a recvmsg whose completion Close discards (it was
// still queued in the backend) are closed, not leaked: two datagrams each
// carry a descriptor, two recvmsg ops receive them, one Wait returns a single
// completion, and Close discards the other.
func testCmsgCloseDiscards(h *harness) {
	a, b := h.socketpairType(unix.SOCK_DGRAM)
	pr, pw := h.pipe(false)
	for range 2 {
		require.NoError(h.t, unix.Sendmsg(a, []byte("d"), unix.UnixRights(pr), nil, 0))
	}
	h.closeNow(pr)
	ctl := [2][]byte{make([]byte, unix.CmsgSpace(4)), make([]byte, unix.CmsgSpace(4))}
	buf := [2][]byte{make([]byte, 4), make([]byte, 4)}
	for i := range 2 {
		h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Buf: buf[i], Control: ctl[i]})
	}
	one := make([]backend.Completion, 1)
	deadline := time.Now().Add(waitLimit)
	for {
		n, err := h.b.Wait(one, 100*time.Millisecond)
		require.NoError(h.t, err)
		if n == 1 {
			break
		}
		require.True(h.t, time.Now().Before(deadline), "no recvmsg completion")
	}
	require.Equal(h.t, int32(1), one[0].Res)
	got := h.rightsOf(one[0].Control)
	require.Len(h.t, got, 1)
	h.closeNow(got[0])
	h.closeBackend()
	for _, fd := range []int{a, b} {
		h.closeNow(fd)
	}
	h.requireNoReader(pw) // the second received copy was closed by Close
}
