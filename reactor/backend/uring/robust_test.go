package uring_test

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
	uringbe "github.com/gyre-io/gyre/reactor/backend/uring"
)

// A completion the kernel dropped (CQ overflow) is counted in Stats and
// logged, not ignored. The kernel cannot be made to drop one on demand
// (IORING_FEAT_NODROP), so the counter is bumped through a hook.
func TestCQOverflowCountedAndLogged(t *testing.T) {
	var logs bytes.Buffer
	cfg := backend.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	b := open(t, cfg, uringbe.Options{})
	out := make([]backend.Completion, 8)
	require.NoError(t, b.Submit(&backend.Op{Kind: backend.KindNop, Token: backend.MakeToken(1, 1)}))
	_, err := b.Wait(out, time.Second)
	require.NoError(t, err)
	require.Zero(t, b.Stats().CQOverflow)
	require.Empty(t, logs.String())

	uringbe.InjectOverflow(b, 3)
	_, err = b.Wait(out, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(3), b.Stats().CQOverflow)
	require.Contains(t, logs.String(), "completion queue overflow")
	require.Contains(t, logs.String(), "dropped=3")
	require.Equal(t, uint64(3), b.Stats().CQOverflow, "counted once")
}

// A Close that cannot drain leaves the buffer ring mapped (the kernel may
// still write into it) instead of unmapping it, and says so in Stats and the
// log.
func TestCloseNeverUnmapsBuffersInFlight(t *testing.T) {
	var logs bytes.Buffer
	cfg := backend.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil)), BufferCount: 8, BufferSize: 4096}
	b := open(t, cfg, uringbe.Options{})
	addr := uringbe.BufRingAddr(b)
	if addr == 0 {
		t.Skip("no buffer ring on this kernel")
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = unix.Close(fds[0]); _ = unix.Close(fds[1]) })
	op := &backend.Op{Kind: backend.KindRecv, Fd: int32(fds[0]), BufferSelect: true, Multishot: true, Token: backend.MakeToken(1, 1)}
	require.NoError(t, b.Submit(op))
	_, err = b.Wait(make([]backend.Completion, 4), 0) // the recv is in the kernel
	require.NoError(t, err)
	require.True(t, mapped(t, addr), "buffer ring not mapped while open")

	uringbe.SetCloseLimit(b, 0) // Close gives up at once: the recv is in flight
	require.NoError(t, b.Close())
	require.True(t, mapped(t, addr), "Close unmapped buffers the kernel may still write")
	require.GreaterOrEqual(t, b.Stats().CloseLeaks, uint64(1))
	require.Contains(t, logs.String(), "Close timed out with operations in flight")
}

// A drained Close unmaps everything and leaks nothing.
func TestCloseDrainedUnmaps(t *testing.T) {
	b := open(t, backend.Config{BufferCount: 8, BufferSize: 4096}, uringbe.Options{})
	addr := uringbe.BufRingAddr(b)
	if addr == 0 {
		t.Skip("no buffer ring on this kernel")
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = unix.Close(fds[0]); _ = unix.Close(fds[1]) })
	require.NoError(t, b.Submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(fds[0]), BufferSelect: true, Multishot: true, Token: backend.MakeToken(1, 1)}))
	_, err = b.Wait(make([]backend.Completion, 4), 0)
	require.NoError(t, err)
	require.NoError(t, b.Close())
	require.Zero(t, b.Stats().CloseLeaks)
	require.False(t, mapped(t, addr), "a drained Close left the buffer ring mapped")
}

// mapped reports whether addr lies in one of this process's mappings.
func mapped(t *testing.T, addr uintptr) bool {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Skipf("cannot read mappings: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var lo, hi uintptr
		rng, _, _ := strings.Cut(sc.Text(), " ")
		if _, err := fmt.Sscanf(rng, "%x-%x", &lo, &hi); err == nil && lo <= addr && addr < hi {
			return true
		}
	}
	return false
}

// A Wake whose eventfd write fails returns the error and leaves no wake-up
// marked pending, so the next Wake really wakes.
func TestFailedWakeDoesNotSwallowLaterWakes(t *testing.T) {
	b := open(t, backend.Config{}, uringbe.Options{})
	uringbe.SetWakeWrite(b, func(int, []byte) (int, error) { return 0, unix.EIO })
	require.ErrorIs(t, b.Wake(), unix.EIO)
	require.False(t, uringbe.WakePending(b), "a failed Wake left a wake-up marked pending")
	uringbe.SetWakeWrite(b, nil)
	require.NoError(t, b.Wake())
	require.True(t, uringbe.WakePending(b))
	w0 := b.Stats().Waits
	start := time.Now()
	_, err := b.Wait(make([]backend.Completion, 4), 10*time.Second)
	require.NoError(t, err)
	require.Less(t, time.Since(start), 9*time.Second, "Wait was not woken")
	require.LessOrEqual(t, b.Stats().Waits-w0, uint64(2))
	require.False(t, uringbe.WakePending(b))
}
