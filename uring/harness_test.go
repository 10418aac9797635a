package uring_test

import (
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/gyre-io/gyre/uring"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// testRing is what the shared scenarios need from a ring. Our Ring satisfies it
// through ourRing; with the build tag giouring, a ring built on
// the giouring module does too, so every scenario doubles as a
// differential check of our binding. Op methods queue one request (submitting
// first when the SQ is full); memory they are handed must be heap memory the
// test keeps alive.
type testRing interface {
	Nop(ud uint64) error
	Timeout(ud uint64, ts *unix.Timespec, count uint32) error
	TimeoutRemove(ud, target uint64) error
	Read(ud uint64, fd int, b []byte) error
	Write(ud uint64, fd int, b []byte) error
	Send(ud uint64, fd int, b []byte) error
	Recv(ud uint64, fd int, b []byte) error
	RecvMultishot(ud uint64, fd int, group uint16) error
	MultishotAccept(ud uint64, fd int) error
	SendZC(ud uint64, fd int, b []byte) error
	PollAdd(ud uint64, fd int, events uint32) error
	Cancel(ud, target uint64) error
	CancelFd(ud uint64, fd int) error // every request on fd
	// Submit submits without waiting.
	Submit() error
	// Wait submits and waits for n completions or d (d < 0: no limit).
	Wait(n uint32, d time.Duration) error
	// Reap consumes up to len(out) completions into out.
	Reap(out []uring.CQE) int
	NewBufRing(group uint16, count, size int) (testBufRing, error)
	Close() error
}

// testBufRing is a provided-buffer ring under test.
type testBufRing interface {
	Buffer(id uint16) []byte
	Recycle(id uint16)
	Close() error
}

// ringKind builds one kind of ring; entries/cq 0 means defaults.
type ringKind struct {
	name string
	open func(t testing.TB, entries, cq uint32) testRing
}

// ringKinds lists the rings every shared scenario runs on; giouring_test.go
// (build tag giouring) appends the giouring ring.
// Our ring runs them in each setup mode: DEFER_TASKRUN (auto's first choice),
// COOP_TASKRUN and none, whose completion paths differ.
// The default ring drops the SQ index array (NO_SQARRAY, 6.6+); "uring-reg"
// also enters through a registered ring descriptor, "uring-sqarray" keeps the
// array, so both states of each lever run every scenario.
var ringKinds = []ringKind{
	{"uring", openOurs(uring.Options{})},
	{"uring-reg", openOurs(uring.Options{RegisterRing: true})},
	{"uring-sqarray", openOurs(uring.Options{KeepSQArray: true})},
	{"uring-coop", openOurs(uring.Options{Setup: uring.SetupCoopTaskrun, RegisterRing: true})},
	{"uring-plain", openOurs(uring.Options{Setup: uring.SetupPlain})},
}

func openOurs(o uring.Options) func(t testing.TB, entries, cq uint32) testRing {
	return func(t testing.TB, entries, cq uint32) testRing {
		o.Entries, o.CQEntries = entries, cq
		r := newRing(t, o)
		return &ourRing{r: r}
	}
}

// lockThread pins the test goroutine to its OS thread for the whole test
// (SINGLE_ISSUER rings must be entered from the thread that created them).
func lockThread(t testing.TB) {
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
}

// newRing locks the thread and opens our ring, closed at cleanup.
func newRing(t testing.TB, o uring.Options) *uring.Ring {
	lockThread(t)
	r, err := uring.New(o)
	if errors.Is(err, uring.ErrUnavailable) {
		t.Skipf("io_uring unavailable: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	return r
}

// forEachRing runs f as a subtest for every ring kind.
func forEachRing(t *testing.T, f func(t *testing.T, k ringKind)) {
	for _, k := range ringKinds {
		t.Run(k.name, func(t *testing.T) { f(t, k) })
	}
}

// features of the running kernel, from a throwaway ring of ours.
func kernelFeatures(t testing.TB) uring.Features {
	r := newRing(t, uring.Options{Entries: 4})
	return r.Features()
}

// collect reaps exactly n completions, failing after timeout.
func collect(t testing.TB, r testRing, n int, timeout time.Duration) []uring.CQE {
	t.Helper()
	out := make([]uring.CQE, 0, n)
	buf := make([]uring.CQE, 16)
	deadline := time.Now().Add(timeout)
	for len(out) < n {
		left := time.Until(deadline)
		require.Greater(t, left, time.Duration(0), "timed out with %d of %d completions: %+v", len(out), n, out)
		require.NoError(t, r.Wait(1, min(left, 200*time.Millisecond)))
		k := r.Reap(buf[:min(len(buf), n-len(out))])
		out = append(out, buf[:k]...)
	}
	return out
}

func byUD(cqes []uring.CQE) map[uint64]uring.CQE {
	m := make(map[uint64]uring.CQE, len(cqes))
	for _, c := range cqes {
		m[c.UserData] = c
	}
	return m
}

func socketpair(t testing.TB) [2]int {
	sv, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(sv[0]); unix.Close(sv[1]) })
	return sv
}

func pipe(t testing.TB) [2]int {
	var p [2]int
	require.NoError(t, unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK))
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p
}

// tcpListener listens on 127.0.0.1 (loopback only) and returns fd and port.
func tcpListener(t testing.TB, backlog int) (int, int) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	require.NoError(t, unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, unix.Listen(fd, backlog))
	sa, err := unix.Getsockname(fd)
	require.NoError(t, err)
	return fd, sa.(*unix.SockaddrInet4).Port
}

// tcpDial connects a blocking socket to 127.0.0.1:port.
func tcpDial(t testing.TB, port int) int {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	require.NoError(t, unix.Connect(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}))
	return fd
}

// tcpPair returns a connected (client, server) TCP pair on loopback.
func tcpPair(t testing.TB) (int, int) {
	ln, port := tcpListener(t, 1)
	c := tcpDial(t, port)
	var s int
	var err error
	for i := 0; i < 1000; i++ {
		s, _, err = unix.Accept4(ln, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
		if err != unix.EAGAIN {
			break
		}
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(s) })
	return c, s
}

func envSet(name string) bool { return os.Getenv(name) == "1" }

// ourRing adapts *uring.Ring to testRing.
type ourRing struct{ r *uring.Ring }

func (o *ourRing) sqe(ud uint64, prep func(*uring.SQE)) error {
	s, err := o.r.AcquireSQE()
	if err != nil {
		return err
	}
	prep(s)
	s.UserData = ud
	return nil
}

func (o *ourRing) Nop(ud uint64) error {
	s, err := o.r.AcquireSQE()
	if err != nil {
		return err
	}
	s.PrepNop()
	s.UserData = ud
	return nil
}

func (o *ourRing) Timeout(ud uint64, ts *unix.Timespec, count uint32) error {
	return o.sqe(ud, func(s *uring.SQE) { s.PrepTimeout(ts, count, 0) })
}

func (o *ourRing) TimeoutRemove(ud, target uint64) error {
	return o.sqe(ud, func(s *uring.SQE) { s.PrepTimeoutRemove(target, 0) })
}

func (o *ourRing) Read(ud uint64, fd int, b []byte) error {
	return o.sqe(ud, func(s *uring.SQE) { s.PrepRead(int32(fd), b, uring.OffsetCurrent) })
}

func (o *ourRing) Write(ud uint64, fd int, b []byte) error {
	return o.sqe(ud, func(s *uring.SQE) { s.PrepWrite(int32(fd), b, uring.OffsetCurrent) })
}

func (o *ourRing) Send(ud uint64, fd int, b []byte) error {
	s, err := o.r.AcquireSQE()
	if err != nil {
		return err
	}
	s.PrepSend(int32(fd), b, unix.MSG_NOSIGNAL)
	s.UserData = ud
	return nil
}

func (o *ourRing) Recv(ud uint64, fd int, b []byte) error {
	s, err := o.r.AcquireSQE()
	if err != nil {
		return err
	}
	s.PrepRecv(int32(fd), b, 0)
	s.UserData = ud
	return nil
}

func (o *ourRing) RecvMultishot(ud uint64, fd int, group uint16) error {
	return o.sqe(ud, func(s *uring.SQE) { s.PrepRecvMultishot(int32(fd), group, 0, 0) })
}

func (o *ourRing) MultishotAccept(ud uint64, fd int) error {
	return o.sqe(ud, func(s *uring.SQE) {
		s.PrepMultishotAccept(int32(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	})
}

func (o *ourRing) SendZC(ud uint64, fd int, b []byte) error {
	return o.sqe(ud, func(s *uring.SQE) { s.PrepSendZC(int32(fd), b, unix.MSG_NOSIGNAL, uring.SendZCReportUsage) })
}

func (o *ourRing) PollAdd(ud uint64, fd int, events uint32) error {
	return o.sqe(ud, func(s *uring.SQE) { s.PrepPollAdd(int32(fd), events) })
}

func (o *ourRing) Cancel(ud, target uint64) error {
	return o.sqe(ud, func(s *uring.SQE) { s.PrepCancel(target, 0) })
}

func (o *ourRing) CancelFd(ud uint64, fd int) error {
	return o.sqe(ud, func(s *uring.SQE) { s.PrepCancelFd(int32(fd), uring.CancelAll) })
}

func (o *ourRing) Submit() error {
	_, err := o.r.Submit()
	return err
}

func (o *ourRing) Wait(n uint32, d time.Duration) error {
	_, err := o.r.SubmitAndWait(n, d)
	return err
}

func (o *ourRing) Reap(out []uring.CQE) int { return o.r.Reap(out) }

func (o *ourRing) NewBufRing(group uint16, count, size int) (testBufRing, error) {
	return o.r.NewBufRing(group, count, size)
}

func (o *ourRing) Close() error { return o.r.Close() }
