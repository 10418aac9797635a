package backendtest

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
)

// agreeScenarios: cases where backends once answered differently; the
// contract now fixes one answer.
func agreeScenarios() []scenario {
	return []scenario{
		{name: "unix_connect_backlog_full", fn: testUnixConnectBacklogFull},
		{name: "invalid_ops_rejected", fn: testInvalidOps},
		{name: "resubmit_in_flight_rejected", fn: testResubmitInFlight},
	}
}

var unixSeq atomic.Uint64

// unixListener listens on a fresh abstract AF_UNIX address with a backlog of
// zero and fills that backlog; it returns the listener and the raw address.
func (h *harness) unixListenerFull() (*unix.RawSockaddrAny, uint32) {
	h.t.Helper()
	name := fmt.Sprintf("gyre-backendtest-%d-%d", os.Getpid(), unixSeq.Add(1))
	ln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(h.t, err)
	h.track(ln)
	require.NoError(h.t, unix.Bind(ln, &unix.SockaddrUnix{Name: "@" + name}))
	require.NoError(h.t, unix.Listen(ln, 0))
	full := false
	for i := 0; i < 64 && !full; i++ {
		c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		require.NoError(h.t, err)
		h.track(c)
		switch err := unix.Connect(c, &unix.SockaddrUnix{Name: "@" + name}); err {
		case nil:
		case unix.EAGAIN:
			full = true
		default:
			require.NoError(h.t, err, "filling the backlog")
		}
	}
	require.True(h.t, full, "the AF_UNIX backlog never filled")
	raw := &unix.RawSockaddrAny{}
	ux := (*unix.RawSockaddrUnix)(unsafe.Pointer(raw))
	ux.Family = unix.AF_UNIX
	for i := 0; i < len(name); i++ { // Path[0] stays 0: the abstract namespace
		ux.Path[1+i] = int8(name[i])
	}
	return raw, uint32(2 + 1 + len(name))
}

// An AF_UNIX connect to a listener whose backlog is full completes at once
// with -EAGAIN on every backend (the contract of KindConnect), instead of
// parking for a writability that never comes.
func testUnixConnectBacklogFull(h *harness) {
	addr, n := h.unixListenerFull()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(h.t, err)
	h.track(fd)
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindConnect, Fd: int32(fd), Addr: addr, AddrLen: n}), -int32(unix.EAGAIN))
}

// Every malformed op is refused by Submit with backend.ErrInvalidOp (which
// also matches ErrUnsupported) and produces no completion, on every backend.
func testInvalidOps(h *harness) {
	r, _ := h.pipe(false)
	fd := int32(r)
	addr, alen := inet4(1)
	buf := make([]byte, 8)
	reserved := backend.MakeToken(backend.ReservedSlot, 0)
	var bad []backend.Op
	for k := backend.KindNop; k <= backend.KindShutdown; k++ {
		switch k {
		case backend.KindAccept, backend.KindPoll:
			bad = append(bad, backend.Op{Kind: k, Fd: fd, BufferSelect: true})
		case backend.KindRecv:
			bad = append(bad, backend.Op{Kind: k, Fd: fd, Multishot: true}) // without BufferSelect
		case backend.KindRecvMsg:
			bad = append(bad, backend.Op{Kind: k, Fd: fd, Multishot: true}) // without BufferSelect
		default:
			bad = append(bad,
				backend.Op{Kind: k, Fd: fd, Buf: buf, Addr: addr, AddrLen: alen, Multishot: true},
				backend.Op{Kind: k, Fd: fd, Buf: buf, Addr: addr, AddrLen: alen, BufferSelect: true})
		}
		// A token reserved for backends, on every kind.
		bad = append(bad, backend.Op{Kind: k, Fd: fd, Buf: buf, Addr: addr, AddrLen: alen, Token: reserved})
		// Control messages only on sendmsg and recvmsg (an empty but set
		// Control counts).
		if k != backend.KindSendMsg && k != backend.KindRecvMsg {
			bad = append(bad,
				backend.Op{Kind: k, Fd: fd, Buf: buf, Addr: addr, AddrLen: alen, Control: unix.UnixRights(r)},
				backend.Op{Kind: k, Fd: fd, Buf: buf, Addr: addr, AddrLen: alen, Control: []byte{}})
		}
	}
	bad = append(bad,
		backend.Op{Kind: backend.KindConnect, Fd: fd},                          // no Addr
		backend.Op{Kind: backend.KindSendMsg, Fd: fd, Buf: buf, AddrLen: alen}, // AddrLen, no Addr
		backend.Op{Kind: backend.KindRecvMsg, Fd: fd, Buf: buf, Control: buf, Multishot: true},
		backend.Op{Kind: backend.KindCancel, Target: reserved}, // the backend's own request
		backend.Op{Kind: backend.KindShutdown + 1, Fd: fd},     // unknown kind
		backend.Op{Kind: 255, Fd: fd},
	)
	require.ErrorIs(h.t, h.b.Submit(nil), backend.ErrInvalidOp, "nil op")
	for i := range bad {
		op := &bad[i]
		if op.Token == 0 {
			op.Token = h.token()
		}
		err := h.b.Submit(op)
		require.ErrorIs(h.t, err, backend.ErrInvalidOp, "%v multishot=%v bufsel=%v addr=%v/%d control=%v token=%#x",
			op.Kind, op.Multishot, op.BufferSelect, op.Addr != nil, op.AddrLen, op.Control != nil, uint64(op.Token))
		require.ErrorIs(h.t, err, backend.ErrUnsupported)
	}
	// None of them produced a completion (the harness fails on an unknown
	// token), and the backend still works.
	h.settle()
	h.expectRes(h.submit(&backend.Op{Kind: backend.KindNop}), 0)
}

// An op submitted again before its final completion is refused, on every
// backend; once final, the same Op value may be submitted again, whatever
// path its completion took.
func testResubmitInFlight(h *harness) {
	c, s := h.socketpair()
	buf := make([]byte, 16)
	cases := []struct {
		name string
		op   backend.Op
		end  func(tok backend.Token) // brings the op to its final completion
	}{
		{"recv", backend.Op{Kind: backend.KindRecv, Fd: int32(s), Buf: buf}, func(tok backend.Token) {
			h.writeAll(c, []byte("x"))
			h.expectRes(tok, 1)
		}},
		{"multishot_recv", backend.Op{Kind: backend.KindRecv, Fd: int32(s), BufferSelect: true, Multishot: true}, func(tok backend.Token) {
			cancel := h.submit(&backend.Op{Kind: backend.KindCancel, Target: tok})
			last, more := h.final(tok)
			for _, m := range append(more, last) {
				if m.Flags&backend.FlagBuffer != 0 {
					h.release(m.BufID)
				}
			}
			h.final(cancel)
		}},
		{"poll", backend.Op{Kind: backend.KindPoll, Fd: int32(s), Events: unix.POLLIN}, func(tok backend.Token) {
			h.writeAll(c, []byte("y"))
			h.final(tok)
			h.readN(s, 1)
		}},
		{"send_zc", backend.Op{Kind: backend.KindSendZC, Fd: int32(c), Buf: []byte("zc")}, func(tok backend.Token) {
			h.final(tok)
			h.readN(s, 2)
		}},
		{"timeout", backend.Op{Kind: backend.KindTimeout, Timeout: 1}, func(tok backend.Token) {
			h.final(tok)
		}},
	}
	for i := range cases {
		tc := &cases[i]
		op := &tc.op
		tok := h.submit(op)
		if tc.op.Kind != backend.KindSendZC && tc.op.Kind != backend.KindTimeout {
			h.settle()
		}
		if !h.ops[tok].final {
			require.ErrorIs(h.t, h.b.Submit(op), backend.ErrInvalidOp, "%s: resubmitted while in flight", tc.name)
		}
		tc.end(tok)
		// Final: the op is free again, on every path.
		tok = h.submit(op)
		require.NotZero(h.t, tok)
		if tc.op.Kind == backend.KindRecv && !tc.op.Multishot {
			h.writeAll(c, []byte("z"))
			h.expectRes(tok, 1)
		} else {
			tc.end(tok)
		}
	}
}
