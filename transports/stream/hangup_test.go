package stream_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

// TestConnWatchHangup: the write end of a pipe as a ReadNone Conn with
// WatchHangup learns that the read end was closed while it has nothing to
// write (a clean ConnectionLost, ErrConnectionDone: nothing was lost, no
// write needed), and while it has bytes queued that the pipe cannot take
// (ErrConnectionLost with EPIPE); pausing and resuming re-arms the watch;
// without WatchHangup nothing is noticed.
func TestConnWatchHangup(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		var p, q, f [2]int
		require.NoError(t, unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC))
		require.NoError(t, unix.Pipe2(q[:], unix.O_NONBLOCK|unix.O_CLOEXEC))
		require.NoError(t, unix.Pipe2(f[:], unix.O_NONBLOCK|unix.O_CLOEXEC))
		watched, unwatched, full := &connRec{}, &connRec{}, &connRec{}
		var w2 *stream.Conn
		h.Do(func() {
			w3 := stream.NewConn(h.Loop, f[1], stream.ConnConfig{Read: stream.ReadNone, Write: stream.WritePlain, WriteEnd: stream.WriteEndClose, WatchHangup: true})
			w3.Start(plain{full}, nil)
			require.NoError(t, w3.Write(make([]byte, 4<<20))) // more than a pipe holds
			w := stream.NewConn(h.Loop, p[1], stream.ConnConfig{Read: stream.ReadNone, Write: stream.WritePlain, WriteEnd: stream.WriteEndClose, WatchHangup: true})
			w.Start(plain{watched}, nil)
			w.PauseReading()
			w.ResumeReading()
			w2 = stream.NewConn(h.Loop, q[1], stream.ConnConfig{Read: stream.ReadNone, Write: stream.WritePlain, WriteEnd: stream.WriteEndClose})
			w2.Start(plain{unwatched}, nil)
		})
		require.NoError(t, unix.Close(p[0]))
		require.NoError(t, unix.Close(q[0]))
		require.NoError(t, unix.Close(f[0]))
		require.True(t, h.Eventually(5*time.Second, func() bool { return watched.lost == 1 && full.lost == 1 }))
		h.Do(func() {
			require.ErrorIs(t, watched.reason, transports.ErrConnectionDone)
			require.NotErrorIs(t, watched.reason, transports.ErrConnectionLost)
			require.ErrorIs(t, full.reason, transports.ErrConnectionLost)
			require.ErrorIs(t, full.reason, syscall.EPIPE)
			require.Zero(t, unwatched.lost)
			require.NoError(t, w2.Abort())
		})
		require.True(t, h.Eventually(5*time.Second, func() bool { return unwatched.lost == 1 }))
		require.Empty(t, h.Errors())
	})
}
