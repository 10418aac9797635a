package uring_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/uring"
)

// TestNoPollingThreads checks the hardening the package doc states: whatever
// setup mode is asked for (or falls back to), the ring is made without
// IORING_SETUP_IOPOLL (1<<0), IORING_SETUP_SQPOLL (1<<1),
// IORING_SETUP_SQ_AFF (1<<2) or IORING_SETUP_R_DISABLED (1<<6).
func TestNoPollingThreads(t *testing.T) {
	const forbidden = 1<<0 | 1<<1 | 1<<2 | 1<<6
	for _, m := range []uring.SetupMode{uring.SetupAuto, uring.SetupDeferTaskrun, uring.SetupCoopTaskrun, uring.SetupPlain} {
		t.Run(m.String(), func(t *testing.T) {
			lockThread(t)
			r, err := uring.New(uring.Options{Entries: 4, Setup: m})
			if errors.Is(err, unix.EINVAL) && m != uring.SetupPlain && m != uring.SetupAuto {
				t.Skipf("kernel rejects %v: %v", m, err)
			}
			require.NoError(t, err)
			defer r.Close()
			require.Zero(t, r.Features().SetupFlags&forbidden, "setup flags %#x", r.Features().SetupFlags)
		})
	}
}
