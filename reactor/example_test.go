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

// A loop's counters, readable from any goroutine; publish them with
// PublishExpvar (served at /debug/vars by expvar's handler) or ExpvarFunc.
func ExampleLoop_Stats() {
	loop, err := reactor.New(reactor.Config{})
	if err != nil {
		panic(err)
	}
	if err := reactor.PublishExpvar("gyre-example", loop); err != nil {
		panic(err) // the name was taken
	}
	_ = loop.Call(func() { loop.CallLater(time.Millisecond, loop.Stop) })
	_ = loop.Run(context.Background())
	s := loop.Stats() // final once the loop is done
	fmt.Println(s.Turns > 0, s.ConnsOpen, s.OpsInFlight, s.Panics)
	// Output: true 0 0 0
}
