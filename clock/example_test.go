package clock_test

import (
	"fmt"
	"time"

	"github.com/gyre-io/gyre/clock"
)

// A fake clock runs scheduled calls only when the test advances it, in
// deadline order, with Now reading each call's deadline.
func ExampleFake() {
	clk := clock.NewFake()
	start := clk.Now()
	say := func(msg string) func() {
		return func() { fmt.Println(clk.Now().Sub(start), msg) }
	}
	clk.CallLater(2*time.Second, say("second"))
	clk.CallLater(time.Second, say("first"))
	timeout := clk.CallLater(time.Minute, say("timed out"))
	clk.CallLater(0, say("next turn"))

	clk.Advance(0)
	clk.Advance(5 * time.Second)
	fmt.Println("pending:", len(clk.Pending()))
	timeout.Cancel()
	clk.Advance(time.Hour)
	fmt.Println("pending:", len(clk.Pending()))
	// Output:
	// 0s next turn
	// 1s first
	// 2s second
	// pending: 1
	// pending: 0
}
