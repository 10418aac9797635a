package stream_test

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

// TestKeepReceivedReadPlainRefuses: a ReadPlain Conn reads into one buffer
// of its own that the next read reuses, so KeepReceived answers false (the
// protocol copies) and holds nothing; a ReadRecv Conn on the same kind of
// descriptor keeps. Both backends.
func TestKeepReceivedReadPlainRefuses(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		for _, mode := range []stream.ReadMode{stream.ReadPlain, stream.ReadRecv} {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			require.NoError(t, err)
			peer := os.NewFile(uintptr(fds[1]), "peer")
			kept, refused := 0, 0
			var rels []func(error)
			r := &connRec{onData: func(r *connRec, _ []byte) {
				if rel, ok := r.t.(transports.BufferKeeper).KeepReceived(); ok {
					kept++
					rels = append(rels, rel)
				} else {
					refused++
				}
			}}
			var c *stream.Conn
			h.Do(func() {
				c = stream.NewConn(h.Loop, fds[0], stream.ConnConfig{Read: mode})
				c.Start(r, nil)
			})
			_, err = peer.Write([]byte("some bytes"))
			require.NoError(t, err)
			require.True(t, h.Eventually(5*time.Second, func() bool { return len(r.data) == 10 }))
			h.Do(func() {
				if mode == stream.ReadPlain {
					require.Zero(t, kept)
					require.Positive(t, refused)
					require.Zero(t, c.Kept())
				} else {
					require.Positive(t, kept)
					require.Equal(t, kept, c.Kept())
					require.Equal(t, kept, h.KeptBuffers())
				}
				for _, rel := range rels {
					rel(nil)
				}
				require.Zero(t, c.Kept())
				require.Zero(t, h.KeptBuffers())
				_ = c.Abort()
			})
			require.NoError(t, peer.Close())
			require.True(t, h.Eventually(5*time.Second, func() bool { return r.lost == 1 }))
		}
	})
}
