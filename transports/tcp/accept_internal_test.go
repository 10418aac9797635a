package tcp

import (
	"net"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
)

// TestAcceptPerConnectionErrorsBounded: accept failing with a per-connection
// error (ECONNABORTED, EPROTO, EPERM) or a transient one is retried at once,
// but only acceptRetryNow times in a row: then the port reports the error and
// backs off like for EMFILE instead of spinning. A success resets the count.
// The failures are injected: the port's submit is replaced by a counter, and
// every "armed" accept completes with the error.
func TestAcceptPerConnectionErrorsBounded(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		for _, errno := range []syscall.Errno{syscall.ECONNABORTED, syscall.EPROTO, syscall.EPERM, syscall.EINTR, syscall.EAGAIN, syscall.ECANCELED} {
			t.Run(errno.Error(), func(t *testing.T) {
				h := reactortest.Start(t, kind)
				arms := 0
				p := &Port{
					loop: h.Loop, fd: -1, addr: &net.TCPAddr{}, track: -1, done: make(chan struct{}),
					factory: transports.FactoryFunc(func(net.Addr) transports.Protocol { return nil }),
					submit:  func(*backend.Op, reactor.Handler) error { arms++; return nil },
				}
				fail := &backend.Completion{Res: -int32(errno)}
				// failAll completes every armed accept with errno, as the
				// kernel would, at most 1000 times.
				failAll := func() int {
					n := 0
					for p.acceptOn && n < 1000 {
						p.Complete(&p.acceptOp, fail)
						n++
					}
					return n
				}
				h.Do(func() {
					p.arm()
					require.Equal(t, acceptRetryNow+1, failAll(), "failed accepts before backing off")
					require.Equal(t, acceptRetryNow+1, arms)
					require.False(t, p.acceptOn)
					require.NotZero(t, p.backoff, "no back-off scheduled")
					p.retry.Cancel()
					// A success (a descriptor the refusing factory closes)
					// resets the streak: as many immediate retries again.
					p.arm()
					fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
					require.NoError(t, err)
					p.Complete(&p.acceptOp, &backend.Completion{Res: int32(fd), Flags: backend.FlagMore})
					require.Zero(t, p.backoff)
					require.Equal(t, acceptRetryNow+1, failAll(), "failed accepts before backing off, after a success")
					p.retry.Cancel()
				})
				require.Len(t, h.Errors(), 2)
				require.ErrorIs(t, h.Errors()[0], errno)
			})
		}
	})
}
