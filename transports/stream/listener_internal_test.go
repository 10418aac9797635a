package stream

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
)

// countingLoop is an Owner loop that accepts every op without running it
// and counts the submissions.
type countingLoop struct {
	l      *reactor.Loop
	submit int
}

func (c *countingLoop) Submit(*backend.Op, reactor.Handler) error { c.submit++; return nil }
func (c *countingLoop) Cancel(backend.Token)                      {}
func (c *countingLoop) CallLater(d time.Duration, f func()) clock.Call {
	return c.l.CallLater(d, f)
}

// TestAcceptPerConnectionErrorsBounded: accept failing with a per-connection
// error (ECONNABORTED, EPROTO, EPERM) or a transient one is retried at once,
// but only acceptRetryNow times in a row: then the listener reports the error
// and backs off like for EMFILE instead of spinning. A success resets the
// count. The failures are injected: the listener's Owner submits to a
// counter, and every "armed" accept completes with the error. (Moved here
// from transports/tcp with the accept loop.)
func TestAcceptPerConnectionErrorsBounded(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		for _, errno := range []syscall.Errno{syscall.ECONNABORTED, syscall.EPROTO, syscall.EPERM, syscall.EINTR, syscall.EAGAIN, syscall.ECANCELED} {
			t.Run(errno.Error(), func(t *testing.T) {
				h := reactortest.Start(t, kind)
				cl := &countingLoop{l: h.Loop}
				l := newListener(h.Loop, cl, -1,
					transports.FactoryFunc(func(net.Addr) transports.Protocol { return nil }),
					ListenerConfig{Net: "tcp", Addr: &net.TCPAddr{}, NewConn: func(loop *reactor.Loop, fd int) (*Conn, transports.Transport) {
						return NewConn(loop, fd, ConnConfig{}), nil
					}})
				fail := &backend.Completion{Res: -int32(errno)}
				// failAll completes every armed accept with errno, as the
				// kernel would, at most 1000 times.
				failAll := func() int {
					n := 0
					for l.own.InFlight(slotAccept) && n < 1000 {
						l.own.Complete(l.own.Op(slotAccept), fail)
						n++
					}
					return n
				}
				h.Do(func() {
					l.arm()
					require.Equal(t, acceptRetryNow+1, failAll(), "failed accepts before backing off")
					require.Equal(t, acceptRetryNow+1, cl.submit)
					require.False(t, l.own.InFlight(slotAccept))
					require.NotZero(t, l.backoff, "no back-off scheduled")
					l.retry.Cancel()
					// A success (a descriptor the refusing factory closes)
					// resets the streak: as many immediate retries again.
					l.arm()
					fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
					require.NoError(t, err)
					l.own.Complete(l.own.Op(slotAccept), &backend.Completion{Res: int32(fd), Flags: backend.FlagMore})
					require.Zero(t, l.backoff)
					require.Equal(t, acceptRetryNow+1, failAll(), "failed accepts before backing off, after a success")
					l.retry.Cancel()
				})
				require.Len(t, h.Errors(), 2)
				require.ErrorIs(t, h.Errors()[0], errno)
			})
		}
	})
}
