package backendtest

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
)

// Bench runs the hot-path benchmarks against backends built by newBackend, each
// as a sub-benchmark of b with ReportAllocs. Steady state must allocate nothing:
// ops, buffers and the completion slice are reused across iterations.
//
//   - nop: submit one nop, Wait for it.
//   - nop_batch32: submit 32 nops, Wait for all 32 (reported per batch).
//   - send_recv_64: send 64 bytes on one end of a socketpair and receive them on
//     the other, both through the backend (one round trip per iteration).
//   - multishot_recv_64: a peer writes 64 bytes, one armed multishot recv with
//     provided buffers delivers them, the buffer is released.
//   - multishot_recv_64KiB: the same with 64 KiB messages (16 default-sized
//     provided buffers each).
//   - timeout_cancel: arm an hour-long timeout and cancel it (two completions).
//   - sendmsg_recvmsg_rights_64: send 64 bytes with an SCM_RIGHTS message on a
//     socketpair and receive them with a control buffer (sendmsg, recvmsg
//     with Control, and closing the received descriptor per iteration).
func Bench(b *testing.B, newBackend NewFunc) {
	b.Run("nop", func(b *testing.B) { benchNop(b, newBackend, 1) })
	b.Run("nop_batch32", func(b *testing.B) { benchNop(b, newBackend, 32) })
	b.Run("send_recv_64", func(b *testing.B) { benchSendRecv(b, newBackend) })
	b.Run("multishot_recv_64", func(b *testing.B) { benchMultishot(b, newBackend, 64) })
	b.Run("multishot_recv_64KiB", func(b *testing.B) { benchMultishot(b, newBackend, 64<<10) })
	b.Run("timeout_cancel", func(b *testing.B) { benchTimeoutCancel(b, newBackend) })
	b.Run("sendmsg_recvmsg_rights_64", func(b *testing.B) { benchRights(b, newBackend) })
}

func benchRights(b *testing.B, newBackend NewFunc) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	be := newBackend(b, backend.Config{})
	defer func() { _ = be.Close() }()
	msg := make([]byte, 64)
	rbuf := make([]byte, 64)
	rights := unix.UnixRights(fds[0]) // built once: UnixRights allocates
	ctl := make([]byte, unix.CmsgSpace(4))
	var send, recv backend.Op
	out := make([]backend.Completion, 8)
	check := func(c *backend.Completion) {
		if c.Res != 64 {
			b.Fatalf("completion %d: res %d", c.Token.Slot(), c.Res)
		}
		if c.Token == recv.Token {
			// One SCM_RIGHTS message with one descriptor, read in place
			// (unix.ParseSocketControlMessage would allocate).
			if len(c.Control) != unix.CmsgSpace(4) || c.Flags&backend.FlagCtrunc != 0 {
				b.Fatalf("control: %d bytes, flags %#x", len(c.Control), c.Flags)
			}
			fd := int(int32(c.Control[unix.CmsgLen(0)]) | int32(c.Control[unix.CmsgLen(0)+1])<<8 |
				int32(c.Control[unix.CmsgLen(0)+2])<<16 | int32(c.Control[unix.CmsgLen(0)+3])<<24)
			if err := unix.Close(fd); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	b.SetBytes(64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		recv = backend.Op{Kind: backend.KindRecvMsg, Token: backend.MakeToken(1, uint32(i)), Fd: int32(fds[1]), Buf: rbuf, Control: ctl}
		send = backend.Op{Kind: backend.KindSendMsg, Token: backend.MakeToken(2, uint32(i)), Fd: int32(fds[0]), Buf: msg, Control: rights}
		if err := be.Submit(&recv); err != nil {
			b.Fatal(err)
		}
		if err := be.Submit(&send); err != nil {
			b.Fatal(err)
		}
		benchWait(b, be, out, 2, check)
	}
}

func benchTimeoutCancel(b *testing.B, newBackend NewFunc) {
	be := newBackend(b, backend.Config{})
	defer func() { _ = be.Close() }()
	var timeout, cancel backend.Op
	out := make([]backend.Completion, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		timeout = backend.Op{Kind: backend.KindTimeout, Token: backend.MakeToken(1, uint32(i)), Timeout: time.Hour}
		cancel = backend.Op{Kind: backend.KindCancel, Token: backend.MakeToken(2, uint32(i)), Target: timeout.Token}
		if err := be.Submit(&timeout); err != nil {
			b.Fatal(err)
		}
		if err := be.Submit(&cancel); err != nil {
			b.Fatal(err)
		}
		benchWait(b, be, out, 2, func(c *backend.Completion) {
			if c.Token == timeout.Token && c.Res != -int32(unix.ECANCELED) {
				b.Fatalf("timeout: res %d", c.Res)
			}
		})
	}
}

// benchWait waits until want completions arrived, calling fn on each.
func benchWait(b *testing.B, be backend.Backend, out []backend.Completion, want int, fn func(c *backend.Completion)) {
	got := 0
	for got < want {
		n, err := be.Wait(out, time.Second)
		if err != nil {
			b.Fatalf("Wait: %v", err)
		}
		if n == 0 {
			b.Fatalf("no completion within a second (%d of %d)", got, want)
		}
		for i := 0; i < n; i++ {
			if fn != nil {
				fn(&out[i])
			}
		}
		got += n
	}
}

func benchNop(b *testing.B, newBackend NewFunc, batch int) {
	be := newBackend(b, backend.Config{})
	defer func() { _ = be.Close() }()
	ops := make([]backend.Op, batch)
	out := make([]backend.Completion, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range ops {
			ops[j] = backend.Op{Kind: backend.KindNop, Token: backend.MakeToken(uint32(j), uint32(i))}
			if err := be.Submit(&ops[j]); err != nil {
				b.Fatal(err)
			}
		}
		benchWait(b, be, out, batch, nil)
	}
}

func benchSendRecv(b *testing.B, newBackend NewFunc) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	be := newBackend(b, backend.Config{})
	defer func() { _ = be.Close() }()
	msg := make([]byte, 64)
	rbuf := make([]byte, 64)
	var send, recv backend.Op
	out := make([]backend.Completion, 8)
	check := func(c *backend.Completion) {
		if c.Res != 64 {
			b.Fatalf("completion %d: res %d", c.Token.Slot(), c.Res)
		}
	}
	b.ReportAllocs()
	b.SetBytes(64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		recv = backend.Op{Kind: backend.KindRecv, Token: backend.MakeToken(1, uint32(i)), Fd: int32(fds[1]), Buf: rbuf}
		send = backend.Op{Kind: backend.KindSend, Token: backend.MakeToken(2, uint32(i)), Fd: int32(fds[0]), Buf: msg}
		if err := be.Submit(&recv); err != nil {
			b.Fatal(err)
		}
		if err := be.Submit(&send); err != nil {
			b.Fatal(err)
		}
		benchWait(b, be, out, 2, check)
	}
}

func benchMultishot(b *testing.B, newBackend NewFunc, size int) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	be := newBackend(b, backend.Config{})
	defer func() { _ = be.Close() }()
	msg := make([]byte, size)
	var recv backend.Op
	slot := uint32(0)
	arm := func() {
		slot++
		recv = backend.Op{Kind: backend.KindRecv, Token: backend.MakeToken(slot, 1), Fd: int32(fds[1]), BufferSelect: true, Multishot: true}
		if err := be.Submit(&recv); err != nil {
			b.Fatal(err)
		}
	}
	arm()
	out := make([]backend.Completion, 8)
	pending := 0
	onComp := func(c *backend.Completion) {
		if c.Flags&backend.FlagBuffer != 0 {
			pending -= int(c.Res)
			be.ReleaseBuffer(c.BufID)
		} else if c.Res < 0 && c.Res != -int32(unix.ENOBUFS) {
			b.Fatalf("multishot recv: res %d", c.Res)
		}
		if !c.More() && c.Token == recv.Token {
			arm()
		}
	}
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if n, err := unix.Write(fds[0], msg); err != nil || n != size {
			b.Fatal(n, err)
		}
		pending += size
		for pending > 0 {
			benchWait(b, be, out, 1, onComp)
		}
	}
}
