package uring_test

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/gyre-io/gyre/reactor/backend"
	uringbe "github.com/gyre-io/gyre/reactor/backend/uring"
	ring "github.com/gyre-io/gyre/uring"
)

// A backend is driven from one goroutine locked to its OS thread: submit ops,
// then Wait for their completions.
func Example() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b, err := uringbe.New(backend.Config{})
	if errors.Is(err, ring.ErrUnavailable) {
		fmt.Println("no io_uring here; use the epoll backend")
		return
	}
	if err != nil {
		panic(err)
	}
	defer b.Close()

	op := &backend.Op{Kind: backend.KindTimeout, Token: backend.MakeToken(1, 1), Timeout: time.Millisecond}
	if err := b.Submit(op); err != nil {
		panic(err)
	}
	out := make([]backend.Completion, 8)
	for {
		n, err := b.Wait(out, time.Second)
		if err != nil {
			panic(err)
		}
		if n > 0 {
			fmt.Println(out[0].Token.Slot(), out[0].Err())
			return
		}
	}
}
