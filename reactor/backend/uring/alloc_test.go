package uring_test

import (
	"encoding/binary"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
	uringbe "github.com/gyre-io/gyre/reactor/backend/uring"
)

// roundTrip drives the hot paths the loop uses, rebuilding every Op from
// scratch each time (as transports do), so the steady state is measurable.
type roundTrip struct {
	b                 *uringbe.Backend
	out               []backend.Completion
	a, p              int // stream socketpair
	ua, ub            int // UDP sockets
	to                unix.RawSockaddrAny
	tolen             uint32
	from              unix.RawSockaddrAny
	send, recv, recvm backend.Op
	bufs              [][]byte
	rbuf              []byte
	gen               uint32
}

func newRoundTrip(tb testing.TB, b *uringbe.Backend) *roundTrip {
	tb.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(tb, err)
	rt := &roundTrip{b: b, out: make([]backend.Completion, 16), a: fds[0], p: fds[1],
		bufs: [][]byte{make([]byte, 20), make([]byte, 24), make([]byte, 20)}, rbuf: make([]byte, 128)}
	mk := func() (int, unix.Sockaddr) {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		require.NoError(tb, err)
		require.NoError(tb, unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
		sa, err := unix.Getsockname(fd)
		require.NoError(tb, err)
		return fd, sa
	}
	var sb unix.Sockaddr
	rt.ua, _ = mk()
	rt.ub, sb = mk()
	in4 := sb.(*unix.SockaddrInet4)
	raw := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rt.to))
	raw.Family = unix.AF_INET
	raw.Addr = in4.Addr
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&raw.Port))[:], uint16(in4.Port))
	rt.tolen = unix.SizeofSockaddrInet4
	tb.Cleanup(func() {
		for _, fd := range []int{rt.a, rt.p, rt.ua, rt.ub} {
			unix.Close(fd)
		}
	})
	return rt
}

func (rt *roundTrip) tok(slot uint32) backend.Token { return backend.MakeToken(slot, rt.gen) }

// wait collects completions until want final ones arrived.
func (rt *roundTrip) wait(tb testing.TB, want int) {
	got := 0
	for got < want {
		n, err := rt.b.Wait(rt.out, time.Second)
		if err != nil || n == 0 {
			tb.Fatalf("Wait: %d, %v", n, err)
		}
		for i := range rt.out[:n] {
			c := &rt.out[i]
			if c.Res < 0 {
				tb.Fatalf("completion %d: %v", c.Token.Slot(), c.Err())
			}
			if c.Flags&backend.FlagBuffer != 0 {
				rt.b.ReleaseBuffer(c.BufID)
			}
			if !c.More() {
				got++
			}
		}
	}
}

// sendv: a three-buffer vectored send and a recv of it.
func (rt *roundTrip) sendv(tb testing.TB) {
	rt.gen++
	rt.recv = backend.Op{Kind: backend.KindRecv, Token: rt.tok(1), Fd: int32(rt.p), Buf: rt.rbuf}
	rt.send = backend.Op{Kind: backend.KindSendv, Token: rt.tok(2), Fd: int32(rt.a), Bufs: rt.bufs}
	require.NoError(tb, rt.b.Submit(&rt.recv))
	require.NoError(tb, rt.b.Submit(&rt.send))
	rt.wait(tb, 2)
}

// udp: one sendmsg to ub and one recvmsg of it (provided buffer).
func (rt *roundTrip) udp(tb testing.TB) {
	rt.gen++
	rt.recvm = backend.Op{Kind: backend.KindRecvMsg, Token: rt.tok(3), Fd: int32(rt.ub), BufferSelect: true,
		Addr: &rt.from, AddrLen: unix.SizeofSockaddrAny}
	rt.send = backend.Op{Kind: backend.KindSendMsg, Token: rt.tok(4), Fd: int32(rt.ua), Buf: rt.rbuf[:64],
		Addr: &rt.to, AddrLen: rt.tolen}
	require.NoError(tb, rt.b.Submit(&rt.recvm))
	require.NoError(tb, rt.b.Submit(&rt.send))
	rt.wait(tb, 2)
}

func TestSteadyStateAllocs(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			b := open(t, backend.Config{}, v.opts)
			rt := newRoundTrip(t, b)
			for range 10 { // warm up maps and lists
				rt.sendv(t)
				rt.udp(t)
			}
			require.Zero(t, testing.AllocsPerRun(200, func() { rt.sendv(t) }), "sendv allocates")
			require.Zero(t, testing.AllocsPerRun(200, func() { rt.udp(t) }), "udp sendmsg/recvmsg allocates")
			require.Zero(t, b.Tracked())
		})
	}
}

// BenchmarkHotPaths: the paths the conformance benchmarks do not cover, with
// Ops rebuilt every iteration. Each leaf builds its own backend on its own
// goroutine (a SINGLE_ISSUER ring belongs to one thread).
func BenchmarkHotPaths(b *testing.B) {
	for _, v := range variants[:3] {
		b.Run(v.name, func(b *testing.B) {
			for _, bench := range []struct {
				name string
				fn   func(*roundTrip, testing.TB)
			}{
				{"sendv_recv_64", (*roundTrip).sendv},
				{"udp_sendmsg_recvmsg_64", (*roundTrip).udp},
			} {
				b.Run(bench.name, func(b *testing.B) {
					be := open(b, backend.Config{}, v.opts)
					defer be.Close() // on this goroutine's thread, before cleanups
					rt := newRoundTrip(b, be)
					b.ReportAllocs()
					b.SetBytes(64)
					b.ResetTimer()
					for range b.N {
						bench.fn(rt, b)
					}
				})
			}
		})
	}
}
