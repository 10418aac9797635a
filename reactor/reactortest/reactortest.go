// Package reactortest runs tests on every backend and drives a running loop
// from test goroutines.
package reactortest

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/uring"
)

// Backends runs f once per backend as subtests "uring" and "epoll". When
// GYRE_BACKEND is set, only that backend runs; an unknown value fails the
// test (matching reactor.ErrUnknownBackend). The uring subtest skips (with
// the reason) where io_uring is unavailable.
func Backends(t *testing.T, f func(t *testing.T, kind reactor.BackendKind)) {
	t.Helper()
	only, err := reactor.ParseBackend(os.Getenv(reactor.EnvBackend))
	if err != nil {
		t.Fatalf("%s: %v", reactor.EnvBackend, err)
	}
	for _, k := range []reactor.BackendKind{reactor.Uring, reactor.Epoll} {
		if only != reactor.Auto && only != k {
			continue
		}
		t.Run(k.String(), func(t *testing.T) { f(t, k) })
	}
}

// Loop is a loop running on its own goroutine for a test.
type Loop struct {
	*reactor.Loop
	t      testing.TB
	runErr chan error
	mu     sync.Mutex
	errs   []error
}

// Start creates and runs a loop of the given kind; it is stopped (and the stop
// checked) when the test ends. Errors the loop reports (recovered panics) are
// collected in Errors.
func Start(t testing.TB, kind reactor.BackendKind, cfg ...reactor.Config) *Loop {
	t.Helper()
	var c reactor.Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	c.Backend = kind
	c.IgnoreEnv = true
	h := &Loop{t: t, runErr: make(chan error, 1)}
	userHook := c.OnError
	c.OnError = func(err error) {
		h.mu.Lock()
		h.errs = append(h.errs, err)
		h.mu.Unlock()
		if userHook != nil {
			userHook(err)
		}
	}
	l, err := reactor.New(c)
	if err != nil {
		if kind == reactor.Uring && errors.Is(err, uring.ErrUnavailable) {
			t.Skipf("io_uring unavailable: %v", err)
		}
		t.Fatalf("reactor.New: %v", err)
	}
	h.Loop = l
	go func() { h.runErr <- l.Run(context.Background()) }()
	t.Cleanup(func() { h.StopWait() })
	return h
}

// Errors returns the errors the loop reported so far.
func (h *Loop) Errors() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.errs...)
}

// Do runs f on the loop and waits for it (up to 10 s).
func (h *Loop) Do(f func()) {
	h.t.Helper()
	done := make(chan struct{})
	if err := h.Call(func() { defer close(done); f() }); err != nil {
		h.t.Fatalf("loop.Call: %v", err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		h.t.Fatalf("loop call did not run within 10s")
	}
}

// StopWait stops the loop and waits until it has fully stopped (up to 20 s).
func (h *Loop) StopWait() {
	h.Stop()
	select {
	case <-h.Done():
	case <-time.After(20 * time.Second):
		h.t.Errorf("loop did not stop within 20s")
	}
}

// Eventually polls cond on the loop until it holds or the timeout passes.
func (h *Loop) Eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		h.Do(func() { ok = cond() })
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// FDCount is the number of open descriptors of this process.
func FDCount() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// WaitUntil polls cond (on the calling goroutine) every millisecond until it
// holds or timeout passes, and reports whether it held.
func WaitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}
