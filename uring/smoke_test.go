package uring_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/gyre-io/gyre/uring"
	"github.com/stretchr/testify/require"
)

func TestUAPILayout(t *testing.T) {
	require.Equal(t, uring.UAPIWantSizes, uring.UAPISizes())
}

func TestSmokeNop(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r, err := uring.New(uring.Options{Entries: 8})
	require.NoError(t, err)
	defer r.Close()
	t.Log(r.Features())
	s := r.GetSQE()
	s.PrepNop()
	s.UserData = 42
	_, err = r.SubmitAndWait(1, time.Second)
	require.NoError(t, err)
	var c [4]uring.CQE
	require.Equal(t, 1, r.Reap(c[:]))
	require.Equal(t, uint64(42), c[0].UserData)
}
