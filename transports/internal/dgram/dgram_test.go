package dgram

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/internal/unixpath"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type pathCodec struct{}

func (pathCodec) Decode(name []byte) string { return string(unixpath.Decode(name)) }
func (pathCodec) Encode(a string, raw *unix.RawSockaddrAny) (uint32, error) {
	return unixpath.RawName(a, raw), nil
}
func (pathCodec) Local(fd int) string { return unixpath.Local(fd, "unixgram").Name }

type nop struct{}

func (nop) StartProtocol(transports.DatagramTransportOf[string]) {}
func (nop) DatagramReceived([]byte, string)                      {}
func (nop) ConnectionRefused()                                   {}
func (nop) StopProtocol()                                        {}

// An unconnected AF_UNIX socket sending to a full receiver polls writable
// at once (poll sees only its own buffer) while sendmsg keeps failing with
// EAGAIN: the port must back off on a timer, not spin poll → EAGAIN →
// poll. Counted: the flush wake-ups over 300 ms of a stalled receiver stay
// near the backoff schedule's 1+2+4+…+64 ms (about 9), where spinning
// makes thousands.
func TestUnconnectedFullReceiverBacksOff(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		dir := t.TempDir()
		dst := filepath.Join(dir, "dst")
		rfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		defer unix.Close(rfd)
		require.NoError(t, unix.Bind(rfd, &unix.SockaddrUnix{Name: dst}))
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		require.NoError(t, unix.Bind(fd, &unix.SockaddrUnix{Name: filepath.Join(dir, "src")}))
		var p *Port[string, pathCodec]
		h.Do(func() {
			p, err = New(h.Loop, fd, transports.DatagramProtocolOf[string](nop{}), pathCodec{}, "", Config{Net: "test", QueueDatagrams: 2})
		})
		require.NoError(t, err)
		h.Do(func() {
			for i := 0; i < 100000 && p.stats.Queued == 0; i++ {
				_ = p.Write([]byte("x"), dst)
			}
		})
		time.Sleep(300 * time.Millisecond)
		var wakes int
		h.Do(func() { wakes = p.wakes })
		require.Positive(t, wakes)
		require.Less(t, wakes, 40, "flush wake-ups while the receiver is full")
		// Drain: the queued datagram goes out on a later retry.
		buf := make([]byte, 16)
		for {
			if _, _, err := unix.Recvfrom(rfd, buf, unix.MSG_DONTWAIT); err != nil {
				break
			}
		}
		require.True(t, reactortest.WaitUntil(10*time.Second, func() bool {
			var left int
			h.Do(func() { left = len(p.q) - p.qHead })
			return left == 0
		}), "the queued datagram went out once the receiver had room")
		h.Do(func() { _ = p.StopListening(nil) })
	})
}
