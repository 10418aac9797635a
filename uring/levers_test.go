package uring_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/gyre-io/gyre/uring"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// nopRoundTrip submits one nop and reaps exactly its completion.
func nopRoundTrip(t *testing.T, r *uring.Ring, ud uint64) {
	t.Helper()
	s := r.GetSQE()
	require.NotNil(t, s)
	s.PrepNop()
	s.UserData = ud
	_, err := r.SubmitAndWait(1, time.Second)
	require.NoError(t, err)
	var c [2]uring.CQE
	require.Equal(t, 1, r.Reap(c[:]))
	require.Equal(t, ud, c[0].UserData)
	require.Equal(t, int32(0), c[0].Res)
}

// TestNoSQArray: the ring drops the SQ index array where the kernel allows
// it, keeps it on request, and falls back (same setup mode) on a kernel that
// rejects the flag; submissions work in every case, across SQ wrap-around.
func TestNoSQArray(t *testing.T) {
	var reject uring.Options
	uring.RejectSetupFlags(&reject, uring.SetupNoSQArray)
	for _, c := range []struct {
		name string
		o    uring.Options
		want bool
	}{
		{"default", uring.Options{}, true},
		{"keep", uring.Options{KeepSQArray: true}, false},
		{"old_kernel", reject, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.o.Entries = 4
			r := newRing(t, c.o)
			f := r.Features()
			want := c.want && kernelHasNoSQArray(t)
			require.Equal(t, want, f.NoSQArray)
			require.Equal(t, want, f.SetupFlags&uring.SetupNoSQArray != 0)
			require.Equal(t, uring.SetupDeferTaskrun.String(), f.Setup, "the fallback must not cost the task-run mode")
			for i := range 3 * f.SQEntries { // wraps the SQ ring several times
				nopRoundTrip(t, r, uint64(i)+1)
			}
		})
	}
}

// kernelHasNoSQArray reports whether the running kernel is 6.6 or later.
func kernelHasNoSQArray(t *testing.T) bool {
	var u unix.Utsname
	require.NoError(t, unix.Uname(&u))
	var maj, min int
	for i, s := 0, unix.ByteSliceToString(u.Release[:]); i < len(s); i++ {
		if s[i] == '.' {
			for _, ch := range s[i+1:] {
				if ch < '0' || ch > '9' {
					break
				}
				min = min*10 + int(ch-'0')
			}
			break
		}
		maj = maj*10 + int(s[i]-'0')
	}
	return maj > 6 || maj == 6 && min >= 6
}

// TestRegisteredRing: registration is opt-in, enters through the slot work,
// Close frees the slot, and a kernel that refuses (before 5.18) leaves a
// working ring on its descriptor with the reason in Features.
func TestRegisteredRing(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		r := newRing(t, uring.Options{Entries: 4})
		require.False(t, r.Features().RegisteredRing)
		require.Equal(t, -1, uring.RegisteredSlot(r))
		require.NotEmpty(t, r.Features().RegisteredRingNote)
		nopRoundTrip(t, r, 1)
	})
	t.Run("on", func(t *testing.T) {
		lockThread(t)
		r, err := uring.New(uring.Options{Entries: 4, RegisterRing: true})
		require.NoError(t, err)
		f := r.Features()
		require.True(t, f.RegisteredRing, f.RegisteredRingNote)
		require.Empty(t, f.RegisteredRingNote)
		slot := uring.RegisteredSlot(r)
		require.GreaterOrEqual(t, slot, 0)
		for i := range 10 {
			nopRoundTrip(t, r, uint64(i)+1)
		}
		require.NoError(t, r.Close())
		// The slot is free again: the next ring on this thread gets it
		// (lowest free), which the kernel accepts only if Close emptied it.
		r2, err := uring.New(uring.Options{Entries: 4, RegisterRing: true})
		require.NoError(t, err)
		require.Equal(t, slot, uring.RegisteredSlot(r2))
		nopRoundTrip(t, r2, 1)
		require.NoError(t, r2.Close())
	})
	t.Run("old_kernel", func(t *testing.T) {
		o := uring.Options{Entries: 4, RegisterRing: true}
		uring.InjectRegisterRingError(&o, unix.EINVAL)
		r := newRing(t, o)
		f := r.Features()
		require.False(t, f.RegisteredRing)
		require.Contains(t, f.RegisteredRingNote, "IORING_REGISTER_RING_FDS")
		nopRoundTrip(t, r, 1)
	})
	t.Run("slots_exhausted", func(t *testing.T) {
		lockThread(t)
		var rings []*uring.Ring
		defer func() {
			for _, r := range rings {
				require.NoError(t, r.Close())
			}
		}()
		for range 17 {
			r, err := uring.New(uring.Options{Entries: 2, RegisterRing: true, SkipDetect: true})
			require.NoError(t, err)
			rings = append(rings, r)
			if !r.Features().RegisteredRing {
				require.Contains(t, r.Features().RegisteredRingNote, "slots in use")
				nopRoundTrip(t, r, 7) // works on its descriptor
				return
			}
		}
		t.Fatal("17 rings all registered: slots are not bounded")
	})
}

// TestRegisteredRingWrongThread: entering a registered ring from a thread
// that did not register it fails with ErrWrongThread, even when that thread
// has a registered ring of its own (slots are unique in the process, so the
// enter cannot reach the other ring), and leaves both rings usable.
// Coop task-run, so that only the registration ties the ring to a thread.
func TestRegisteredRingWrongThread(t *testing.T) {
	lockThread(t)
	o := uring.Options{Entries: 4, Setup: uring.SetupCoopTaskrun, RegisterRing: true}
	r1, err := uring.New(o)
	require.NoError(t, err)
	defer func() { require.NoError(t, r1.Close()) }()
	require.True(t, r1.Features().RegisteredRing)
	s := r1.GetSQE()
	s.PrepNop()
	s.UserData = 11

	type result struct {
		err     error
		r2Ready uint32
	}
	done := make(chan result)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		r2, err := uring.New(o)
		if err != nil {
			done <- result{err: err}
			return
		}
		_, err = r1.SubmitAndWait(1, 100*time.Millisecond)
		ready := r2.CQReady()
		_ = r2.Close()
		done <- result{err: err, r2Ready: ready}
	}()
	res := <-done
	require.ErrorIs(t, res.err, uring.ErrWrongThread)
	require.Equal(t, uint32(0), res.r2Ready)
	// The nop is still queued and completes once, from the owner thread.
	_, err = r1.SubmitAndWait(1, time.Second)
	require.NoError(t, err)
	var c [2]uring.CQE
	require.Equal(t, 1, r1.Reap(c[:]))
	require.Equal(t, uint64(11), c[0].UserData)
}

// TestRegisteredRingCloseWrongThread: Close from another thread cannot drop
// the registration; it says so (ErrWrongThread), still closes the
// descriptor, and never hands the slot to another ring.
func TestRegisteredRingCloseWrongThread(t *testing.T) {
	type made struct {
		r   *uring.Ring
		err error
	}
	ch := make(chan made)
	release := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine, taking its registration
		r, err := uring.New(uring.Options{Entries: 2, RegisterRing: true, SkipDetect: true})
		ch <- made{r, err}
		<-release
	}()
	m := <-ch
	defer close(release)
	require.NoError(t, m.err)
	require.True(t, m.r.Features().RegisteredRing)
	slot := uring.RegisteredSlot(m.r)

	lockThread(t)
	err := m.r.Close()
	require.ErrorIs(t, err, uring.ErrWrongThread)
	require.NoError(t, m.r.Close()) // idempotent
	r2 := newRing(t, uring.Options{Entries: 2, RegisterRing: true, SkipDetect: true})
	require.NotEqual(t, slot, uring.RegisteredSlot(r2))
}

// TestCQESkipSuccess: with IORING_FEAT_CQE_SKIP a request flagged
// SQECQESkipSuccess posts no completion when it succeeds and still posts
// one when it fails.
func TestCQESkipSuccess(t *testing.T) {
	r := newRing(t, uring.Options{Entries: 4})
	if !r.Features().CQESkip {
		t.Skip("kernel lacks IORING_FEAT_CQE_SKIP (5.17)")
	}
	s := r.GetSQE()
	s.PrepNop()
	s.UserData = 1
	s.Flags |= uring.SQECQESkipSuccess
	s = r.GetSQE()
	s.PrepCancel(12345, 0) // nothing to cancel: fails with -ENOENT
	s.UserData = 2
	s.Flags |= uring.SQECQESkipSuccess
	s = r.GetSQE()
	s.PrepNop()
	s.UserData = 3
	got := collect(t, &ourRing{r}, 2, waitLimit)
	require.ElementsMatch(t, []uint64{2, 3}, []uint64{got[0].UserData, got[1].UserData})
	_, err := r.SubmitAndWait(1, 20*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, uint32(0), r.CQReady(), "the skipped nop posted a completion")
}
