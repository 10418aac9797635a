package backendtest

import (
	"errors"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
)

// msBufSize is the provided-buffer size of the multishot recvmsg scenarios:
// small, so truncation is easy to provoke.
const msBufSize = 512

// recvmsgMultiScenarios: multishot KindRecvMsg (the datagram transport's
// receive path), native on io_uring with a buffer ring and emulated
// everywhere else, with the same completions.
func recvmsgMultiScenarios() []scenario {
	small := backend.Config{BufferCount: 4, BufferSize: msBufSize}
	return []scenario{
		{name: "recvmsg_multishot_udp", cfg: backend.Config{BufferSize: msBufSize}, fn: testRecvmsgMultiUDP},
		{name: "recvmsg_multishot_enobufs_loses_nothing", cfg: small, fn: testRecvmsgMultiENOBUFS},
		{name: "recvmsg_multishot_rights", cfg: backend.Config{BufferSize: msBufSize}, fn: testRecvmsgMultiRights},
		{name: "recvmsg_multishot_no_room_invalid", cfg: backend.Config{BufferSize: msBufSize}, fn: testRecvmsgMultiNoRoom},
		{name: "recvmsg_multishot_close_discards_fds", cfg: backend.Config{BufferSize: msBufSize}, fn: testRecvmsgMultiClose},
	}
}

// Datagrams (one of them empty) each arrive in their own buffer with the
// sender's address; one larger than the payload room arrives cut at exactly
// the room with FlagTrunc, and receiving goes on; a cancel ends the op.
func testRecvmsgMultiUDP(h *harness) {
	a, aport := h.udp()
	b, bport := h.udp()
	var from unix.RawSockaddrAny
	op := &backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Multishot: true, BufferSelect: true, Addr: &from}
	room, _, _ := backend.MultishotRecvMsgRoom(op, msBufSize)
	require.Equal(h.t, msBufSize-16-unix.SizeofSockaddrAny, room)
	recv := h.submit(op)
	to, tolen := inet4(bport)
	big := make([]byte, room+100)
	for i := range big {
		big[i] = byte(i)
	}
	msgs := [][]byte{[]byte("one"), nil, []byte("three"), big, []byte("after")}
	for _, p := range msgs {
		h.expectRes(h.submit(&backend.Op{Kind: backend.KindSendMsg, Fd: int32(a), Buf: p, Addr: to, AddrLen: tolen}), int32(len(p)))
	}
	for i, p := range msgs {
		c := h.next(recv)
		require.True(h.t, c.More(), "datagram %d ended the multishot: %v", i, errText(c.Res))
		if len(p) == 0 {
			require.Zero(h.t, c.Flags&backend.FlagBuffer, "an empty datagram comes without a buffer")
		} else {
			require.NotZero(h.t, c.Flags&backend.FlagBuffer, "datagram %d", i)
		}
		require.Len(h.t, c.Name, unix.SizeofSockaddrInet4, "datagram %d: sender's address", i)
		fam, port := rawPort((*unix.RawSockaddrAny)(unsafe.Pointer(&c.Name[0])))
		require.Equal(h.t, uint16(unix.AF_INET), fam)
		require.Equal(h.t, aport, port)
		require.Nil(h.t, c.Control)
		if len(p) > room {
			require.NotZero(h.t, c.Flags&backend.FlagTrunc, "datagram %d of %d bytes must be reported truncated", i, len(p))
			require.Equal(h.t, p[:room], c.Buf)
		} else {
			require.Zero(h.t, c.Flags&backend.FlagTrunc)
			require.Equal(h.t, string(p), string(c.Buf))
		}
		if len(p) > 0 {
			h.release(c.BufID)
		}
	}
	h.settle()
	require.False(h.t, h.pending(recv))

	// Two empty datagrams from two senders: each completion's Name (in
	// op's memory) still names its own sender when the caller reads it.
	// Sent outside the backend, so both are queued before the next Wait.
	c2, c2port := h.udp()
	dst := &unix.SockaddrInet4{Port: bport, Addr: [4]byte{127, 0, 0, 1}}
	require.NoError(h.t, unix.Sendto(a, nil, 0, dst))
	require.NoError(h.t, unix.Sendto(c2, nil, 0, dst))
	rec := h.ops[recv]
	var ports []int
	deadline := time.Now().Add(waitLimit)
	for len(ports) < 2 {
		require.True(h.t, time.Now().Before(deadline))
		h.wait(100 * time.Millisecond)
		for rec.seen < len(rec.comps) { // read each Name before the next Wait
			c := h.next(recv)
			require.Equal(h.t, int32(0), c.Res)
			_, port := rawPort((*unix.RawSockaddrAny)(unsafe.Pointer(&c.Name[0])))
			ports = append(ports, port)
		}
	}
	require.Equal(h.t, []int{aport, c2port}, ports)

	cancel := h.submit(&backend.Op{Kind: backend.KindCancel, Target: recv})
	c, _ := h.final(recv)
	require.Equal(h.t, -int32(unix.ECANCELED), c.Res)
	h.final(cancel)
}

// A burst larger than the pool ends the multishot with -ENOBUFS once every
// buffer is held; after the buffers come back a new multishot receives the
// rest of the burst: nothing the kernel had queued is lost.
func testRecvmsgMultiENOBUFS(h *harness) {
	a, _ := h.udp()
	b, bport := h.udp()
	to, tolen := inet4(bport)
	const total = 10
	for i := range total {
		h.expectRes(h.submit(&backend.Op{Kind: backend.KindSendMsg, Fd: int32(a), Buf: []byte{byte(i)}, Addr: to, AddrLen: tolen}), 1)
	}
	var got []byte
	for round := 0; len(got) < total; round++ {
		require.Less(h.t, round, total, "no progress")
		recv := h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Multishot: true, BufferSelect: true})
		var ids []uint16
		var last backend.Completion
		for {
			c := h.next(recv)
			if !c.More() {
				last = c
				break
			}
			require.Len(h.t, c.Buf, 1)
			got = append(got, c.Buf[0])
			ids = append(ids, c.BufID)
			if len(got) == total {
				cancel := h.submit(&backend.Op{Kind: backend.KindCancel, Target: recv})
				h.final(cancel)
			}
		}
		if len(got) < total {
			require.Equal(h.t, -int32(unix.ENOBUFS), last.Res, "the multishot ends only when the pool is empty")
			require.Len(h.t, ids, 4)
		}
		for _, id := range ids {
			h.release(id)
		}
	}
	for i := range total {
		require.Equal(h.t, byte(i), got[i], "datagrams in order, none lost")
	}
}

// Descriptors passed with SCM_RIGHTS over a UNIX datagram socket arrive in
// the buffer's control data (close-on-exec) and work.
func testRecvmsgMultiRights(h *harness) {
	a, b := h.socketpairType(unix.SOCK_DGRAM)
	pr, pw := h.pipe(false)
	op := &backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Multishot: true, BufferSelect: true,
		Addr: new(unix.RawSockaddrAny), Control: make([]byte, unix.CmsgSpace(2*4))}
	recv := h.submit(op)
	h.sendRights(a, []byte("fds"), pr, pw)
	c := h.next(recv)
	require.True(h.t, c.More())
	require.Equal(h.t, "fds", string(c.Buf))
	require.Zero(h.t, c.Flags&backend.FlagCtrunc)
	fds := h.rightsOf(c.Control)
	require.Len(h.t, fds, 2)
	for _, fd := range fds {
		h.requireCloexec(fd)
	}
	h.requirePipeWorks(fds[0], fds[1], "through")
	h.release(c.BufID)
	cancel := h.submit(&backend.Op{Kind: backend.KindCancel, Target: recv})
	h.final(recv)
	h.final(cancel)
}

// A multishot recvmsg whose name and control room fill the buffer is
// refused by Submit on every backend, with no completion.
func testRecvmsgMultiNoRoom(h *harness) {
	_, b := h.socketpairType(unix.SOCK_DGRAM)
	op := &backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Multishot: true, BufferSelect: true,
		Addr: new(unix.RawSockaddrAny), Control: make([]byte, msBufSize-16-unix.SizeofSockaddrAny)}
	err := h.b.Submit(op)
	require.True(h.t, errors.Is(err, backend.ErrInvalidOp), "got %v", err)
	op.Multishot = false // without Multishot there is no room rule
	op.Control = op.Control[:64]
	op.Sys.State = 0
	h.leave(h.submit(op))
	require.NoError(h.t, h.b.Close())
	h.closed = true
}

// Descriptors that reached a multishot recvmsg's buffer but were never
// handed to the caller are closed by Close (the scenario's descriptor count
// catches a leak).
func testRecvmsgMultiClose(h *harness) {
	a, b := h.socketpairType(unix.SOCK_DGRAM)
	pr, pw := h.pipe(false)
	op := &backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Multishot: true, BufferSelect: true,
		Control: make([]byte, unix.CmsgSpace(2*4))}
	h.leave(h.submit(op))
	h.settle()
	// Sent outside the backend so that no Wait sees the datagram arrive.
	_, err := unix.SendmsgN(a, []byte("x"), unix.UnixRights(pr, pw), nil, unix.MSG_DONTWAIT)
	require.NoError(h.t, err)
	h.closeNow(pr)
	h.closeNow(pw)
	h.closeBackend()
}
