package backendtest

import (
	"bytes"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
)

// streamScenarios: single-shot send and receive on stream sockets.
func streamScenarios() []scenario {
	return []scenario{
		{name: "send_recv", fn: testSendRecv},
		{name: "recv_parked_then_data", fn: testRecvParked},
		{name: "send_batch", fn: testSendBatch},
		{name: "sendv", fn: testSendv},
		{name: "large_send_short_writes", fn: testLargeSend},
		{name: "peer_close_recv_zero", fn: testPeerClose},
		{name: "connection_reset", fn: testReset},
		{name: "send_after_peer_close", fn: testSendEPIPE},
		{name: "send_zc", fn: testSendZC},
		{name: "shutdown_write", fn: testShutdown},
		{name: "close_op", fn: testCloseOp},
	}
}

func testSendRecv(h *harness) {
	a, b := h.socketpair()
	msg := []byte("hello, gyre")
	send := h.submit(&backend.Op{Kind: backend.KindSend, Fd: int32(a), Buf: msg})
	h.expectRes(send, int32(len(msg)))
	buf := make([]byte, 64)
	recv := h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(b), Buf: buf})
	h.expectRes(recv, int32(len(msg)))
	require.Equal(h.t, msg, buf[:len(msg)])
}

func testRecvParked(h *harness) {
	a, b := h.socketpair()
	buf := make([]byte, 64)
	recv := h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(b), Buf: buf})
	h.settle()
	require.False(h.t, h.pending(recv), "recv completed with no data")
	for round := 0; round < 3; round++ { // parks again after each delivery
		msg := pattern(10+round, byte(round))
		h.writeAll(a, msg)
		h.expectRes(recv, int32(len(msg)))
		require.Equal(h.t, msg, buf[:len(msg)])
		if round < 2 {
			recv = h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(b), Buf: buf})
			h.settle()
			require.False(h.t, h.pending(recv))
		}
	}
}

// Small sends submitted in one batch on a socket with room complete in full
// and reach the peer in submission order. (Order among sends that park is not
// part of the contract: callers keep one send in flight per stream.)
func testSendBatch(h *harness) {
	a, b := h.socketpair()
	const n, size = 8, 100
	ops := make([]backend.Op, n)
	var want []byte
	for i := range ops {
		buf := pattern(size, byte(i*31))
		want = append(want, buf...)
		ops[i] = backend.Op{Kind: backend.KindSend, Fd: int32(a), Buf: buf}
		h.submit(&ops[i])
	}
	for i := range ops {
		h.expectRes(ops[i].Token, size)
	}
	require.Equal(h.t, want, h.readN(b, n*size))
}

func testSendv(h *harness) {
	a, b := h.socketpair()
	bufs := [][]byte{[]byte("vectored "), {}, []byte("sends "), []byte("keep order")}
	send := h.submit(&backend.Op{Kind: backend.KindSendv, Fd: int32(a), Bufs: bufs})
	h.expectRes(send, int32(len("vectored sends keep order")))
	require.Equal(h.t, "vectored sends keep order", string(h.readN(b, len("vectored sends keep order"))))
}

// A send larger than the socket buffer may complete short; resubmitting the
// rest (while the peer reads) delivers everything in order.
func testLargeSend(h *harness) {
	a, b := h.socketpair()
	require.NoError(h.t, unix.SetsockoptInt(a, unix.SOL_SOCKET, unix.SO_SNDBUF, 8192))
	data := pattern(1<<20, 3)
	rbuf := make([]byte, 32768)
	var got []byte
	off := 0
	var send, recv backend.Token
	sendOp, recvOp := &backend.Op{}, &backend.Op{}
	armSend := func() {
		*sendOp = backend.Op{Kind: backend.KindSend, Fd: int32(a), Buf: data[off:]}
		send = h.submit(sendOp)
	}
	armRecv := func() {
		*recvOp = backend.Op{Kind: backend.KindRecv, Fd: int32(b), Buf: rbuf}
		recv = h.submit(recvOp)
	}
	armSend()
	armRecv()
	shorts := 0
	deadline := time.Now().Add(waitLimit)
	for len(got) < len(data) {
		require.True(h.t, time.Now().Before(deadline), "large send stalled at %d of %d bytes", len(got), len(data))
		h.wait(100 * time.Millisecond)
		if off < len(data) && h.pending(send) {
			c, _ := h.final(send)
			require.Greater(h.t, c.Res, int32(0), "send: %s", errText(c.Res))
			require.LessOrEqual(h.t, int(c.Res), len(data)-off)
			off += int(c.Res)
			if off < len(data) {
				shorts++
				armSend()
			}
		}
		if h.pending(recv) {
			c, _ := h.final(recv)
			require.Greater(h.t, c.Res, int32(0), "recv: %s", errText(c.Res))
			got = append(got, rbuf[:c.Res]...)
			if len(got) < len(data) {
				armRecv()
			}
		}
	}
	require.Equal(h.t, len(data), off)
	require.True(h.t, bytes.Equal(data, got), "large send corrupted")
	h.t.Logf("1 MiB through an 8 KiB socket buffer: %d short sends", shorts)
}

func testPeerClose(h *harness) {
	a, b := h.socketpair()
	buf := make([]byte, 64)
	recv := h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(b), Buf: buf})
	h.settle()
	h.writeAll(a, []byte("bye"))
	h.closeNow(a)
	h.expectRes(recv, 3)
	recv = h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(b), Buf: buf})
	h.expectRes(recv, 0)
	recv = h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(b), Buf: buf})
	h.expectRes(recv, 0) // end of stream stays end of stream
}

// A TCP peer that closes with SO_LINGER 0 resets the connection: a parked recv
// fails with ECONNRESET.
func testReset(h *harness) {
	c, s := h.tcpPair()
	buf := make([]byte, 64)
	recv := h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(s), Buf: buf})
	h.settle()
	require.False(h.t, h.pending(recv))
	require.NoError(h.t, unix.SetsockoptLinger(c, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}))
	h.closeNow(c)
	h.expectRes(recv, -int32(unix.ECONNRESET))
}

// Sending to a closed peer fails with EPIPE (and no SIGPIPE kills the test).
func testSendEPIPE(h *harness) {
	a, b := h.socketpair()
	h.closeNow(b)
	send := h.submit(&backend.Op{Kind: backend.KindSend, Fd: int32(a), Buf: []byte("x")})
	h.expectRes(send, -int32(unix.EPIPE))
}

// A zero-copy send delivers its byte count and, when that completion carries
// FlagMore, a final FlagNotif completion. A backend whose kernel lacks send_zc
// may complete it as a plain send (no FlagMore, no notification).
func testSendZC(h *harness) {
	c, s := h.tcpPair()
	data := pattern(8192, 9)
	tok := h.submit(&backend.Op{Kind: backend.KindSendZC, Fd: int32(c), Buf: data})
	first := h.next(tok)
	require.Equal(h.t, int32(len(data)), first.Res, "send_zc: %s", errText(first.Res))
	require.Zero(h.t, first.Flags&backend.FlagNotif, "the result completion is not the notification")
	if h.b.Features().SendZC {
		require.True(h.t, first.More(), "native send_zc must announce its notification with FlagMore")
	}
	if first.More() {
		notif := h.next(tok)
		require.NotZero(h.t, notif.Flags&backend.FlagNotif, "second send_zc completion must be the notification")
		require.False(h.t, notif.More(), "the notification is final")
	}
	require.Equal(h.t, data, h.readN(s, len(data)))
}

func testShutdown(h *harness) {
	a, b := h.socketpair()
	buf := make([]byte, 16)
	recv := h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(b), Buf: buf})
	h.settle()
	sd := h.submit(&backend.Op{Kind: backend.KindShutdown, Fd: int32(a), How: unix.SHUT_WR})
	h.expectRes(sd, 0)
	h.expectRes(recv, 0)
	// The other direction still works.
	send := h.submit(&backend.Op{Kind: backend.KindSend, Fd: int32(b), Buf: []byte("still")})
	h.expectRes(send, 5)
	require.Equal(h.t, "still", string(h.readN(a, 5)))
	bad := h.submit(&backend.Op{Kind: backend.KindShutdown, Fd: int32(a), How: 99})
	c, _ := h.final(bad)
	require.Equal(h.t, -int32(unix.EINVAL), c.Res)
}

func testCloseOp(h *harness) {
	a, b := h.socketpair()
	// Use the descriptor first so a backend that registers descriptors has.
	send := h.submit(&backend.Op{Kind: backend.KindSend, Fd: int32(a), Buf: []byte("x")})
	h.expectRes(send, 1)
	recv := h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(a), Buf: make([]byte, 4)})
	h.settle()
	cancel := h.submit(&backend.Op{Kind: backend.KindCancelFd, Fd: int32(a)})
	h.expectRes(recv, eCANCELED)
	h.expectRes(cancel, 1)
	h.untrack(a)
	cl := h.submit(&backend.Op{Kind: backend.KindClose, Fd: int32(a)})
	h.expectRes(cl, 0)
	_, err := unix.FcntlInt(uintptr(a), unix.F_GETFD, 0)
	require.ErrorIs(h.t, err, unix.EBADF, "descriptor still open after KindClose")
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(b), Buf: make([]byte, 4)}), 1)
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(b), Buf: make([]byte, 4)}), 0)
}
