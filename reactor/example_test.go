package reactor_test

import (
	"context"
	"fmt"
	"time"

	"github.com/gyre-io/gyre/reactor"
)

func Example() {
	loop, err := reactor.New(reactor.Config{}) // io_uring when available, else epoll
	if err != nil {
		panic(err)
	}
	loop.AddTrigger(reactor.Shutdown, reactor.Before, func() { fmt.Println("shutting down") })
	// From any goroutine: run a function on the loop.
	_ = loop.Call(func() {
		loop.CallLater(10*time.Millisecond, func() {
			fmt.Println("ten milliseconds later")
			loop.Stop()
		})
	})
	_ = loop.Run(context.Background())
	// Output:
	// ten milliseconds later
	// shutting down
}
