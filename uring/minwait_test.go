package uring_test

import (
	"errors"
	"runtime"
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
