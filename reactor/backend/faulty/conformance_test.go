package faulty_test

import (
	"path"
	"runtime"
	"testing"

	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/backend/backendtest"
	"github.com/gyre-io/gyre/reactor/backend/epoll"
	"github.com/gyre-io/gyre/reactor/backend/faulty"
	uringbe "github.com/gyre-io/gyre/reactor/backend/uring"
	"github.com/gyre-io/gyre/uring"
)

func newInner(tb testing.TB, name string, cfg backend.Config) backend.Backend {
	tb.Helper()
	var (
		b   backend.Backend
		err error
	)
	if name == "uring" {
		// SINGLE_ISSUER: the ring stays on this thread for the (sub)test.
		runtime.LockOSThread()
		tb.Cleanup(runtime.UnlockOSThread)
		b, err = uringbe.New(cfg)
		if err != nil && errorsIs(err, uring.ErrUnavailable) {
			tb.Skipf("io_uring unavailable: %v", err)
		}
	} else {
		b, err = epoll.New(cfg)
	}
	if err != nil {
		tb.Fatalf("%s.New: %v", name, err)
	}
	return b
}

// TestConformanceDelayReorder runs the backend conformance suite through
// the wrapper with only the contract-preserving faults on (held and
// reordered completions): the wrapper must keep the whole contract.
func TestConformanceDelayReorder(t *testing.T) {
	for _, name := range backends() {
		t.Run(name, func(t *testing.T) {
			backendtest.Run(t, func(tb testing.TB, cfg backend.Config) backend.Backend {
				if reason, ok := timingScenarios[path.Base(tb.Name())]; ok {
					tb.Skip(reason)
				}
				return faulty.New(newInner(tb, name, cfg), faulty.Config{
					Seed: 1, FaultRate: -1, ShortRate: -1, DelayRate: 0.3, ReorderRate: 1,
				})
			})
		})
	}
}

// timingScenarios assume an order between completions of different ops, or
// a number of kernel waits, that the kernel usually gives but the contract
// does not promise; held completions break those assumptions on purpose.
var timingScenarios = map[string]string{
	"large_send_short_writes": "assumes the last send completes before the receiver has read everything",
	"multishot_recv_interleaves": "a held first completion of one stream arrives after later ones of another: " +
		"fairness is the backend's, the wrapper breaks arrival order on purpose",
}
