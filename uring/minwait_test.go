package uring_test

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/uring"
)

// TestSubmitAndWaitMinReturnsAfterWindow: asking for 4 completions with a
// 2 ms window and no overall timeout must come back with the one that is
// ready, instead of waiting for the other three forever.
func TestSubmitAndWaitMinReturnsAfterWindow(t *testing.T) {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		r, err := uring.New(uring.Options{})
		if err != nil {
			done <- err
			return
		}
		defer r.Close()
		if r.Features().KernelFeatures&uring.FeatMinTimeout == 0 {
			done <- nil // the fallback (wait for one) is what the other tests cover
			return
		}
		sqe := r.GetSQE()
		sqe.PrepNop()
		sqe.UserData = 7
		_, err = r.SubmitAndWaitMin(4, 2*time.Millisecond, -1)
		if err == nil && r.CQReady() != 1 {
			err = errUnexpected
		}
		done <- err
	}()
	select {
	case err := <-done:
		if errors.Is(err, uring.ErrUnavailable) {
			t.Skip(err)
		}
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("SubmitAndWaitMin did not return after its window")
	}
}

type unexpected struct{}

func (unexpected) Error() string { return "unexpected completion count" }

var errUnexpected error = unexpected{}

// TestSubmitAndWaitMinNoLimitSleeps: with a min-wait window and no overall
// timeout, nothing in flight and nothing ready, SubmitAndWaitMin must sleep
// until something completes — here a NOP posted through MSG_RING from another
// ring 300 ms later — in a single kernel wait, not return empty-handed when
// the window ends (the kernel's -ETIME) nor spin through the window again and
// again. Counted: the ring's Waits and the thread's voluntary context
// switches.
func TestSubmitAndWaitMinNoLimitSleeps(t *testing.T) {
	for _, waitNr := range []uint32{1, 4} {
		t.Run(fmt.Sprint("waitNr=", waitNr), func(t *testing.T) {
			type result struct {
				waits, ctxsw uint64
				ready        uint32
				err          error
				skip         string
			}
			fdc := make(chan int, 1)
			done := make(chan result, 1)
			go func() {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				r, err := uring.New(uring.Options{})
				if err != nil {
					fdc <- -1
					done <- result{err: err}
					return
				}
				defer r.Close()
				if r.Features().KernelFeatures&uring.FeatMinTimeout == 0 {
					fdc <- -1
					done <- result{skip: "kernel lacks IORING_FEAT_MIN_TIMEOUT"}
					return
				}
				fdc <- r.Fd()
				w0, c0 := r.Stats().Waits, threadVoluntarySwitches(t)
				_, err = r.SubmitAndWaitMin(waitNr, 50*time.Microsecond, -1)
				done <- result{waits: r.Stats().Waits - w0, ctxsw: threadVoluntarySwitches(t) - c0, ready: r.CQReady(), err: err}
			}()
			target := <-fdc
			if target >= 0 {
				time.Sleep(300 * time.Millisecond)
				sender, err := uring.New(uring.Options{Setup: uring.SetupPlain})
				require.NoError(t, err)
				sqe := sender.GetSQE()
				sqe.PrepMsgRing(int32(target), 0, 99, 0)
				_, err = sender.SubmitAndWait(1, 5*time.Second)
				require.NoError(t, err)
				require.NoError(t, sender.Close())
			}
			var res result
			select {
			case res = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("SubmitAndWaitMin never returned")
			}
			if res.skip != "" {
				t.Skip(res.skip)
			}
			if errors.Is(res.err, uring.ErrUnavailable) {
				t.Skip(res.err)
			}
			require.NoError(t, res.err)
			require.Equal(t, uint32(1), res.ready, "returned without the completion it waited for")
			require.LessOrEqual(t, res.waits, uint64(2), "kernel waits during one idle SubmitAndWaitMin")
			require.LessOrEqual(t, res.ctxsw, uint64(20), "voluntary context switches during one idle SubmitAndWaitMin")
		})
	}
}

// threadVoluntarySwitches reads voluntary_ctxt_switches of the calling OS
// thread (the caller must be locked to it); 0 when it cannot be read (the
// bound checked on it then holds trivially; the Waits count still checks).
func threadVoluntarySwitches(*testing.T) uint64 {
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
