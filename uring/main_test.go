package uring_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaks a goroutine or a file descriptor
// (rings, sockets, pipes).
func TestMain(m *testing.M) {
	// Start the runtime's poller first (os/exec uses it): its epoll and
	// eventfd descriptors live for the whole process.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	before := openFds()
	code := m.Run()
	if code == 0 {
		if after := openFds(); after > before {
			fmt.Fprintf(os.Stderr, "uring tests leaked %d file descriptors\n", after-before)
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "uring tests leaked goroutines: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func openFds() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}
