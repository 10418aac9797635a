//go:build race || gyredebug

package stream_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports/stream"
)

// TestTransportOffLoopPanics: in builds with loop checks (-race, gyredebug),
// a Transport method called from another goroutine while the loop runs
// panics with ErrNotOnLoop naming the Transport method — not silently
// queueing bytes nobody will flush.
func TestTransportOffLoopPanics(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		defer unix.Close(fds[1])
		var c *stream.Conn
		h.Do(func() {
			c = stream.NewConn(h.Loop, fds[0], stream.ConnConfig{})
			c.Start(&connRec{}, nil)
		})
		for name, f := range map[string]func(){
			"Transport.Write":          func() { _ = c.Write([]byte("x")) },
			"Transport.PauseReading":   c.PauseReading,
			"Transport.LoseConnection": func() { _ = c.LoseConnection() },
		} {
			err := func() (err error) {
				defer func() {
					if v := recover(); v != nil {
						err, _ = v.(error)
						if err == nil {
							err = fmt.Errorf("%v", v)
						}
					}
				}()
				f()
				return nil
			}()
			require.ErrorIs(t, err, reactor.ErrNotOnLoop, name)
			require.ErrorContains(t, err, name)
		}
		h.Do(func() { _ = c.Abort() })
	})
}
