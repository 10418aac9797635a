//go:build giouring

// The giouring ring: the same scenarios and benchmarks run on a ring built on
// github.com/pawelgaczynski/giouring, as a differential check of our binding.
// giouring reaches syscall.munmap through go:linkname, which Go ≥ 1.23 refuses
// to link, so this file builds only with
//
//	go test -tags giouring -ldflags=-checklinkname=0 ./uring/...
//
// Where a giouring prep helper encodes an SQE wrongly (see
// TestGiouringKnownBugs) the adapter fills the fields itself, so the rest of
// giouring — setup, mmap, SQ/CQ handling, submit/wait, buffer rings — still
// gets compared.

package uring_test

import (
	"errors"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/gyre-io/gyre/uring"
	"github.com/pawelgaczynski/giouring"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func init() {
	ringKinds = append(ringKinds, ringKind{"giouring", openGiouring})
}

type gioRing struct {
	r     *giouring.Ring
	ptrs  []*giouring.CompletionQueueEvent
	ts    syscall.Timespec
	eintr int
}

// openGiouring ignores cq: giouring's Params fields are unexported, so its CQ
// is always twice the SQ (no IORING_SETUP_CQSIZE).
func openGiouring(t testing.TB, entries, _ uint32) testRing {
	lockThread(t)
	if entries == 0 {
		entries = 256
	}
	r, err := giouring.CreateRing(entries)
	require.NoError(t, err)
	g := &gioRing{r: r, ptrs: make([]*giouring.CompletionQueueEvent, 256)}
	t.Cleanup(func() { r.QueueExit() })
	return g
}

func (g *gioRing) get() (*giouring.SubmissionQueueEntry, error) {
	if s := g.r.GetSQE(); s != nil {
		return s, nil
	}
	if _, err := g.r.Submit(); err != nil {
		return nil, err
	}
	if s := g.r.GetSQE(); s != nil {
		return s, nil
	}
	return nil, uring.ErrSQFull
}

func (g *gioRing) Nop(ud uint64) error {
	s, err := g.get()
	if err != nil {
		return err
	}
	s.PrepareNop()
	s.UserData = ud
	return nil
}

// Timeout fills the SQE itself: giouring's PrepareTimeout passes the address of
// its *Timespec parameter instead of the Timespec.
func (g *gioRing) Timeout(ud uint64, ts *unix.Timespec, count uint32) error {
	s, err := g.get()
	if err != nil {
		return err
	}
	s.PrepareNop()
	s.OpCode = giouring.OpTimeout
	s.Fd = -1
	s.Addr = uint64(uintptr(unsafe.Pointer(ts)))
	s.Len = 1
	s.Off = uint64(count)
	s.OpcodeFlags = 0
	s.UserData = ud
	return nil
}

// TimeoutRemove fills the SQE itself: giouring's PrepareTimeoutRemove takes a
// duration instead of the target's user data.
func (g *gioRing) TimeoutRemove(ud, target uint64) error {
	s, err := g.get()
	if err != nil {
		return err
	}
	s.PrepareNop()
	s.OpCode = giouring.OpTimeoutRemove
	s.Fd = -1
	s.Addr = target
	s.OpcodeFlags = 0
	s.UserData = ud
	return nil
}

func bufPtr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

func (g *gioRing) Read(ud uint64, fd int, b []byte) error {
	s, err := g.get()
	if err != nil {
		return err
	}
	s.PrepareRead(fd, bufPtr(b), uint32(len(b)), ^uint64(0))
	s.UserData = ud
	return nil
}

func (g *gioRing) Write(ud uint64, fd int, b []byte) error {
	s, err := g.get()
	if err != nil {
		return err
	}
	s.PrepareWrite(fd, bufPtr(b), uint32(len(b)), ^uint64(0))
	s.UserData = ud
	return nil
}

func (g *gioRing) Send(ud uint64, fd int, b []byte) error {
	s, err := g.get()
	if err != nil {
		return err
	}
	s.PrepareSend(fd, bufPtr(b), uint32(len(b)), unix.MSG_NOSIGNAL)
	s.UserData = ud
	return nil
}

func (g *gioRing) Recv(ud uint64, fd int, b []byte) error {
	s, err := g.get()
	if err != nil {
		return err
	}
	s.PrepareRecv(fd, bufPtr(b), uint32(len(b)), 0)
	s.UserData = ud
	return nil
}

func (g *gioRing) RecvMultishot(ud uint64, fd int, group uint16) error {
	s, err := g.get()
	if err != nil {
		return err
	}
	s.PrepareRecvMultishot(fd, 0, 0, 0)
	s.Flags |= giouring.SqeBufferSelect
	s.BufIG = group
	s.UserData = ud
	return nil
}

func (g *gioRing) MultishotAccept(ud uint64, fd int) error {
	s, err := g.get()
	if err != nil {
		return err
	}
	s.PrepareMultishotAccept(fd, 0, 0, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	s.UserData = ud
	return nil
}

// SendZC fills the buffer address itself: giouring's PrepareSendZC passes the
// address of the slice header instead of the data.
func (g *gioRing) SendZC(ud uint64, fd int, b []byte) error {
	s, err := g.get()
	if err != nil {
		return err
	}
	s.PrepareSendZC(fd, b, unix.MSG_NOSIGNAL, uint32(uring.SendZCReportUsage))
	s.Addr = uint64(bufPtr(b))
	s.UserData = ud
	return nil
}

func (g *gioRing) PollAdd(ud uint64, fd int, events uint32) error {
	s, err := g.get()
	if err != nil {
		return err
	}
	s.PreparePollAdd(fd, events)
	s.UserData = ud
	return nil
}

func (g *gioRing) Cancel(ud, target uint64) error {
	s, err := g.get()
	if err != nil {
		return err
	}
	s.PrepareCancel64(target, 0)
	s.UserData = ud
	return nil
}

func (g *gioRing) CancelFd(ud uint64, fd int) error {
	s, err := g.get()
	if err != nil {
		return err
	}
	s.PrepareCancelFd(fd, giouring.AsyncCancelAll)
	s.UserData = ud
	return nil
}

func (g *gioRing) Submit() error {
	_, err := g.r.SubmitAndGetEvents()
	return err
}

// Wait maps giouring's results to the testRing contract: giouring returns
// EINTR and ETIME to the caller, so the adapter retries EINTR (recomputing the
// time left) and treats ETIME as "no completion yet".
func (g *gioRing) Wait(n uint32, d time.Duration) error {
	if n == 0 || d == 0 {
		return g.Submit()
	}
	var deadline time.Time
	if d > 0 {
		deadline = time.Now().Add(d)
	}
	for {
		var err error
		if d < 0 {
			_, err = g.r.SubmitAndWait(n)
		} else {
			left := max(time.Until(deadline), 0)
			g.ts = syscall.NsecToTimespec(int64(left))
			_, err = g.r.SubmitAndWaitTimeout(n, &g.ts, nil)
		}
		switch {
		case err == nil, errors.Is(err, syscall.ETIME):
			return nil
		case errors.Is(err, syscall.EINTR):
			g.eintr++
			if d > 0 && !time.Now().Before(deadline) {
				return nil
			}
			continue
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EBUSY):
			if g.r.CQReady() > 0 {
				return nil
			}
		}
		return err
	}
}

func (g *gioRing) Reap(out []uring.CQE) int {
	n := int(g.r.PeekBatchCQE(g.ptrs[:min(len(out), len(g.ptrs))]))
	for i := 0; i < n; i++ {
		c := g.ptrs[i]
		out[i] = uring.CQE{UserData: c.UserData, Res: c.Res, Flags: c.Flags}
	}
	g.r.CQAdvance(uint32(n))
	return n
}

func (g *gioRing) Close() error {
	g.r.QueueExit()
	return nil
}

// gioBufRing: giouring maps the descriptor ring; the buffers are ours (mmap).
type gioBufRing struct {
	g     *gioRing
	br    *giouring.BufAndRing
	group uint16
	count int
	size  int
	mem   []byte
}

func (g *gioRing) NewBufRing(group uint16, count, size int) (testBufRing, error) {
	br, err := g.r.SetupBufRing(uint32(count), int(group), 0)
	if err != nil {
		return nil, err
	}
	mem, err := unix.Mmap(-1, 0, count*size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		_ = g.r.FreeBufRing(int(group))
		return nil, err
	}
	b := &gioBufRing{g: g, br: br, group: group, count: count, size: size, mem: mem}
	mask := giouring.BufRingMask(uint32(count))
	for i := 0; i < count; i++ {
		br.BufRingAdd(uintptr(unsafe.Pointer(&mem[i*size])), uint32(size), uint16(i), mask, i)
	}
	br.BufRingAdvance(count)
	return b, nil
}

func (b *gioBufRing) Buffer(id uint16) []byte {
	return b.mem[int(id)*b.size : (int(id)+1)*b.size]
}

func (b *gioBufRing) Recycle(id uint16) {
	b.br.BufRingAdd(uintptr(unsafe.Pointer(&b.mem[int(id)*b.size])), uint32(b.size), id, giouring.BufRingMask(uint32(b.count)), 0)
	b.br.BufRingAdvance(1)
}

// Close unregisters the group. giouring's FreeBufRing does not unmap the
// descriptor ring it mapped in SetupBufRing; that mapping leaks.
func (b *gioBufRing) Close() error {
	err := b.g.r.FreeBufRing(int(b.group))
	if e := unix.Munmap(b.mem); err == nil {
		err = e
	}
	return err
}

// TestGiouringKnownBugs pins down the giouring prep helpers the adapter works
// around: each encodes a pointer the kernel would dereference wrongly. If one
// of these starts failing, giouring changed and the adapter can use its helper.
func TestGiouringKnownBugs(t *testing.T) {
	var s giouring.SubmissionQueueEntry
	ts := &syscall.Timespec{Sec: 1}
	s.PrepareTimeout(ts, 0, 0)
	require.NotEqual(t, uint64(uintptr(unsafe.Pointer(ts))), s.Addr,
		"PrepareTimeout now passes the timespec itself")

	buf := make([]byte, 16)
	s.PrepareSendZC(3, buf, 0, 0)
	require.NotEqual(t, uint64(bufPtr(buf)), s.Addr, "PrepareSendZC now passes the data pointer")

	s.PrepareTimeoutRemove(time.Second, 42, 0)
	require.NotEqual(t, uint64(42), s.Addr, "PrepareTimeoutRemove now names the target by user data")

	// Our helpers encode the same requests correctly.
	var u uring.SQE
	uts := &unix.Timespec{Sec: 1}
	u.PrepTimeout(uts, 0, 0)
	require.Equal(t, uint64(uintptr(unsafe.Pointer(uts))), u.Addr)
	u.PrepSendZC(3, buf, 0, 0)
	require.Equal(t, uint64(bufPtr(buf)), u.Addr)
	u.PrepTimeoutRemove(42, 0)
	require.Equal(t, uint64(42), u.Addr)
}

// TestGiouringSQEEncodingMatches compares, field by field, the SQEs giouring's
// (correct) helpers and ours produce for the same requests.
func TestGiouringSQEEncodingMatches(t *testing.T) {
	require.Equal(t, unsafe.Sizeof(giouring.SubmissionQueueEntry{}), unsafe.Sizeof(uring.SQE{}))
	buf := make([]byte, 32)
	bp := bufPtr(buf)
	cases := []struct {
		name string
		gio  func(s *giouring.SubmissionQueueEntry)
		ours func(s *uring.SQE)
	}{
		{"nop", func(s *giouring.SubmissionQueueEntry) { s.PrepareNop() }, func(s *uring.SQE) { s.PrepNop() }},
		{"read", func(s *giouring.SubmissionQueueEntry) { s.PrepareRead(5, bp, 32, 7) },
			func(s *uring.SQE) { s.PrepRead(5, buf, 7) }},
		{"write", func(s *giouring.SubmissionQueueEntry) { s.PrepareWrite(5, bp, 32, 7) },
			func(s *uring.SQE) { s.PrepWrite(5, buf, 7) }},
		{"send", func(s *giouring.SubmissionQueueEntry) { s.PrepareSend(5, bp, 32, unix.MSG_NOSIGNAL) },
			func(s *uring.SQE) { s.PrepSend(5, buf, unix.MSG_NOSIGNAL) }},
		{"recv", func(s *giouring.SubmissionQueueEntry) { s.PrepareRecv(5, bp, 32, 0) },
			func(s *uring.SQE) { s.PrepRecv(5, buf, 0) }},
		{"accept_multishot", func(s *giouring.SubmissionQueueEntry) { s.PrepareMultishotAccept(5, 0, 0, unix.SOCK_NONBLOCK) },
			func(s *uring.SQE) { s.PrepMultishotAccept(5, unix.SOCK_NONBLOCK) }},
		{"cancel", func(s *giouring.SubmissionQueueEntry) { s.PrepareCancel64(99, 0) },
			func(s *uring.SQE) { s.PrepCancel(99, 0) }},
		{"cancel_fd", func(s *giouring.SubmissionQueueEntry) { s.PrepareCancelFd(5, giouring.AsyncCancelAll) },
			func(s *uring.SQE) { s.PrepCancelFd(5, uring.CancelAll) }},
		{"close", func(s *giouring.SubmissionQueueEntry) { s.PrepareClose(5) }, func(s *uring.SQE) { s.PrepClose(5) }},
		{"shutdown", func(s *giouring.SubmissionQueueEntry) { s.PrepareShutdown(5, unix.SHUT_WR) },
			func(s *uring.SQE) { s.PrepShutdown(5, unix.SHUT_WR) }},
		{"poll", func(s *giouring.SubmissionQueueEntry) { s.PreparePollAdd(5, unix.POLLIN) },
			func(s *uring.SQE) { s.PrepPollAdd(5, unix.POLLIN) }},
		{"poll_multishot", func(s *giouring.SubmissionQueueEntry) { s.PreparePollMultishot(5, unix.POLLIN) },
			func(s *uring.SQE) { s.PrepPollMultishot(5, unix.POLLIN) }},
		{"poll_remove", func(s *giouring.SubmissionQueueEntry) { s.PreparePollRemove(99) },
			func(s *uring.SQE) { s.PrepPollRemove(99) }},
		{"msg_ring", func(s *giouring.SubmissionQueueEntry) { s.PrepareMsgRing(5, 7, 99, 0) },
			func(s *uring.SQE) { s.PrepMsgRing(5, 7, 99, 0) }},
		{"socket", func(s *giouring.SubmissionQueueEntry) { s.PrepareSocket(unix.AF_INET, unix.SOCK_STREAM, 0, 0) },
			func(s *uring.SQE) { s.PrepSocket(unix.AF_INET, unix.SOCK_STREAM, 0, 0) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var g giouring.SubmissionQueueEntry
			var o uring.SQE
			c.gio(&g)
			c.ours(&o)
			gb := (*[64]byte)(unsafe.Pointer(&g))
			ob := (*[64]byte)(unsafe.Pointer(&o))
			require.Equal(t, *gb, *ob)
		})
	}
}
