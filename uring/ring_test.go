package uring_test

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/gyre-io/gyre/uring"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestUAPILayout(t *testing.T) {
	require.Equal(t, uring.UAPIWantSizes, uring.UAPISizes())
	// unix.Timespec must be struct __kernel_timespec (64-bit time).
	require.Equal(t, uintptr(16), unsafe.Sizeof(unix.Timespec{}))
}

func TestSetupErrorsAreUnavailable(t *testing.T) {
	for _, errno := range []syscall.Errno{unix.EPERM, unix.ENOSYS, unix.ENOMEM, unix.EINVAL} {
		t.Run(errno.Error(), func(t *testing.T) {
			var o uring.Options
			uring.InjectSetupError(&o, errno)
			r, err := uring.New(o)
			require.Nil(t, r)
			require.ErrorIs(t, err, uring.ErrUnavailable)
			require.ErrorIs(t, err, errno)
		})
	}
	// Running out of descriptors is not "unavailable": it is a plain error.
	var o uring.Options
	uring.InjectSetupError(&o, unix.EMFILE)
	_, err := uring.New(o)
	require.ErrorIs(t, err, unix.EMFILE)
	require.NotErrorIs(t, err, uring.ErrUnavailable)
}

// TestSysctlDisabled proves the mapping for real: with kernel.io_uring_disabled
// = 2, io_uring_setup fails with EPERM. It changes a machine-wide setting, so it
// runs only with GYRE_SYSCTL_TESTS=1 (CI runs it alone, never in parallel with
// other packages) and always restores the old value.
func TestSysctlDisabled(t *testing.T) {
	if !envSet("GYRE_SYSCTL_TESTS") {
		t.Skip("set GYRE_SYSCTL_TESTS=1 to run (changes kernel.io_uring_disabled; run serially)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to write /proc/sys/kernel/io_uring_disabled")
	}
	const path = "/proc/sys/kernel/io_uring_disabled"
	old, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		t.Skip("kernel has no io_uring_disabled sysctl (6.6+)")
	}
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, os.WriteFile(path, old, 0o644), "RESTORE %s to %q BY HAND", path, strings.TrimSpace(string(old)))
	})
	require.NoError(t, os.WriteFile(path, []byte("2"), 0o644))
	lockThread(t)
	r, err := uring.New(uring.Options{})
	if r != nil {
		r.Close()
	}
	require.ErrorIs(t, err, uring.ErrUnavailable)
	require.ErrorIs(t, err, unix.EPERM)
}

func TestSetupModes(t *testing.T) {
	for _, m := range []uring.SetupMode{uring.SetupDeferTaskrun, uring.SetupCoopTaskrun, uring.SetupPlain} {
		t.Run(m.String(), func(t *testing.T) {
			lockThread(t)
			r, err := uring.New(uring.Options{Entries: 4, CQEntries: 16, Setup: m})
			if errors.Is(err, unix.EINVAL) && m != uring.SetupPlain {
				t.Skipf("kernel rejects %v: %v", m, err)
			}
			require.NoError(t, err)
			defer r.Close()
			f := r.Features()
			require.Equal(t, m.String(), f.Setup)
			require.Equal(t, uint32(4), f.SQEntries)
			require.Equal(t, uint32(16), f.CQEntries)
			require.True(t, f.Probe.Supported(uring.OpNop))
			s := r.GetSQE()
			s.PrepNop()
			s.UserData = 9
			_, err = r.SubmitAndWait(1, time.Second)
			require.NoError(t, err)
			var c [2]uring.CQE
			require.Equal(t, 1, r.Reap(c[:]))
			require.Equal(t, uint64(9), c[0].UserData)
		})
	}
}

func TestFeatures(t *testing.T) {
	f := kernelFeatures(t)
	t.Log(f)
	require.NotEmpty(t, f.Setup)
	require.True(t, f.NoDrop)
	require.Equal(t, f.Probe.Supported(uring.OpSendZC), f.SendZC)
	require.False(t, f.Probe.Supported(uring.Opcode(255)))
}

func TestSQFull(t *testing.T) {
	r := newRing(t, uring.Options{Entries: 2, CQEntries: 8})
	for i := 0; i < 2; i++ {
		s := r.GetSQE()
		require.NotNil(t, s)
		s.PrepNop()
		s.UserData = uint64(i)
	}
	require.Nil(t, r.GetSQE())
	require.Equal(t, uint32(2), r.Pending())
	s, err := r.AcquireSQE() // submits the two queued, then hands out a fresh one
	require.NoError(t, err)
	s.PrepNop()
	s.UserData = 2
	require.Equal(t, 3, len(collect(t, &ourRing{r}, 3, waitLimit)))
}

func TestWaitTimeoutWithoutCompletions(t *testing.T) {
	r := newRing(t, uring.Options{Entries: 4})
	n, err := r.SubmitAndWait(1, 10*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, 0, n)
	require.Equal(t, uint32(0), r.CQReady())
}

func TestClosedRing(t *testing.T) {
	lockThread(t)
	r, err := uring.New(uring.Options{Entries: 4})
	require.NoError(t, err)
	require.NoError(t, r.Close())
	require.NoError(t, r.Close())
	require.Nil(t, r.GetSQE())
	_, err = r.Submit()
	require.ErrorIs(t, err, uring.ErrClosed)
	_, err = r.AcquireSQE()
	require.ErrorIs(t, err, uring.ErrClosed)
	_, err = r.NewBufRing(1, 4, 16)
	require.ErrorIs(t, err, uring.ErrClosed)
	require.Equal(t, 0, r.Reap(make([]uring.CQE, 4)))
}

func TestWrongThread(t *testing.T) {
	r := newRing(t, uring.Options{Entries: 4, Setup: uring.SetupDeferTaskrun})
	if r.Features().Setup != uring.SetupDeferTaskrun.String() {
		t.Skip("not a SINGLE_ISSUER ring")
	}
	errc := make(chan error)
	go func() {
		runtime.LockOSThread() // a thread other than the test's, which is locked
		defer runtime.UnlockOSThread()
		s := r.GetSQE()
		s.PrepNop()
		_, err := r.Submit()
		errc <- err
	}()
	err := <-errc
	require.ErrorIs(t, err, uring.ErrWrongThread)
	require.ErrorIs(t, err, unix.EEXIST)
}

func TestBufRingArguments(t *testing.T) {
	r := newRing(t, uring.Options{Entries: 4})
	for _, c := range []struct{ count, size int }{{0, 16}, {3, 16}, {65536, 16}, {4, 0}} {
		_, err := r.NewBufRing(1, c.count, c.size)
		require.ErrorIs(t, err, uring.ErrBufRing, "count %d size %d", c.count, c.size)
	}
	if !r.Features().BufRing {
		t.Skip("no buffer rings")
	}
	b, err := r.NewBufRing(1, 4, 16)
	require.NoError(t, err)
	_, err = r.NewBufRing(1, 4, 16)
	require.ErrorIs(t, err, unix.EEXIST, "group 1 registered twice")
	require.Len(t, b.Buffer(3), 16)
	require.Nil(t, b.Buffer(4))
	require.Equal(t, 4, b.Count())
	require.Equal(t, 16, b.Size())
	require.Equal(t, uint16(1), b.Group())
	require.NoError(t, b.Close())
	require.NoError(t, b.Close())
	require.Nil(t, b.Buffer(0))
	b, err = r.NewBufRing(1, 4, 16) // the group is free again
	require.NoError(t, err)
	require.NoError(t, b.Close())
}

func TestZeroAllocSubmitReap(t *testing.T) {
	r := newRing(t, uring.Options{Entries: 64})
	out := make([]uring.CQE, 64)
	sv := socketpair(t)
	buf := make([]byte, 64)
	ts := &unix.Timespec{Sec: 10}
	allocs := testing.AllocsPerRun(200, func() {
		for i := 0; i < 8; i++ {
			s, _ := r.AcquireSQE()
			s.PrepNop()
			s.UserData = uint64(i)
		}
		s, _ := r.AcquireSQE()
		s.PrepSend(int32(sv[0]), buf, 0)
		s, _ = r.AcquireSQE()
		s.PrepRecv(int32(sv[1]), buf, 0)
		s, _ = r.AcquireSQE()
		s.PrepTimeout(ts, 0, 0)
		s.UserData = 77
		s, _ = r.AcquireSQE()
		s.PrepTimeoutRemove(77, 0)
		got := 0
		for got < 12 {
			if _, err := r.SubmitAndWait(1, time.Second); err != nil {
				panic(err)
			}
			got += r.Reap(out)
		}
	})
	require.Zero(t, allocs)
}

// TestCQOverflowNoDrop completes 16 nops into a 4-entry CQ without reaping:
// the kernel keeps the extra CQEs (IORING_FEAT_NODROP) and flags the overflow;
// reaping and submitting again flushes them, and none is lost.
func TestCQOverflowNoDrop(t *testing.T) {
	r := newRing(t, uring.Options{Entries: 2, CQEntries: 4, Setup: uring.SetupCoopTaskrun})
	for i := 0; i < 16; i++ {
		s, err := r.AcquireSQE()
		require.NoError(t, err)
		s.PrepNop()
		s.UserData = uint64(i)
	}
	_, err := r.Submit()
	require.NoError(t, err)
	require.Equal(t, uint32(4), r.CQReady())
	require.True(t, uring.CQOverflowFlagged(r))
	require.True(t, r.NeedsEnter())
	seen := map[uint64]bool{}
	out := make([]uring.CQE, 3)
	for i := 0; i < 100 && len(seen) < 16; i++ {
		for _, c := range out[:r.Reap(out)] {
			require.False(t, seen[c.UserData])
			seen[c.UserData] = true
		}
		_, err := r.Submit() // enters with GETEVENTS while the overflow flag is set
		require.NoError(t, err)
	}
	require.Len(t, seen, 16)
	require.False(t, uring.CQOverflowFlagged(r))
	require.Zero(t, r.Overflowed())
}
