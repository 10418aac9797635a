package backendtest

import (
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
)

// netScenarios: accept, connect and datagrams on loopback.
func netScenarios() []scenario {
	return []scenario{
		{name: "accept_single", fn: testAcceptSingle},
		{name: "accept_multishot", fn: testAcceptMultishot},
		{name: "connect", fn: testConnect},
		{name: "connect_refused", fn: testConnectRefused},
		{name: "udp_sendmsg_recvmsg", fn: testUDP},
		{name: "udp_truncation", fn: testUDPTrunc},
		{name: "udp_recvmsg_parked_buffer_select", fn: testUDPParkedBufferSelect},
		{name: "udp_empty_datagram_buffer_select", fn: testUDPEmptyBufferSelect},
	}
}

func checkAccepted(h *harness, res int32) {
	h.t.Helper()
	require.Greater(h.t, res, int32(0), "accept: %s", errText(res))
	fd := h.track(int(res))
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	require.NoError(h.t, err)
	require.NotZero(h.t, fl&unix.O_NONBLOCK, "accepted socket must be non-blocking")
	fdfl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	require.NoError(h.t, err)
	require.NotZero(h.t, fdfl&unix.FD_CLOEXEC, "accepted socket must be close-on-exec")
}

func testAcceptSingle(h *harness) {
	ln, port := h.listener()
	tok := h.submit(&backend.Op{Kind: backend.KindAccept, Fd: int32(ln)})
	h.settle()
	require.False(h.t, h.pending(tok), "accept completed with no client")
	h.dial(port)
	c, _ := h.final(tok)
	checkAccepted(h, c.Res)
}

// One multishot accept takes many connections, each with FlagMore, until it is
// cancelled. If it ends early it is re-armed (allowed by the contract only as a
// final completion carrying a descriptor or an error the caller re-arms after).
func testAcceptMultishot(h *harness) {
	const n = 40
	ln, port := h.listener()
	op := &backend.Op{Kind: backend.KindAccept, Fd: int32(ln), Multishot: true}
	tok := h.submit(op)
	accepted := 0
	deadline := time.Now().Add(waitLimit)
	for i := 0; i < n; i++ {
		h.dial(port)
	}
	for accepted < n {
		require.True(h.t, time.Now().Before(deadline), "accepted %d of %d connections", accepted, n)
		h.wait(100 * time.Millisecond)
		for h.pending(tok) {
			c := h.next(tok)
			checkAccepted(h, c.Res)
			accepted++
			if !c.More() {
				op = &backend.Op{Kind: backend.KindAccept, Fd: int32(ln), Multishot: true}
				tok = h.submit(op)
			}
		}
	}
	cancel := h.submit(&backend.Op{Kind: backend.KindCancel, Target: tok})
	h.expectRes(tok, eCANCELED)
	h.expectRes(cancel, 0)
}

func testConnect(h *harness) {
	ln, port := h.listener()
	fd := h.socket(unix.SOCK_STREAM)
	addr, alen := inet4(port)
	tok := h.submit(&backend.Op{Kind: backend.KindConnect, Fd: int32(fd), Addr: addr, AddrLen: alen})
	acc := h.submit(&backend.Op{Kind: backend.KindAccept, Fd: int32(ln)})
	h.expectRes(tok, 0)
	c, _ := h.final(acc)
	checkAccepted(h, c.Res)
	send := h.submit(&backend.Op{Kind: backend.KindSend, Fd: int32(fd), Buf: []byte("ping")})
	h.expectRes(send, 4)
	require.Equal(h.t, "ping", string(h.readN(int(c.Res), 4)))
}

func testConnectRefused(h *harness) {
	// A port that was just free: bind, read the port, close.
	probe := h.socket(unix.SOCK_STREAM)
	require.NoError(h.t, unix.Bind(probe, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	port := h.port(probe)
	h.closeNow(probe)
	fd := h.socket(unix.SOCK_STREAM)
	addr, alen := inet4(port)
	tok := h.submit(&backend.Op{Kind: backend.KindConnect, Fd: int32(fd), Addr: addr, AddrLen: alen})
	h.expectRes(tok, -int32(unix.ECONNREFUSED))
}

func testUDP(h *harness) {
	a, aport := h.udp()
	b, bport := h.udp()
	// recvmsg parked first.
	var from unix.RawSockaddrAny
	buf := make([]byte, 64)
	recv := h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Buf: buf, Addr: &from, AddrLen: unix.SizeofSockaddrAny})
	h.settle()
	require.False(h.t, h.pending(recv))
	to, tolen := inet4(bport)
	send := h.submit(&backend.Op{Kind: backend.KindSendMsg, Fd: int32(a), Buf: []byte("datagram"), Addr: to, AddrLen: tolen})
	h.expectRes(send, 8)
	c := h.expectRes(recv, 8)
	require.Zero(h.t, c.Flags&backend.FlagTrunc)
	require.Equal(h.t, "datagram", string(buf[:8]))
	require.Equal(h.t, uint32(unix.SizeofSockaddrInet4), h.ops[recv].op.AddrLen)
	fam, port := rawPort(&from)
	require.Equal(h.t, uint16(unix.AF_INET), fam)
	require.Equal(h.t, aport, port, "recvmsg must report the sender's address")

	// A vectored datagram is one datagram.
	send = h.submit(&backend.Op{Kind: backend.KindSendMsg, Fd: int32(a), Bufs: [][]byte{[]byte("two "), []byte("parts")}, Addr: to, AddrLen: tolen})
	h.expectRes(send, 9)
	recv = h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Buf: buf, Addr: &from, AddrLen: unix.SizeofSockaddrAny})
	h.expectRes(recv, 9)
	require.Equal(h.t, "two parts", string(buf[:9]))

	// Connected sockets: AddrLen 0 sends to the peer.
	require.NoError(h.t, unix.Connect(a, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: bport}))
	send = h.submit(&backend.Op{Kind: backend.KindSendMsg, Fd: int32(a), Buf: []byte("conn")})
	h.expectRes(send, 4)
	recv = h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Buf: buf, Addr: &from, AddrLen: unix.SizeofSockaddrAny})
	h.expectRes(recv, 4)
}

func testUDPTrunc(h *harness) {
	a, _ := h.udp()
	b, bport := h.udp()
	to, tolen := inet4(bport)
	big := pattern(100, 1)
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindSendMsg, Fd: int32(a), Buf: big, Addr: to, AddrLen: tolen}), 100)
	small := make([]byte, 10)
	var from unix.RawSockaddrAny
	recv := h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Buf: small, Addr: &from, AddrLen: unix.SizeofSockaddrAny})
	c := h.expectRes(recv, 10)
	require.NotZero(h.t, c.Flags&backend.FlagTrunc, "truncated datagram must carry FlagTrunc")
	require.Equal(h.t, big[:10], small)
	// The rest of the datagram is gone: the next datagram is read whole.
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindSendMsg, Fd: int32(a), Buf: []byte("next"), Addr: to, AddrLen: tolen}), 4)
	recv = h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), Buf: small, Addr: &from, AddrLen: unix.SizeofSockaddrAny})
	c = h.expectRes(recv, 4)
	require.Zero(h.t, c.Flags&backend.FlagTrunc)
}

func testUDPParkedBufferSelect(h *harness) {
	a, aport := h.udp()
	b, bport := h.udp()
	var from unix.RawSockaddrAny
	recv := h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), BufferSelect: true, Addr: &from, AddrLen: unix.SizeofSockaddrAny})
	h.settle()
	require.False(h.t, h.pending(recv))
	to, tolen := inet4(bport)
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindSendMsg, Fd: int32(a), Buf: []byte("pooled"), Addr: to, AddrLen: tolen}), 6)
	c := h.expectRes(recv, 6)
	require.NotZero(h.t, c.Flags&backend.FlagBuffer)
	require.Equal(h.t, "pooled", string(c.Buf))
	_, port := rawPort(&from)
	require.Equal(h.t, aport, port)
	h.release(c.BufID)
}

// An empty datagram received into a provided buffer completes with Res 0 and
// hands out no buffer (like the end of a stream), on every backend; the next
// datagram is received normally.
func testUDPEmptyBufferSelect(h *harness) {
	a, _ := h.udp()
	b, bport := h.udp()
	to, tolen := inet4(bport)
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindSendMsg, Fd: int32(a), Addr: to, AddrLen: tolen}), 0)
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindSendMsg, Fd: int32(a), Buf: []byte("next"), Addr: to, AddrLen: tolen}), 4)
	c := h.expectRes(h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), BufferSelect: true}), 0)
	require.Zero(h.t, c.Flags&backend.FlagBuffer, "an empty datagram must not hand out a provided buffer")
	c = h.expectRes(h.submit(&backend.Op{Kind: backend.KindRecvMsg, Fd: int32(b), BufferSelect: true}), 4)
	require.Equal(h.t, "next", string(c.Buf))
	h.release(c.BufID)
}
