package policies

import (
	"net"
	"time"

	"github.com/gyre-io/gyre/transports"
)

// IdleTimer calls OnTimeout once Period passes without a Reset (Twisted's
// TimeoutMixin). Embed one in a protocol, Start it in ConnectionMade with the
// transport's clock, Reset it on activity and Stop it in ConnectionLost.
//
// Reset only notes the time: the pending call is left where it is and, when
// it comes due, re-arms itself for the rest of the period if there was
// activity meanwhile. So activity costs one clock read, no timer-heap work and
// no allocation.
//
// Loop goroutine only.
type IdleTimer struct {
	// Period is the idle time allowed; <= 0 disables the timer. Change it
	// with SetPeriod once started.
	Period time.Duration
	// OnTimeout runs on the clock's goroutine when the timer expires.
	OnTimeout func()

	clk  transports.Clock
	call transports.DelayedCall
	last time.Time // latest activity
	fire func()
}

// Start begins timing on clk (typically transport.Clock()).
func (t *IdleTimer) Start(clk transports.Clock) {
	t.clk = clk
	t.Reset()
}

// Reset restarts the countdown: call it on activity. It does nothing before
// Start, after Stop, or when Period <= 0.
func (t *IdleTimer) Reset() {
	if t.clk == nil || t.Period <= 0 {
		return
	}
	t.last = t.clk.Now()
	if t.call.Active() {
		return
	}
	if t.fire == nil {
		t.fire = t.expire
	}
	t.call = t.clk.CallLater(t.Period, t.fire)
}

// SetPeriod changes the period, restarting the countdown (d <= 0 cancels it),
// and returns the previous period.
func (t *IdleTimer) SetPeriod(d time.Duration) time.Duration {
	prev := t.Period
	t.Period = d
	t.call.Cancel()
	t.Reset()
	return prev
}

// Stop cancels the timer for good (until the next Start).
func (t *IdleTimer) Stop() {
	t.call.Cancel()
	t.clk = nil
}

// Active reports whether a timeout is pending.
func (t *IdleTimer) Active() bool { return t.call.Active() }

func (t *IdleTimer) expire() {
	if t.clk == nil || t.Period <= 0 {
		return
	}
	if idle := t.clk.Now().Sub(t.last); idle < t.Period {
		t.call = t.clk.CallLater(t.Period-idle, t.fire)
		return
	}
	if t.OnTimeout != nil {
		t.OnTimeout()
	}
}

// TimeoutFactory closes connections that stay idle — nothing read and nothing
// written — for Timeout (Twisted's TimeoutFactory/TimeoutProtocol). The timer
// runs on each connection's transport clock, restarts on activity in either
// direction and is cancelled when the connection is lost. On expiry the
// connection is closed with LoseConnection (pending writes are flushed), or
// OnTimeout runs instead when set.
//
// Goroutine-safe, like WrappingFactory.
type TimeoutFactory struct {
	WrappingFactory
	// Timeout is the idle time allowed; <= 0 disables the timeout.
	Timeout time.Duration
	// OnTimeout, if set, replaces LoseConnection on expiry; w.Transport() is
	// the real transport.
	OnTimeout func(w *ProtocolWrapper)
}

// NewTimeoutFactory wraps f with an idle timeout of d.
func NewTimeoutFactory(f transports.Factory, d time.Duration) *TimeoutFactory {
	return &TimeoutFactory{WrappingFactory: WrappingFactory{Wrapped: f}, Timeout: d}
}

// BuildProtocol implements transports.Factory.
func (f *TimeoutFactory) BuildProtocol(addr net.Addr) transports.Protocol {
	return f.wrap(f.Wrapped.BuildProtocol(addr), f.Setup, f.setup)
}

func (f *TimeoutFactory) setup(w *ProtocolWrapper) {
	t := &IdleTimer{Period: f.Timeout}
	t.OnTimeout = func() {
		if f.OnTimeout != nil {
			f.OnTimeout(w)
			return
		}
		if tr := w.Transport(); tr != nil {
			_ = tr.LoseConnection()
		}
	}
	w.addHooks(hooks{
		made:  func(w *ProtocolWrapper) { t.Start(w.Clock()) },
		data:  func([]byte) { t.Reset() },
		write: func(int) { t.Reset() },
		lost:  func(error) { t.Stop() },
	})
}
