package waker

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
)

func counter(t *testing.T, w *Waker) uint64 {
	var b [8]byte
	n, err := unix.Read(w.Fd(), b[:])
	if err == unix.EAGAIN {
		return 0
	}
	require.NoError(t, err)
	require.Equal(t, 8, n)
	return uint64(b[0])
}

// A failed write leaves no wake-up pending: the next Wake writes.
func TestFailedWakeRetries(t *testing.T) {
	w, err := New()
	require.NoError(t, err)
	defer w.Close()
	w.SetWrite(func(int, []byte) (int, error) { return 0, unix.EIO })
	require.ErrorIs(t, w.Wake(), unix.EIO)
	require.False(t, w.Pending())
	w.SetWrite(nil)
	require.NoError(t, w.Wake())
	require.True(t, w.Pending())
	require.NoError(t, w.Wake()) // coalesced: no second write
	require.Equal(t, uint64(1), counter(t, w))
	w.Consumed()
	require.NoError(t, w.Wake())
	require.Equal(t, uint64(1), counter(t, w))
}

// EAGAIN (counter saturated) is a pending wake-up, not an error.
func TestSaturatedCounterIsPending(t *testing.T) {
	w, err := New()
	require.NoError(t, err)
	defer w.Close()
	w.SetWrite(func(int, []byte) (int, error) { return 0, unix.EAGAIN })
	require.NoError(t, w.Wake())
	require.True(t, w.Pending())
}

// Wake racing Close returns nil or ErrClosed, never writes a closed fd.
func TestWakeRacesClose(t *testing.T) {
	for i := 0; i < 50; i++ {
		w, err := New()
		require.NoError(t, err)
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < 20; k++ {
					if err := w.Wake(); err != nil {
						require.ErrorIs(t, err, backend.ErrClosed)
					}
					w.Consumed()
				}
			}()
		}
		w.Close()
		wg.Wait()
		require.ErrorIs(t, w.Wake(), backend.ErrClosed)
		require.Equal(t, -1, w.Fd())
	}
}
