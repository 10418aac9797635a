package uring_test

import (
	"bytes"
	"testing"
	"time"
	"unsafe"

	"github.com/gyre-io/gyre/uring"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Tests of the opcodes only our ring's scenarios cover.

// scratch holds kernel-visible memory on the heap for the length of a test.
type scratch struct {
	sa      unix.RawSockaddrAny
	saLen   uint32
	msg     unix.Msghdr
	iov     [2]unix.Iovec
	ts      unix.Timespec
	buf     [256]byte
	payload []byte
}

func prep(t testing.TB, r *uring.Ring, ud uint64, f func(s *uring.SQE)) {
	t.Helper()
	s, err := r.AcquireSQE()
	require.NoError(t, err)
	f(s)
	s.UserData = ud
}

func TestSocketConnectShutdownClose(t *testing.T) {
	r := newRing(t, uring.Options{Entries: 8})
	if !r.Features().Socket {
		t.Skip("kernel lacks IORING_OP_SOCKET (5.19+)")
	}
	tr := &ourRing{r}
	ln, port := tcpListener(t, 4)
	prep(t, r, 1, func(s *uring.SQE) {
		s.PrepSocket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0, 0)
	})
	c := collect(t, tr, 1, waitLimit)[0]
	require.GreaterOrEqual(t, c.Res, int32(0), "socket: %v", c.Err())
	fd := c.Res

	sc := new(scratch)
	sin := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sc.sa))
	sin.Family = unix.AF_INET
	sin.Addr = [4]byte{127, 0, 0, 1}
	sin.Port = uint16(port>>8) | uint16(port&0xff)<<8 // network byte order
	prep(t, r, 2, func(s *uring.SQE) { s.PrepConnect(fd, &sc.sa, unix.SizeofSockaddrInet4) })
	acc := new(scratch)
	acc.saLen = uint32(unsafe.Sizeof(acc.sa))
	prep(t, r, 3, func(s *uring.SQE) {
		s.PrepAccept(int32(ln), &acc.sa, &acc.saLen, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	})
	m := byUD(collect(t, tr, 2, waitLimit))
	require.Equal(t, int32(0), m[2].Res, "connect: %v", m[2].Err())
	require.GreaterOrEqual(t, m[3].Res, int32(0), "accept: %v", m[3].Err())
	peer := int(m[3].Res)
	defer unix.Close(peer)
	require.Equal(t, uint32(unix.SizeofSockaddrInet4), acc.saLen)
	require.Equal(t, uint16(unix.AF_INET), acc.sa.Addr.Family)

	// Shutdown(SHUT_WR) on the client: the server reads end of stream.
	prep(t, r, 4, func(s *uring.SQE) { s.PrepShutdown(fd, unix.SHUT_WR) })
	prep(t, r, 5, func(s *uring.SQE) { s.PrepRecv(int32(peer), sc.buf[:], 0) })
	m = byUD(collect(t, tr, 2, waitLimit))
	require.Equal(t, int32(0), m[4].Res)
	require.Equal(t, int32(0), m[5].Res)

	prep(t, r, 6, func(s *uring.SQE) { s.PrepClose(fd) })
	require.Equal(t, int32(0), collect(t, tr, 1, waitLimit)[0].Res)
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	require.ErrorIs(t, err, unix.EBADF)
}

func TestLinkTimeout(t *testing.T) {
	r := newRing(t, uring.Options{Entries: 8})
	tr := &ourRing{r}
	sv := socketpair(t)
	sc := new(scratch)
	sc.ts = unix.NsecToTimespec(int64(10 * time.Millisecond))
	prep(t, r, 1, func(s *uring.SQE) {
		s.PrepRecv(int32(sv[1]), sc.buf[:], 0)
		s.Flags |= uring.SQEIOLink
	})
	s, err := r.AcquireSQE()
	require.NoError(t, err)
	s.PrepLinkTimeout(&sc.ts, 0)
	s.UserData = 2
	m := byUD(collect(t, tr, 2, waitLimit))
	require.Equal(t, -int32(unix.ECANCELED), m[1].Res)
	require.Equal(t, -int32(unix.ETIME), m[2].Res)
}

func TestPollMultishot(t *testing.T) {
	r := newRing(t, uring.Options{Entries: 8})
	if !r.Features().MultishotPoll {
		t.Skip("no multishot poll")
	}
	tr := &ourRing{r}
	p := pipe(t)
	prep(t, r, 1, func(s *uring.SQE) { s.PrepPollMultishot(int32(p[0]), unix.POLLIN) })
	require.NoError(t, tr.Submit())
	one := []byte{1}
	for i := 0; i < 3; i++ {
		_, err := unix.Write(p[1], one)
		require.NoError(t, err)
		c := collect(t, tr, 1, waitLimit)[0]
		require.Equal(t, uint64(1), c.UserData)
		require.True(t, c.More())
		require.NotZero(t, c.Res&unix.POLLIN)
		var b [8]byte
		_, err = unix.Read(p[0], b[:])
		require.NoError(t, err)
	}
	prep(t, r, 2, func(s *uring.SQE) { s.PrepPollRemove(1) })
	m := byUD(collect(t, tr, 2, waitLimit))
	require.Equal(t, -int32(unix.ECANCELED), m[1].Res)
	require.False(t, m[1].More())
	require.Equal(t, int32(0), m[2].Res)
}

func TestMsgRing(t *testing.T) {
	r := newRing(t, uring.Options{Entries: 8})
	if !r.Features().MsgRing {
		t.Skip("kernel lacks IORING_OP_MSG_RING (5.18+)")
	}
	tr := &ourRing{r}
	other, err := uring.New(uring.Options{Entries: 4})
	require.NoError(t, err)
	defer other.Close()
	// To another ring, and to ourselves (a wake-up).
	prep(t, r, 1, func(s *uring.SQE) { s.PrepMsgRing(int32(other.Fd()), 77, 0xabc, 0) })
	prep(t, r, 2, func(s *uring.SQE) { s.PrepMsgRing(int32(r.Fd()), 5, 0xdef, 0) })
	m := byUD(collect(t, tr, 3, waitLimit))
	require.Equal(t, int32(0), m[1].Res)
	require.Equal(t, int32(0), m[2].Res)
	require.Equal(t, int32(5), m[0xdef].Res)
	got := collect(t, &ourRing{other}, 1, waitLimit)[0]
	require.Equal(t, uint64(0xabc), got.UserData)
	require.Equal(t, int32(77), got.Res)
}

func TestSendmsgRecvmsgUDP(t *testing.T) {
	r := newRing(t, uring.Options{Entries: 8})
	tr := &ourRing{r}
	a, b := udpPair(t)
	out, in := new(scratch), new(scratch)
	out.payload = []byte("datagram one")
	out.iov[0].Base = &out.payload[0]
	out.iov[0].SetLen(len(out.payload))
	out.msg.Iov = &out.iov[0]
	out.msg.SetIovlen(1)
	in.iov[0].Base = &in.buf[0]
	in.iov[0].SetLen(len(in.buf))
	in.msg.Iov = &in.iov[0]
	in.msg.SetIovlen(1)
	in.msg.Name = (*byte)(unsafe.Pointer(&in.sa))
	in.msg.Namelen = uint32(unsafe.Sizeof(in.sa))

	prep(t, r, 1, func(s *uring.SQE) { s.PrepRecvmsg(int32(b), &in.msg, 0) })
	prep(t, r, 2, func(s *uring.SQE) { s.PrepSendmsg(int32(a), &out.msg, 0) })
	m := byUD(collect(t, tr, 2, waitLimit))
	require.Equal(t, int32(len(out.payload)), m[2].Res)
	require.Equal(t, int32(len(out.payload)), m[1].Res)
	require.Equal(t, out.payload, in.buf[:m[1].Res])
	require.Equal(t, uint32(unix.SizeofSockaddrInet4), in.msg.Namelen)
}

func TestRecvmsgMultishotUDP(t *testing.T) {
	r := newRing(t, uring.Options{Entries: 8, CQEntries: 64})
	f := r.Features()
	if !f.BufRing || !f.MultishotRecv {
		t.Skip("no buffer rings / multishot receive")
	}
	tr := &ourRing{r}
	br, err := r.NewBufRing(3, 8, 128)
	require.NoError(t, err)
	defer br.Close()
	a, b := udpPair(t)
	hdr := new(scratch)
	hdr.msg.Namelen = unix.SizeofSockaddrInet4
	prep(t, r, 1, func(s *uring.SQE) { s.PrepRecvmsgMultishot(int32(b), &hdr.msg, 3, 0) })
	require.NoError(t, tr.Submit())
	big := make([]byte, 200) // larger than the buffer room: truncated
	for i, p := range [][]byte{[]byte("one"), []byte("two!"), big} {
		_, err := unix.Write(a, p)
		require.NoError(t, err)
		c := collect(t, tr, 1, waitLimit)[0]
		require.Equal(t, uint64(1), c.UserData)
		require.True(t, c.More(), "datagram %d ended the multishot: %v", i, c.Err())
		require.True(t, c.HasBuffer())
		h, name, _, payload, ok := uring.ParseRecvmsgOut(br.Buffer(c.BufferID())[:c.Res], hdr.msg.Namelen, 0)
		require.True(t, ok)
		require.Len(t, name, unix.SizeofSockaddrInet4)
		if i < 2 {
			require.Equal(t, p, payload)
		} else {
			// Only what fit was copied; the header says the datagram was cut.
			require.Equal(t, uint32(128-16-unix.SizeofSockaddrInet4), h.PayloadLen)
			require.Len(t, payload, int(h.PayloadLen))
			require.NotZero(t, h.Flags&unix.MSG_TRUNC)
		}
		br.Recycle(c.BufferID())
	}
	prep(t, r, 2, func(s *uring.SQE) { s.PrepCancel(1, 0) })
	m := byUD(collect(t, tr, 2, waitLimit))
	require.Equal(t, -int32(unix.ECANCELED), m[1].Res)
}

func TestCancelAny(t *testing.T) {
	r := newRing(t, uring.Options{Entries: 8})
	tr := &ourRing{r}
	sv := socketpair(t)
	sc := new(scratch)
	for i := uint64(1); i <= 3; i++ {
		prep(t, r, i, func(s *uring.SQE) { s.PrepRecv(int32(sv[i%2]), sc.buf[:], 0) })
	}
	require.NoError(t, tr.Submit())
	prep(t, r, 9, func(s *uring.SQE) { s.PrepCancelAny(uring.CancelAll) })
	m := byUD(collect(t, tr, 4, waitLimit))
	require.Equal(t, int32(3), m[9].Res)
	for i := uint64(1); i <= 3; i++ {
		require.Equal(t, -int32(unix.ECANCELED), m[i].Res)
	}
}

func udpPair(t testing.TB) (int, int) {
	open := func() int {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		t.Cleanup(func() { unix.Close(fd) })
		require.NoError(t, unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
		return fd
	}
	a, b := open(), open()
	sa, err := unix.Getsockname(a)
	require.NoError(t, err)
	sb, err := unix.Getsockname(b)
	require.NoError(t, err)
	require.NoError(t, unix.Connect(a, sb))
	require.NoError(t, unix.Connect(b, sa))
	return a, b
}

// An incrementally consumed ring: receives take only what they need from the
// head buffer and continue where the last one ended (CQEFBufMore while the
// buffer has room left); a receive that fills the rest ends the buffer.
func TestBufRingIncremental(t *testing.T) {
	r := newRing(t, uring.Options{Entries: 8, CQEntries: 64})
	if !r.Features().BufRingInc {
		t.Skip("no incrementally consumed buffer rings (Linux 6.12+)")
	}
	tr := &ourRing{r}
	br, err := r.NewBufRingIncremental(4, 2, 256)
	require.NoError(t, err)
	defer br.Close()
	require.True(t, br.Incremental())
	sv := socketpair(t)
	off := 0
	for i, n := range []int{100, 100, 56, 10} {
		p := bytes.Repeat([]byte{byte('a' + i)}, n)
		_, err := unix.Write(sv[1], p)
		require.NoError(t, err)
		prep(t, r, uint64(i+1), func(s *uring.SQE) { s.PrepRecvBufferSelect(int32(sv[0]), 4, 0, 0) })
		c := collect(t, tr, 1, waitLimit)[0]
		require.Equal(t, int32(n), c.Res)
		require.True(t, c.HasBuffer())
		if i < 3 {
			require.Equal(t, uint16(0), c.BufferID(), "receive %d", i)
			require.Equal(t, p, br.Buffer(0)[off:off+n], "receive %d continues the buffer", i)
			off += n
			require.Equal(t, i < 2, c.Flags&uring.CQEFBufMore != 0, "receive %d: buffer left with room", i)
		} else {
			require.Equal(t, uint16(1), c.BufferID(), "the full buffer was retired")
			require.Equal(t, p, br.Buffer(1)[:n])
		}
	}
}

// A multishot recv with a total limit ends once it has received that many
// bytes, with a data CQE without CQEFMore; re-armed, the other busy socket's
// request has had its turn. Without the limit one arming drains the socket.
func TestRecvMultishotTotal(t *testing.T) {
	r := newRing(t, uring.Options{Entries: 8, CQEntries: 256})
	f := r.Features()
	if !f.BufRing || !f.MultishotRecv {
		t.Skip("kernel lacks buffer rings or multishot recv (6.0+)")
	}
	if !f.MultishotRecvTotal {
		t.Skip("kernel refuses a total limit on multishot recv (before 6.17)")
	}
	require.Contains(t, f.String(), "multishot_recv_total")
	tr := &ourRing{r}
	const group, nbuf, size, limit, fill = 9, 64, 16 << 10, 32 << 10, 96 << 10
	for _, limited := range []bool{true, false} {
		br, err := r.NewBufRing(group, nbuf, size)
		require.NoError(t, err)
		var socks [2][2]int
		for i := range socks {
			socks[i] = socketpair(t)
			n, err := unix.Write(socks[i][1], bytes.Repeat([]byte{byte('a' + i)}, fill))
			require.NoError(t, err)
			require.Equal(t, fill, n)
		}
		arm := func(i int) {
			prep(t, r, uint64(i+1), func(s *uring.SQE) {
				s.PrepRecvMultishot(int32(socks[i][0]), group, 0, 0)
				if limited {
					s.SetRecvMultishotTotal(limit)
				}
			})
		}
		arm(0)
		arm(1)
		var got, perArm [2]int
		ends, firstTurn := 0, -1 // bytes of stream 0 before stream 1's first completion
		for got[0] < fill || got[1] < fill {
			c := collect(t, tr, 1, waitLimit)[0]
			require.Positive(t, c.Res, "limited=%v", limited)
			i := int(c.UserData - 1)
			if i == 1 && firstTurn < 0 {
				firstTurn = got[0]
			}
			got[i] += int(c.Res)
			perArm[i] += int(c.Res)
			br.Recycle(c.BufferID())
			if !c.More() {
				require.True(t, limited, "an unlimited multishot ended with %d", c.Res)
				require.GreaterOrEqual(t, perArm[i], limit, "ended before its limit")
				require.Less(t, perArm[i], limit+size, "went on past its limit")
				ends++
				perArm[i] = 0
				if got[i] < fill {
					arm(i)
				}
			}
		}
		t.Logf("limited=%v: %d endings, stream 0 had %d B before stream 1's first", limited, ends, firstTurn)
		if limited {
			require.Equal(t, 2*fill/limit, ends)
			require.LessOrEqual(t, firstTurn, limit, "stream 0 went on past its limit before stream 1 had a turn")
		} else {
			require.Greater(t, firstTurn, limit, "without a limit one arming takes more (the test cannot tell the difference)")
			for i := range socks {
				prep(t, r, uint64(10+i), func(s *uring.SQE) { s.PrepCancel(uint64(i+1), 0) })
			}
			collect(t, tr, 4, waitLimit)
		}
		require.NoError(t, br.Close())
	}
}
