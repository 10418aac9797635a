package reactortest_test

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gyre-io/gyre/reactor/reactortest"
)

// In a test, the usual shape is:
//
//	func TestSomething(t *testing.T) {
//		reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
//			h := reactortest.Start(t, kind) // stopped and checked when the test ends
//			h.Do(func() { /* on the loop */ })
//			require.True(t, h.Eventually(5*time.Second, func() bool { /* on the loop */ return true }))
//		})
//	}
//
// WaitUntil polls a condition from the test goroutine, bounded in time, for
// what is goroutine-safe to read (loop.Stats, a channel, an atomic).
func Example() {
	var n atomic.Int32
	go func() {
		for i := 0; i < 3; i++ {
			n.Add(1)
		}
	}()
	fmt.Println(reactortest.WaitUntil(5*time.Second, func() bool { return n.Load() == 3 }))
	// Output: true
}
