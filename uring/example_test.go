package uring_test

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/gyre-io/gyre/uring"
)

// A no-op round trip: get an entry, prepare it, submit and wait, reap.
func Example() {
	runtime.LockOSThread() // the ring is used from this thread only
	defer runtime.UnlockOSThread()

	r, err := uring.New(uring.Options{Entries: 8})
	if errors.Is(err, uring.ErrUnavailable) {
		fmt.Println("io_uring unavailable; fall back to epoll")
		return
	}
	if err != nil {
		panic(err)
	}
	defer r.Close()

	sqe := r.GetSQE()
	sqe.PrepNop()
	sqe.UserData = 7
	if _, err := r.SubmitAndWait(1, time.Second); err != nil {
		panic(err)
	}
	var cqes [8]uring.CQE
	n := r.Reap(cqes[:])
	fmt.Println(n, cqes[0].UserData, cqes[0].Res)
	// Output: 1 7 0
}
