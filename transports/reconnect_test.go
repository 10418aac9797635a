package transports_test

import (
	"math"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// nopProto is a protocol that does nothing.
type nopProto struct{}

func (nopProto) ConnectionMade(transports.Transport) {}
func (nopProto) DataReceived([]byte)                 {}
func (nopProto) ConnectionLost(error)                {}

// rig is a ReconnectingClientFactory on a fake clock, connected through a
// MemoryReactor, so every attempt is resolved by the test.
type rig struct {
	clk   *clock.Fake
	f     *transports.ReconnectingClientFactory
	conn  *transporttest.FakeConnector
	built int
}

func newRig(t *testing.T, f *transports.ReconnectingClientFactory) *rig {
	t.Helper()
	r := &rig{clk: clock.NewFake(), f: f}
	f.Clock = r.clk
	f.Factory = transports.FactoryFunc(func(net.Addr) transports.Protocol { r.built++; return nopProto{} })
	m := transporttest.NewMemoryReactor(r.clk)
	c, err := m.ConnectTCP("127.0.0.1:9", f, nil)
	require.NoError(t, err)
	r.conn = c.(*transporttest.FakeConnector)
	require.Equal(t, 1, r.conn.Attempts())
	return r
}

// pendingDelay is the delay until the one scheduled retry.
func (r *rig) pendingDelay(t *testing.T) time.Duration {
	t.Helper()
	require.Equal(t, 1, r.clk.Len(), "exactly one retry must be scheduled")
	next, ok := r.clk.Next()
	require.True(t, ok)
	return next.Sub(r.clk.Now())
}

// fail fails the pending attempt and returns the retry delay scheduled.
func (r *rig) fail(t *testing.T) time.Duration {
	t.Helper()
	require.NoError(t, r.conn.Fail(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}))
	return r.pendingDelay(t)
}

// fire advances to just before the retry (nothing happens), then onto it
// (a new attempt starts).
func (r *rig) fire(t *testing.T, d time.Duration) {
	t.Helper()
	attempts := r.conn.Attempts()
	r.clk.Advance(d - time.Nanosecond)
	require.Equal(t, attempts, r.conn.Attempts(), "retried before its delay")
	r.clk.Advance(time.Nanosecond)
	require.Equal(t, attempts+1, r.conn.Attempts(), "not retried at its delay")
	require.Equal(t, transporttest.Connecting, r.conn.State())
}

func TestReconnectDelayGrowsByFactorUpToMax(t *testing.T) {
	r := newRig(t, &transports.ReconnectingClientFactory{
		InitialDelay: time.Second, Factor: 2, MaxDelay: 10 * time.Second, Jitter: -1,
	})
	for i, want := range []time.Duration{1, 2, 4, 8, 10, 10, 10} {
		want *= time.Second
		d := r.fail(t)
		require.Equal(t, want, d, "retry %d", i+1)
		require.Equal(t, want, r.f.NextDelay())
		require.Equal(t, i+1, r.f.Retries())
		r.fire(t, d)
	}
}

func TestReconnectJitterStaysInBounds(t *testing.T) {
	const jitter = 0.1
	r := newRig(t, &transports.ReconnectingClientFactory{
		InitialDelay: time.Second, Factor: 1.5, MaxDelay: 20 * time.Second, Jitter: jitter,
	})
	seen := map[time.Duration]bool{}
	for i := 0; i < 200; i++ {
		d := r.fail(t)
		nominal := r.f.NextDelay()
		lo := time.Duration(float64(nominal) * (1 - jitter))
		hi := time.Duration(float64(nominal) * (1 + jitter))
		require.GreaterOrEqual(t, d, lo, "retry %d: %v below %v-10%%", i+1, d, nominal)
		require.LessOrEqual(t, d, hi, "retry %d: %v above %v+10%%", i+1, d, nominal)
		if nominal == 20*time.Second {
			seen[d] = true
		}
		r.fire(t, d)
	}
	require.Greater(t, len(seen), 10, "jitter does not vary the delay")
}

func TestReconnectDefaults(t *testing.T) {
	r := newRig(t, &transports.ReconnectingClientFactory{})
	d := r.fail(t)
	require.Equal(t, time.Second, r.f.NextDelay())
	// Twisted's default jitter: about ±12%.
	require.InDelta(t, float64(time.Second), float64(d), 0.12*float64(time.Second))
	r.fire(t, d)
	r.fail(t)
	e := 2.7182818284590451
	require.Equal(t, time.Duration(float64(time.Second)*e), r.f.NextDelay(), "default factor e")
}

func TestReconnectMaxRetriesStops(t *testing.T) {
	r := newRig(t, &transports.ReconnectingClientFactory{
		InitialDelay: time.Second, Factor: 2, Jitter: -1, MaxRetries: 3,
	})
	for i := 0; i < 3; i++ {
		r.fire(t, r.fail(t))
	}
	require.NoError(t, r.conn.Fail(syscall.ECONNREFUSED))
	require.Zero(t, r.clk.Len(), "a retry was scheduled past MaxRetries")
	r.clk.Advance(time.Hour)
	require.Equal(t, 4, r.conn.Attempts())
	require.Equal(t, transporttest.Disconnected, r.conn.State())
}

func TestReconnectResetDelayOnBuildProtocol(t *testing.T) {
	var lost []error
	r := newRig(t, &transports.ReconnectingClientFactory{
		InitialDelay: time.Second, Factor: 2, Jitter: -1, MaxRetries: 3,
		OnConnectionLost: func(_ transports.Connector, err error) { lost = append(lost, err) },
	})
	r.fire(t, r.fail(t))
	r.fire(t, r.fail(t))
	require.Equal(t, 2*time.Second, r.f.NextDelay())
	require.Equal(t, 2, r.f.Retries())

	_, tr, err := r.conn.Succeed()
	require.NoError(t, err)
	require.Equal(t, 1, r.built)
	require.Zero(t, r.f.NextDelay(), "BuildProtocol must reset the delay")
	require.Zero(t, r.f.Retries(), "BuildProtocol must reset the retry count")
	require.Zero(t, r.clk.Len())

	// The connection is lost: the next retry starts from InitialDelay again,
	// and MaxRetries counts afresh.
	tr.EndConnection(transports.Lost(syscall.ECONNRESET))
	require.Len(t, lost, 1)
	require.ErrorIs(t, lost[0], syscall.ECONNRESET)
	require.Equal(t, time.Second, r.pendingDelay(t))
	r.fire(t, time.Second)
	for i := 0; i < 2; i++ {
		r.fire(t, r.fail(t))
	}
	require.NoError(t, r.conn.Fail(syscall.ECONNREFUSED))
	require.Zero(t, r.clk.Len())
}

func TestReconnectStopTryingCancelsPendingRetry(t *testing.T) {
	var failed []error
	r := newRig(t, &transports.ReconnectingClientFactory{
		InitialDelay: time.Second, Jitter: -1,
		OnConnectionFailed: func(_ transports.Connector, err error) { failed = append(failed, err) },
	})
	r.fail(t)
	r.f.StopTrying()
	require.Zero(t, r.clk.Len(), "StopTrying left the retry scheduled")
	r.clk.Advance(time.Hour)
	require.Equal(t, 1, r.conn.Attempts())
	require.Len(t, failed, 1)
}

func TestReconnectStopTryingStopsAttemptInProgress(t *testing.T) {
	var failed []error
	r := newRig(t, &transports.ReconnectingClientFactory{
		InitialDelay: time.Second, Jitter: -1,
		OnConnectionFailed: func(_ transports.Connector, err error) { failed = append(failed, err) },
	})
	r.fire(t, r.fail(t)) // attempt 2 is in progress
	r.f.StopTrying()
	require.Equal(t, transporttest.Disconnected, r.conn.State())
	require.Len(t, failed, 2)
	require.ErrorIs(t, failed[1], transports.ErrConnectStopped)
	require.Zero(t, r.clk.Len(), "a retry was scheduled after StopTrying")
	r.clk.Advance(time.Hour)
	require.Equal(t, 2, r.conn.Attempts())
}

// A MaxDelay near the top of time.Duration's range (meaning "no cap") must not
// overflow: every delay stays positive, never shrinks, and never passes MaxDelay.
func TestReconnectHugeMaxDelayDoesNotOverflow(t *testing.T) {
	for _, jitter := range []float64{-1, 0.5} {
		r := newRig(t, &transports.ReconnectingClientFactory{
			InitialDelay: time.Hour, Factor: 10, MaxDelay: time.Duration(math.MaxInt64), Jitter: jitter,
		})
		prev := time.Duration(0)
		for i := 0; i < 30; i++ {
			require.NoError(t, r.conn.Fail(syscall.ECONNREFUSED))
			nominal := r.f.NextDelay()
			require.Positive(t, nominal, "jitter %v, retry %d: nominal delay overflowed", jitter, i+1)
			require.GreaterOrEqual(t, nominal, prev, "jitter %v, retry %d: delay shrank", jitter, i+1)
			prev = nominal
			d := r.pendingDelay(t)
			require.Positive(t, d, "jitter %v, retry %d: scheduled delay %v", jitter, i+1, d)
			r.clk.Jump(d)
			r.clk.Advance(0)
			require.Equal(t, i+2, r.conn.Attempts())
		}
	}
}
