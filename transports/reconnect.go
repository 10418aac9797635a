package transports

import (
	"math"
	"math/rand/v2"
	"net"
	"time"
)

// ReconnectingClientFactory wraps a Factory and reconnects with exponential
// back-off whenever a connection attempt fails or an established connection
// is lost (Twisted's ReconnectingClientFactory). The delay starts at
// InitialDelay, grows by Factor per failure up to MaxDelay, with Jitter
// (a fraction, 0.1 = ±10%) applied; MaxRetries > 0 bounds consecutive
// failures. A successful connection (BuildProtocol) resets the delay.
// It stops retrying for good once its loop is stopping (a clock with a
// Stopping() bool method reporting true, as *reactor.Loop's does from the
// start of shutdown): no retry is scheduled then, and a retry already
// scheduled does not connect. Loop goroutine only, like every factory.
type ReconnectingClientFactory struct {
	Factory Factory
	// Clock schedules retries; nil uses the connector's own clock when it has
	// one (tcp.Connector does: its loop), and otherwise stops retrying.
	Clock Clock

	InitialDelay time.Duration // default 1 s
	Factor       float64       // default e ≈ 2.718 (Twisted's value)
	MaxDelay     time.Duration // default 1 h
	Jitter       float64       // default 0.119626565582 (Twisted's value); negative: none
	MaxRetries   int           // 0: unlimited

	// OnConnectionFailed and OnConnectionLost, if set, are told about every
	// failure and loss before the retry is scheduled.
	OnConnectionFailed func(c Connector, reason error)
	OnConnectionLost   func(c Connector, reason error)

	delay   time.Duration
	retries int
	stopped bool
	pending DelayedCall
	conn    Connector
}

var _ ClientFactory = (*ReconnectingClientFactory)(nil)

func (f *ReconnectingClientFactory) defaults() {
	if f.InitialDelay <= 0 {
		f.InitialDelay = time.Second
	}
	if f.Factor <= 1 {
		f.Factor = 2.7182818284590451
	}
	if f.MaxDelay <= 0 {
		f.MaxDelay = time.Hour
	}
	if f.Jitter == 0 {
		f.Jitter = 0.11962656472
	}
}

// BuildProtocol implements Factory; a successful build resets the back-off.
func (f *ReconnectingClientFactory) BuildProtocol(addr net.Addr) Protocol {
	f.ResetDelay()
	return f.Factory.BuildProtocol(addr)
}

// StartedConnecting implements ClientFactory.
func (f *ReconnectingClientFactory) StartedConnecting(c Connector) { f.conn = c }

// ClientConnectionFailed implements ClientFactory: schedules a retry.
func (f *ReconnectingClientFactory) ClientConnectionFailed(c Connector, reason error) {
	if f.OnConnectionFailed != nil {
		f.OnConnectionFailed(c, reason)
	}
	f.Retry(c)
}

// ClientConnectionLost implements ClientFactory: schedules a retry.
func (f *ReconnectingClientFactory) ClientConnectionLost(c Connector, reason error) {
	if f.OnConnectionLost != nil {
		f.OnConnectionLost(c, reason)
	}
	f.Retry(c)
}

// stopper is a clock that knows whether its loop is shutting down
// (*reactor.Loop).
type stopper interface{ Stopping() bool }

// clock is the factory's Clock, else c's own clock, else nil.
func (f *ReconnectingClientFactory) clock(c Connector) Clock {
	if f.Clock != nil {
		return f.Clock
	}
	if cc, ok := c.(interface{ Clock() Clock }); ok {
		return cc.Clock()
	}
	return nil
}

// loopStopping reports whether the loop behind the factory's clock or c's
// clock is shutting down; it sets stopped if so.
func (f *ReconnectingClientFactory) loopStopping(c Connector) bool {
	stopping := func(clk Clock) bool {
		s, ok := clk.(stopper)
		return ok && s.Stopping()
	}
	cc, ok := c.(interface{ Clock() Clock })
	if stopping(f.Clock) || ok && stopping(cc.Clock()) {
		f.stopped = true
	}
	return f.stopped
}

// Retry schedules c.Connect after the next back-off delay, unless stopped,
// out of retries, or the loop is stopping.
func (f *ReconnectingClientFactory) Retry(c Connector) {
	f.defaults()
	if f.stopped || f.loopStopping(c) {
		return
	}
	f.retries++
	if f.MaxRetries > 0 && f.retries > f.MaxRetries {
		return
	}
	if f.delay == 0 {
		f.delay = f.InitialDelay
	} else if next := float64(f.delay) * f.Factor; next < float64(f.MaxDelay) {
		f.delay = time.Duration(next)
	} else {
		f.delay = f.MaxDelay // compared as floats: the product may not fit a Duration
	}
	if f.delay > f.MaxDelay {
		f.delay = f.MaxDelay
	}
	d := f.delay
	if f.Jitter > 0 {
		if j := float64(d) * (1 + f.Jitter*(2*rand.Float64()-1)); j < math.MaxInt64 {
			d = time.Duration(j)
		} else {
			d = math.MaxInt64
		}
	}
	clk := f.clock(c)
	if clk == nil {
		// Nothing to schedule on: give up (an immediate retry could spin).
		f.stopped = true
		return
	}
	f.pending = clk.CallLater(d, func() {
		if !f.stopped && !f.loopStopping(c) {
			_ = c.Connect()
		}
	})
}

// NextDelay is the delay the last Retry used (0 before the first).
func (f *ReconnectingClientFactory) NextDelay() time.Duration { return f.delay }

// Retries is the number of consecutive failed attempts.
func (f *ReconnectingClientFactory) Retries() int { return f.retries }

// ResetDelay forgets the back-off (after a success).
func (f *ReconnectingClientFactory) ResetDelay() {
	f.delay = 0
	f.retries = 0
}

// StopTrying cancels a scheduled retry and stops reconnecting; an attempt in
// progress is stopped too.
func (f *ReconnectingClientFactory) StopTrying() {
	f.stopped = true
	f.pending.Cancel()
	if f.conn != nil {
		_ = f.conn.StopConnecting()
	}
}
