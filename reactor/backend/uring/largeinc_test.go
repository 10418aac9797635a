package uring_test

import (
	"bytes"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
	uringbe "github.com/gyre-io/gyre/reactor/backend/uring"
)

// largeIncKernel skips unless the kernel has inc rings, multishot recv and
// its per-arming total limit.
func largeIncKernel(t *testing.T, b *uringbe.Backend) {
	f := b.RingFeatures()
	if !f.BufRingInc || !f.MultishotRecv || !f.MultishotRecvTotal {
		t.Skip("kernel lacks inc rings or multishot recv's total limit (6.17+)")
	}
}

// A stream recv on the default pool: where the kernel bounds a multishot
// recv's bytes per arming, the same 4 MiB become 64 buffers of 64 KiB and a
// 64 KiB message arrives in one or two completions instead of sixteen; with
// the lever off (GYRE_URING_DISABLE=largeinc) the buffers keep Config's
// size.
func TestLargeIncBuffers(t *testing.T) {
	for _, tc := range []struct {
		name           string
		o              uringbe.Options
		buffers, size  int
		maxCompletions int
		total, perRecv uint32
	}{
		{"large", uringbe.Options{}, 64, 64 << 10, 2, 32 * 4096, 0},
		{"off", uringbe.Options{NoLargeInc: true}, 0, 0, 64, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t, backend.Config{}, tc.o)
			largeIncKernel(t, b)
			f := b.Features()
			require.Equal(t, tc.buffers, f.RecvBuffers)
			require.Equal(t, tc.size, f.RecvBufferSize)
			total, perRecv := uringbe.RecvLimit(b)
			require.Equal(t, tc.total, total)
			require.Equal(t, tc.perRecv, perRecv)

			sv, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			require.NoError(t, err)
			t.Cleanup(func() { _ = unix.Close(sv[0]); _ = unix.Close(sv[1]) })
			require.NoError(t, unix.SetsockoptInt(sv[1], unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20))
			msg := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
			n, err := unix.Write(sv[1], msg)
			require.NoError(t, err)
			require.Equal(t, len(msg), n)
			op := &backend.Op{Kind: backend.KindRecv, Fd: int32(sv[0]), BufferSelect: true, Multishot: true, Token: backend.MakeToken(1, 1)}
			require.NoError(t, b.Submit(op))
			var got []byte
			completions := 0
			out := make([]backend.Completion, 64)
			for deadline := time.Now().Add(5 * time.Second); len(got) < len(msg); {
				require.True(t, time.Now().Before(deadline), "received %d of %d", len(got), len(msg))
				k, err := b.Wait(out, 100*time.Millisecond)
				require.NoError(t, err)
				for _, c := range out[:k] {
					require.True(t, c.More(), "res %d", c.Res)
					require.Positive(t, c.Res)
					got = append(got, c.Buf...)
					b.ReleaseBuffer(c.BufID)
					completions++
				}
			}
			require.Equal(t, msg, got)
			t.Logf("%s: 64 KiB in %d completions", tc.name, completions)
			require.LessOrEqual(t, completions, tc.maxCompletions)
			if tc.name == "off" {
				require.Greater(t, completions, 2, "the lever off must look different")
			}
		})
	}
}

// A limited stream recv (large buffers, small total) that ends at its limit
// is re-armed inside the backend: the consumer sees one multishot whose
// completions all carry FlagMore while data flows; a cancel then ends it
// with exactly one final completion, also when it races an ending at the
// limit, and nothing is left in flight.
func TestLargeIncRearmAndCancel(t *testing.T) {
	// 1024 buffers of 1 KiB regroup into 16 of 64 KiB; the total per arming
	// is 32 × 1 KiB, and each receive is capped at it.
	b := open(t, backend.Config{BufferCount: 1024, BufferSize: 1024}, uringbe.Options{})
	largeIncKernel(t, b)
	total, perRecv := uringbe.RecvLimit(b)
	require.Equal(t, uint32(32<<10), total)
	require.Equal(t, uint32(32<<10), perRecv)

	for round := range 20 {
		sv, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		require.NoError(t, unix.SetsockoptInt(sv[1], unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20))
		chunk := bytes.Repeat([]byte{byte(round)}, 256<<10)
		sent, err := unix.Write(sv[1], chunk)
		require.NoError(t, err)
		tok := backend.MakeToken(uint32(round+1), 1)
		op := &backend.Op{Kind: backend.KindRecv, Fd: int32(sv[0]), BufferSelect: true, Multishot: true, Token: tok}
		require.NoError(t, b.Submit(op))
		got, final := 0, false
		cancelAt := (round % 8) * (16 << 10) // cancel after various amounts, racing the limit's endings
		cancelled := false
		out := make([]backend.Completion, 64)
		for deadline := time.Now().Add(5 * time.Second); !final; {
			require.True(t, time.Now().Before(deadline), "round %d: no final completion (got %d of %d)", round, got, sent)
			if !cancelled && got >= cancelAt {
				require.NoError(t, b.Submit(&backend.Op{Kind: backend.KindCancel, Target: tok, Token: backend.MakeToken(1000, uint32(round+1))}))
				cancelled = true
			}
			k, err := b.Wait(out, 100*time.Millisecond)
			require.NoError(t, err)
			for _, c := range out[:k] {
				if c.Token != tok {
					continue // the cancel's own completion
				}
				require.False(t, final, "round %d: a completion after the final one", round)
				if c.Res > 0 {
					got += int(c.Res)
					b.ReleaseBuffer(c.BufID)
				}
				if !c.More() {
					final = true
					require.True(t, cancelled, "round %d: the multishot ended on its own (res %d) after %d bytes", round, c.Res, got)
					if c.Res < 0 {
						require.ErrorIs(t, c.Err(), syscall.ECANCELED)
					}
				}
			}
		}
		// Drain the cancel's completion; nothing of the recv may follow.
		for range 3 {
			k, err := b.Wait(out, 20*time.Millisecond)
			require.NoError(t, err)
			for _, c := range out[:k] {
				require.NotEqual(t, tok, c.Token, "round %d: a completion after the final one", round)
			}
		}
		require.Zero(t, b.Inflight(), "round %d", round)
		require.NoError(t, unix.Close(sv[0]))
		require.NoError(t, unix.Close(sv[1]))
	}
}
