package uring_test

import (
	"errors"
	"path"
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
	skip map[string]string // scenario → why this variant cannot pass it
}{
	{name: "native", opts: uringbe.Options{}},
	// Kernel without incrementally consumed buffer rings (before 6.12):
	// stream recvs share the classic ring of BufferSize buffers.
	{name: "no_bufinc", opts: uringbe.Options{NoBufInc: true}},
	// Kernel with inc rings but without the per-arming limit of multishot
	// recv (6.12–6.16): stream recvs use BufferSize buffers from the inc ring.
	{name: "small_inc", opts: uringbe.Options{NoLargeInc: true}},
	// Kernel without multishot ops: accept, recv and poll re-armed internally.
	{name: "no_multishot", opts: uringbe.Options{NoMultishot: true}},
	// Kernel without buffer rings, multishot or send_zc: backend-owned pool.
	{name: "no_bufring", opts: uringbe.Options{NoMultishot: true, NoBufRing: true, NoSendZC: true}},
	// Every op parked on the pending list first (as when the kernel refuses
	// more submissions), emulation on.
	{name: "parked", opts: uringbe.Options{ParkAll: true, NoMultishot: true}},
	// Older task-run mode.
	{name: "coop_taskrun", opts: uringbe.Options{Setup: ring.SetupCoopTaskrun}, skip: map[string]string{
		"multishot_recv_tcp_urgent_mark_signalled_parked": "without DEFER_TASKRUN the recv runs as task work at the exit of " +
			"the test thread's own writes, with the storm's signal pending, and stops at the urgent mark after a wake-up " +
			"rather than after a 'more queued' completion: the case mark_linux.go names as not recovered",
	}},
	// Kernel before 5.18 / 6.6: enters through the ring descriptor, with
	// the SQ index array (the native variant has both levers on).
	{name: "no_ring_levers", opts: uringbe.Options{NoRegRing: true, KeepSQArray: true}},
}

func TestConformance(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			nf := newFunc(v.opts)
			backendtest.Run(t, func(tb testing.TB, cfg backend.Config) backend.Backend {
				if reason, ok := v.skip[path.Base(tb.Name())]; ok {
					tb.Skip(reason)
				}
				return nf(tb, cfg)
			})
		})
	}
}

func BenchmarkBackend(b *testing.B) {
	for _, v := range variants[:3] {
		b.Run(v.name, func(b *testing.B) { backendtest.Bench(b, newFunc(v.opts)) })
	}
}

// TestRingLevers: the backend enters through a registered ring descriptor
// and runs without the SQ index array where the kernel allows, and each
// lever can be forced off (Options, or GYRE_URING_DISABLE for New).
func TestRingLevers(t *testing.T) {
	open := func(t *testing.T, o uringbe.Options, viaNew bool) ring.Features {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var (
			b   *uringbe.Backend
			err error
		)
		if viaNew {
			b, err = uringbe.New(backend.Config{})
		} else {
			b, err = uringbe.NewWithOptions(backend.Config{}, o)
		}
		if errors.Is(err, ring.ErrUnavailable) {
			t.Skipf("io_uring unavailable: %v", err)
		}
		require.NoError(t, err)
		f := b.RingFeatures()
		require.NoError(t, b.Close())
		return f
	}
	// What the kernel allows, from the binding itself.
	runtime.LockOSThread()
	r, err := ring.New(ring.Options{Entries: 2, RegisterRing: true, SkipDetect: true})
	if errors.Is(err, ring.ErrUnavailable) {
		runtime.UnlockOSThread()
		t.Skipf("io_uring unavailable: %v", err)
	}
	require.NoError(t, err)
	kf := r.Features()
	require.NoError(t, r.Close())
	runtime.UnlockOSThread()
	t.Logf("kernel: registered ring %v, no SQ array %v", kf.RegisteredRing, kf.NoSQArray)

	f := open(t, uringbe.Options{}, false)
	require.Equal(t, kf.RegisteredRing, f.RegisteredRing, f.RegisteredRingNote)
	require.Equal(t, kf.NoSQArray, f.NoSQArray)
	f = open(t, uringbe.Options{NoRegRing: true}, false)
	require.False(t, f.RegisteredRing)
	require.Equal(t, kf.NoSQArray, f.NoSQArray)
	f = open(t, uringbe.Options{KeepSQArray: true}, false)
	require.Equal(t, kf.RegisteredRing, f.RegisteredRing)
	require.False(t, f.NoSQArray)

	t.Setenv("GYRE_URING_DISABLE", "regring, nosqarray")
	require.Equal(t, uringbe.Options{NoRegRing: true, KeepSQArray: true}, uringbe.DisableFromEnv())
	f = open(t, uringbe.Options{}, true)
	require.False(t, f.RegisteredRing)
	require.False(t, f.NoSQArray)
	t.Setenv("GYRE_URING_DISABLE", "nosqarray")
	f = open(t, uringbe.Options{}, true)
	require.Equal(t, kf.RegisteredRing, f.RegisteredRing)
	require.False(t, f.NoSQArray)
}
