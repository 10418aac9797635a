package unix_test

import (
	"testing"
	"time"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/internal/streamsuite"
	"github.com/gyre-io/gyre/transports/unix"
)

// unixKind runs the stream scenario suite over UNIX stream sockets on
// filesystem paths. AF_UNIX has no RST, no TCP_INFO and ignores shutdown(2)
// of a listening socket: the scenarios needing those are skipped with the
// reason (see streamsuite.Caps).
var unixKind = streamsuite.Kind{
	Name:    "unix",
	Network: "unix",
	Listen: func(loop *reactor.Loop, addr string, f transports.Factory, wm transports.Watermarks) (streamsuite.Port, error) {
		p, err := unix.Listen(loop, addr, f, unix.ListenOptions{Watermarks: wm})
		if err != nil {
			return nil, err
		}
		return p, nil
	},
	Connect: func(loop *reactor.Loop, addr string, f transports.ClientFactory, timeout time.Duration) (transports.Connector, error) {
		c, err := unix.Connect(loop, addr, f, unix.ConnectOptions{Timeout: timeout})
		if err != nil {
			return nil, err
		}
		return c, nil
	},
	Weak: streamsuite.WeakProbe[unix.Conn],
}

// TestSuite is the stream transports' scenario suite (chunking, large
// writes, slow readers, pause, half-close, lose/abort, resets, descriptor
// reuse, Stop, EMFILE, cycles, cancel races) over UNIX stream sockets, on
// both backends.
func TestSuite(t *testing.T) { streamsuite.Run(t, unixKind) }
