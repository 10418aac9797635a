package policies

import (
	"net"
	"time"

	"github.com/gyre-io/gyre/transports"
)

// ThrottlingFactory limits bandwidth and connection count across all the
// connections it builds (Twisted's ThrottlingFactory).
//
// Every second it compares the bytes read (and written) in that second with
// ReadLimit (WriteLimit). Over the limit, it pauses reading on every
// connection (pauses every registered producer) for bytes/limit - 1 seconds,
// so the average comes back to the limit. Write throttling can only slow
// protocols that write through a registered producer, as in Twisted. Pauses
// by the policy and by the protocols themselves are tracked apart (see
// ProtocolWrapper), so unthrottling never resumes what a protocol paused.
//
// Beyond MaxConnections live connections, BuildProtocol refuses (nil).
//
// Not goroutine-safe: all its connections must belong to one loop, whose
// clock it uses (Clock, or the first connection's transport clock).
type ThrottlingFactory struct {
	WrappingFactory
	// MaxConnections caps the live connections; <= 0 means no cap.
	MaxConnections int
	// ReadLimit is the read budget in bytes per second; <= 0 means none.
	ReadLimit int
	// WriteLimit is the write budget in bytes per second; <= 0 means none.
	WriteLimit int
	// Clock schedules the checks; nil takes the first connection's.
	Clock transports.Clock

	count   int
	conns   map[*throttleConn]struct{}
	clk     transports.Clock
	running bool
	read    int
	written int

	readCheck, writeCheck           transports.DelayedCall
	readUnthrottle, writeUnthrottle transports.DelayedCall
	readThrottled, writeThrottled   bool

	checkReadFn, checkWriteFn, unthrottleReadsFn, unthrottleWritesFn func()
}

type throttleConn struct {
	w                   *ProtocolWrapper
	readHeld, writeHeld bool
}

// NewThrottlingFactory wraps f with the given limits (<= 0: none).
func NewThrottlingFactory(f transports.Factory, maxConnections, readLimit, writeLimit int) *ThrottlingFactory {
	return &ThrottlingFactory{
		WrappingFactory: WrappingFactory{Wrapped: f},
		MaxConnections:  maxConnections,
		ReadLimit:       readLimit,
		WriteLimit:      writeLimit,
	}
}

// Count is the number of connections built and not yet lost.
func (f *ThrottlingFactory) Count() int { return f.count }

// ReadThrottled reports whether reading is paused for the read limit.
func (f *ThrottlingFactory) ReadThrottled() bool { return f.readThrottled }

// WriteThrottled reports whether producers are paused for the write limit.
func (f *ThrottlingFactory) WriteThrottled() bool { return f.writeThrottled }

// BuildProtocol implements transports.Factory: nil over MaxConnections or when
// Wrapped refuses.
func (f *ThrottlingFactory) BuildProtocol(addr net.Addr) transports.Protocol {
	if f.MaxConnections > 0 && f.count >= f.MaxConnections {
		return nil
	}
	p := f.wrap(f.Wrapped.BuildProtocol(addr), f.Setup, f.setup)
	if p != nil {
		f.count++
	}
	return p
}

func (f *ThrottlingFactory) setup(w *ProtocolWrapper) {
	c := &throttleConn{w: w}
	w.addHooks(hooks{
		made: func(w *ProtocolWrapper) {
			if f.conns == nil {
				f.conns = make(map[*throttleConn]struct{})
			}
			f.conns[c] = struct{}{}
			f.start(w.Clock())
			if f.readThrottled {
				c.holdRead()
			}
			if f.writeThrottled {
				c.holdWrite()
			}
		},
		data:  func(p []byte) { f.read += len(p) },
		write: func(n int) { f.written += n },
		lost: func(error) {
			delete(f.conns, c)
			f.count--
			if f.count <= 0 {
				f.stop()
			}
		},
	})
}

func (c *throttleConn) holdRead() {
	if !c.readHeld {
		c.readHeld = true
		c.w.HoldReading()
	}
}

func (c *throttleConn) releaseRead() {
	if c.readHeld {
		c.readHeld = false
		c.w.ReleaseReading()
	}
}

func (c *throttleConn) holdWrite() {
	if !c.writeHeld {
		c.writeHeld = true
		c.w.HoldProducer()
	}
}

func (c *throttleConn) releaseWrite() {
	if c.writeHeld {
		c.writeHeld = false
		c.w.ReleaseProducer()
	}
}

// start begins the once-a-second checks.
func (f *ThrottlingFactory) start(clk transports.Clock) {
	if f.running {
		return
	}
	if f.clk = f.Clock; f.clk == nil {
		f.clk = clk
	}
	if f.clk == nil {
		return
	}
	if f.checkReadFn == nil {
		f.checkReadFn, f.checkWriteFn = f.checkRead, f.checkWrite
		f.unthrottleReadsFn, f.unthrottleWritesFn = f.unthrottleReads, f.unthrottleWrites
	}
	f.running = true
	f.read, f.written = 0, 0
	if f.ReadLimit > 0 {
		f.readCheck = f.clk.CallLater(time.Second, f.checkReadFn)
	}
	if f.WriteLimit > 0 {
		f.writeCheck = f.clk.CallLater(time.Second, f.checkWriteFn)
	}
}

// stop cancels every timer once the last connection is gone.
func (f *ThrottlingFactory) stop() {
	f.readCheck.Cancel()
	f.writeCheck.Cancel()
	f.readUnthrottle.Cancel()
	f.writeUnthrottle.Cancel()
	f.readThrottled, f.writeThrottled = false, false
	f.running = false
}

// throttleTime is how long to pause for n bytes against limit per second.
func throttleTime(n, limit int) time.Duration {
	return time.Duration((float64(n)/float64(limit) - 1) * float64(time.Second))
}

// extend schedules fn in d, or pushes an already scheduled call to d from now
// if that is later.
func (f *ThrottlingFactory) extend(c *transports.DelayedCall, d time.Duration, fn func()) {
	if c.Active() {
		if c.Time().Sub(f.clk.Now()) < d {
			c.Reset(d)
		}
		return
	}
	*c = f.clk.CallLater(d, fn)
}

func (f *ThrottlingFactory) checkRead() {
	if f.ReadLimit > 0 && f.read > f.ReadLimit {
		f.readThrottled = true
		for c := range f.conns {
			c.holdRead()
		}
		f.extend(&f.readUnthrottle, throttleTime(f.read, f.ReadLimit), f.unthrottleReadsFn)
	}
	f.read = 0
	if f.ReadLimit > 0 {
		f.readCheck = f.clk.CallLater(time.Second, f.checkReadFn)
	}
}

func (f *ThrottlingFactory) checkWrite() {
	if f.WriteLimit > 0 && f.written > f.WriteLimit {
		f.writeThrottled = true
		for c := range f.conns {
			c.holdWrite()
		}
		f.extend(&f.writeUnthrottle, throttleTime(f.written, f.WriteLimit), f.unthrottleWritesFn)
	}
	f.written = 0
	if f.WriteLimit > 0 {
		f.writeCheck = f.clk.CallLater(time.Second, f.checkWriteFn)
	}
}

func (f *ThrottlingFactory) unthrottleReads() {
	f.readThrottled = false
	for c := range f.conns {
		c.releaseRead()
	}
}

func (f *ThrottlingFactory) unthrottleWrites() {
	f.writeThrottled = false
	for c := range f.conns {
		c.releaseWrite()
	}
}
