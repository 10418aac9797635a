package uring_test

import (
	"errors"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/backend/backendtest"
	uringbe "github.com/gyre-io/gyre/reactor/backend/uring"
	ring "github.com/gyre-io/gyre/uring"
)

// newFunc builds backends with opts on the calling goroutine, locked to its OS
// thread for the rest of the (sub)test as SINGLE_ISSUER requires.
func newFunc(opts uringbe.Options) backendtest.NewFunc {
	return func(tb testing.TB, cfg backend.Config) backend.Backend {
		tb.Helper()
		runtime.LockOSThread()
		tb.Cleanup(runtime.UnlockOSThread)
		b, err := uringbe.NewWithOptions(cfg, opts)
		if errors.Is(err, ring.ErrUnavailable) {
			tb.Skipf("io_uring unavailable: %v", err)
		}
		require.NoError(tb, err)
		return b
	}
}

var variants = []struct {
	name string
	opts uringbe.Options
}{
	{"native", uringbe.Options{}},
	// Kernel without incrementally consumed buffer rings (before 6.12):
	// stream recvs share the classic ring of BufferSize buffers.
	{"no_bufinc", uringbe.Options{NoBufInc: true}},
	// Kernel without multishot ops: accept, recv and poll re-armed internally.
	{"no_multishot", uringbe.Options{NoMultishot: true}},
	// Kernel without buffer rings, multishot or send_zc: backend-owned pool.
	{"no_bufring", uringbe.Options{NoMultishot: true, NoBufRing: true, NoSendZC: true}},
	// Every op parked on the pending list first (as when the kernel refuses
	// more submissions), emulation on.
	{"parked", uringbe.Options{ParkAll: true, NoMultishot: true}},
	// Older task-run mode.
	{"coop_taskrun", uringbe.Options{Setup: ring.SetupCoopTaskrun}},
}

func TestConformance(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) { backendtest.Run(t, newFunc(v.opts)) })
	}
}

func BenchmarkBackend(b *testing.B) {
	for _, v := range variants[:3] {
		b.Run(v.name, func(b *testing.B) { backendtest.Bench(b, newFunc(v.opts)) })
	}
}
