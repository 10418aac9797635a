package reactor_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/uring"
)

// stubborn is a Resource with one recv in flight on a socket that never gets
// data. With graceful set it cancels the recv at the first Shutdown, like a
// connection with nothing to flush; otherwise it ignores the graceful stage,
// like a connection flushing to a peer that never reads, and cancels only
// when told to abort. It untracks itself at the recv's final completion.
type stubborn struct {
	l        *reactor.Loop
	graceful bool
	op       backend.Op
	track    int
	reasons  []error
	final    bool
}

func (s *stubborn) Shutdown(reason error) {
	s.reasons = append(s.reasons, reason)
	if s.graceful || errors.Is(reason, reactor.ErrDrainTimeout) {
		s.l.Cancel(s.op.Token)
	}
}

func (s *stubborn) Complete(_ *backend.Op, c *backend.Completion) {
	if !c.More() {
		s.final = true
		s.l.Untrack(s.track)
	}
}

func (s *stubborn) start(fd int) error {
	s.op = backend.Op{Kind: backend.KindRecv, Fd: int32(fd), Multishot: true, BufferSelect: true}
	if err := s.l.Submit(&s.op, s); err != nil {
		return err
	}
	s.track = s.l.Track(s)
	return nil
}

// TestStopAbortsWhatDoesNotDrain: at Stop every resource gets a graceful
// Shutdown(ErrStopped); one that has not finished by DrainTimeout gets a
// second Shutdown matching ErrDrainTimeout (and ErrStopped), so that its ops
// reach their final completion before Run returns. A resource that finished
// gracefully is called once. A resource tracked during the drain is shut down
// too.
func TestStopAbortsWhatDoesNotDrain(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		l, err := reactor.New(reactor.Config{Backend: kind, IgnoreEnv: true, DrainTimeout: 200 * time.Millisecond})
		if errors.Is(err, uring.ErrUnavailable) {
			t.Skip(err)
		}
		require.NoError(t, err)
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		defer unix.Close(fds[0])
		defer unix.Close(fds[1])
		hard := &stubborn{l: l}
		soft := &stubborn{l: l, graceful: true}
		late := &stubborn{l: l}
		require.NoError(t, l.Call(func() {
			require.NoError(t, hard.start(fds[0]))
			require.NoError(t, soft.start(fds[0]))
			l.AddTrigger(reactor.Shutdown, reactor.During, func() {
				// Tracked while shutting down: shut down on a later turn.
				l.CallLater(0, func() { require.NoError(t, late.start(fds[0])) })
			})
			l.Stop()
		}))
		require.NoError(t, l.Run(context.Background()))

		require.True(t, soft.final)
		require.Len(t, soft.reasons, 1)
		require.ErrorIs(t, soft.reasons[0], reactor.ErrStopped)
		require.NotErrorIs(t, soft.reasons[0], reactor.ErrDrainTimeout)

		for name, s := range map[string]*stubborn{"hard": hard, "late": late} {
			require.True(t, s.final, "%s: recv still in flight after Run returned", name)
			require.Len(t, s.reasons, 2, name)
			require.ErrorIs(t, s.reasons[0], reactor.ErrStopped, name)
			require.NotErrorIs(t, s.reasons[0], reactor.ErrDrainTimeout, name)
			require.ErrorIs(t, s.reasons[1], reactor.ErrStopped, name)
			require.ErrorIs(t, s.reasons[1], reactor.ErrDrainTimeout, name)
		}
	})
}
