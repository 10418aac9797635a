package backendtest_test

import (
	"testing"

	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/backend/backendtest"
	"github.com/gyre-io/gyre/reactor/backend/epoll"
)

// A backend package runs the conformance suite (and the shared benchmarks)
// from its own tests; here for the epoll backend.
func ExampleRun() {
	newEpoll := func(tb testing.TB, cfg backend.Config) backend.Backend {
		b, err := epoll.New(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	// In epoll_test.go:
	//	func TestConformance(t *testing.T)  { backendtest.Run(t, newEpoll) }
	//	func BenchmarkEpoll(b *testing.B)   { backendtest.Bench(b, newEpoll) }
	_ = func(t *testing.T) { backendtest.Run(t, newEpoll) }
	_ = func(b *testing.B) { backendtest.Bench(b, newEpoll) }
}
