// Package reactor is gyre's event loop (Twisted's reactor core): run and stop,
// delayed calls, calls from other goroutines, system-event triggers, the table of
// in-flight backend operations, and the choice of backend.
//
// A Loop is one goroutine locked to its OS thread. It creates its backend on that
// thread, runs every callback there, and closes the backend there. The only
// goroutine-safe methods are Call, Stop, Run (once), Done, Now, ReportError,
// Stats and the read-only accessors Backend, Features and Sizes; everything
// else must be called
// on the loop, i.e. from a callback or from a function passed to Call. Built
// with -race or -tags gyredebug, a loop-only method called from another
// goroutine while the loop runs panics with an error matching ErrNotOnLoop that
// names the method.
package reactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/reactor/backend"
)

// Errors returned by the loop.
var (
	// ErrStopped: the loop is stopping or stopped; the call or op was not accepted.
	ErrStopped = errors.New("gyre/reactor: loop stopped")
	// ErrNotRestartable: Run was called a second time.
	ErrNotRestartable = errors.New("gyre/reactor: a loop cannot be run twice")
	// ErrNotOnLoop: a loop-only method was called from another goroutine while
	// the loop runs (a data race). Detected only in builds with -race or
	// -tags gyredebug, where it is the value of a panic naming the method.
	ErrNotOnLoop = errors.New("gyre/reactor: loop-only method called off the loop goroutine (use Loop.Call)")
)

// Handler receives the completions of ops submitted with Loop.Submit. It runs
// on the loop. c is valid only during the call (c.Buf with FlagBuffer is given
// back to the pool when Complete returns).
type Handler interface {
	Complete(op *backend.Op, c *backend.Completion)
}

// Resource is something the loop must close when it shuts down (a port, a
// connection, a connector); register it with Track, forget it with Untrack
// once it has reached its end state.
//
// Shutdown runs on the loop, in two stages (Twisted's disconnectAll, with a
// graceful first stage):
//
//   - When shutdown begins (after the "during" triggers), every tracked
//     resource gets Shutdown(ErrStopped): start closing gracefully (a
//     connection flushes its queue and sends FIN), and let every op reach its
//     final completion.
//   - Whatever is still tracked, or still has ops in flight, when
//     Config.DrainTimeout has passed gets Shutdown again with a reason that
//     matches both ErrStopped and ErrDrainTimeout: end now (a connection drops
//     its queue, resets and closes), cancelling whatever is in flight.
//
// A resource Tracked after shutdown began gets the current stage's call on the
// next turn. Shutdown must be idempotent within a stage.
type Resource interface {
	Shutdown(reason error)
}

type slot struct {
	gen uint32
	op  *backend.Op
	h   Handler
}

// Loop is a reactor. Create it with New, drive it with Run, end it with Stop.
type Loop struct {
	cfg     Config
	be      backend.Backend
	feat    backend.Features
	log     *slog.Logger
	onError func(error)

	// Op table.
	slots    []slot
	freeSlot []uint32
	inflight int

	// Timers.
	timers *clock.Timers

	// Calls from other goroutines.
	callMu    sync.Mutex
	calls     []func()
	spare     []func()
	callCount atomic.Int64
	// callsClosed (guarded by callMu) is set once the loop will never run
	// another call.
	callsClosed bool
	sleeping    atomic.Bool
	woken       atomic.Bool

	// tid is the loop's OS thread id (the loop goroutine is locked to it); set
	// before New returns.
	tid int

	// Lifecycle.
	stopReq  atomic.Bool
	state    atomic.Int32
	startCh  chan context.Context
	doneCh   chan struct{}
	runErr   error
	stopping bool // on-loop view: shutdown has begun
	aborting bool // on-loop view: the drain timed out, resources are being aborted

	resources []Resource
	freeRes   []int
	// resShut is set once the registered resources have been shut down; a
	// resource tracked after that goes to late and is shut down within the
	// same turn.
	resShut bool
	late    []Resource
	// progress makes the current turn's wait non-blocking (a trigger called
	// done, so the phase waiting for it can move on).
	progress bool

	triggers [2][3][]*trigger
	trigSeq  int

	flushers []Flusher

	kept int // provided buffers kept by KeepBuffer (keep.go)

	// turns counts loop turns (each one backend wait); tests read it after
	// Done to tell a sleeping loop from a spinning one.
	turns uint64
	// Yielding to the Go scheduler (see yieldIfDue): the loop's monotonic
	// clock base, the last clock check, yield and GOMAXPROCS read on it, the blocking
	// turns left before the next check, and whether the runtime had a
	// single P at the last check.
	clock0                          time.Time
	lastCheck, lastYield, lastProcs time.Duration
	yieldSkip                       int
	oneP                            bool
	yields                          uint64 // yields so far; tests read it after Done

	cancelOps []*backend.Op
	comps     []backend.Completion
	cancelH   cancelHandler

	// Counters (stats.go): ctr is written on the loop, pub read by Stats.
	ctr counters
	pub published
}

const (
	stateNew int32 = iota
	stateRunning
	stateStopping
	stateStopped
)

// New creates a loop and its backend on a new goroutine locked to its OS thread.
// The loop does nothing until Run; call Run or Stop eventually, or its thread
// is never released. It fails if the requested backend cannot be
// set up; with Backend Uring on a kernel without io_uring the error matches
// uring.ErrUnavailable; with an unknown GYRE_BACKEND value (and no
// IgnoreEnv) it matches ErrUnknownBackend and names the value.
func New(cfg Config) (*Loop, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &Loop{
		cfg:     cfg,
		log:     cfg.Logger,
		onError: cfg.OnError,
		startCh: make(chan context.Context, 1),
		doneCh:  make(chan struct{}),
		comps:   make([]backend.Completion, cfg.CompletionBatch),
	}
	l.cancelH.l = l
	l.timers = clock.NewTimers(l.Now)
	ready := make(chan error, 1)
	go l.thread(ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	return l, nil
}

// thread is the loop's goroutine: it owns the OS thread for the loop's whole life.
func (l *Loop) thread(ready chan<- error) {
	runtime.LockOSThread()
	// The thread is never unlocked: if the goroutine exits while locked, the
	// thread exits with it, taking any io_uring task state along.
	l.tid = gettid()
	if err := pinThread(l.cfg.CPUs); err != nil {
		ready <- err
		return
	}
	be, fellBack, err := openBackend(l.cfg, l.log)
	if err != nil {
		ready <- err
		return
	}
	if l.cfg.WrapBackend != nil {
		be = l.cfg.WrapBackend(be)
	}
	l.be = be
	if fellBack {
		l.pub.fallback.Store(1)
	}
	l.publish()
	l.feat = be.Features()
	ready <- nil
	ctx := <-l.startCh
	if ctx != nil {
		l.runErr = l.run(ctx)
	} else {
		// Stopped before Run: what was queued with Call still runs, and is
		// shut down and drained like everything else.
		l.shutdown()
	}
	l.shutdownBackend()
	l.state.Store(stateStopped)
	close(l.doneCh)
}

// Backend names the backend in use ("uring" or "epoll"). Goroutine-safe.
func (l *Loop) Backend() string { return l.be.Name() }

// Features reports the backend's native features. Goroutine-safe.
func (l *Loop) Features() backend.Features { return l.feat }

// Run runs the loop until Stop is called or ctx is done, then shuts down in
// order (see Stop) and returns. A loop runs once: a second Run returns
// ErrNotRestartable. Run blocks the calling goroutine; the loop itself runs on
// its own locked thread. It returns nil after a shutdown, whether Stop or ctx
// began it (check ctx.Err() to tell them apart), ErrNotRestartable as above,
// or the backend's error if the loop could not go on waiting.
func (l *Loop) Run(ctx context.Context) error {
	if !l.state.CompareAndSwap(stateNew, stateRunning) {
		return ErrNotRestartable
	}
	l.startCh <- ctx
	<-l.doneCh
	return l.runErr
}

// Done is closed once the loop has fully stopped and its backend is closed.
func (l *Loop) Done() <-chan struct{} { return l.doneCh }

// Stop asks the loop to shut down; it never runs anything in the caller.
// Goroutine-safe; idempotent. Stop wins over start-up: "before startup"
// triggers still pending are abandoned and the rest of start-up is skipped.
// The shutdown: "before" triggers run (they may delay shutdown, up to
// Config.ShutdownTimeout; the loop sleeps meanwhile and still runs calls,
// timers and completions), then "during" triggers, then the calls queued so
// far, then every registered Resource is shut down (connections get
// ConnectionLost: connections first close gracefully, flushing their queues)
// and the loop waits for every in-flight op's final completion. Whatever has
// not finished by Config.DrainTimeout is shut down a second time with a reason
// matching ErrDrainTimeout and aborted (connections reset), so Run returns
// within the "before" triggers' time plus DrainTimeout plus a short bound.
// Meanwhile "after" triggers run, Call stops accepting, the
// calls accepted until then run and what they started is shut down and
// drained too, and the backend closes. Stop on a loop that never ran goes
// through the same shutdown (without the Startup event) and releases it.
func (l *Loop) Stop() {
	l.stopReq.Store(true)
	if l.state.CompareAndSwap(stateNew, stateStopping) {
		l.startCh <- nil
		return
	}
	l.wake()
}

// Call runs f on the loop at its next turn, before timers. Calls from one
// goroutine run in the order made. Goroutine-safe. Call accepts f for as long
// as the loop will still run calls — also during shutdown, so that a shutdown
// trigger may wait for work finished through Call — and every accepted f runs
// exactly once. Once the loop has passed the last point where it runs calls
// (after the "after shutdown" triggers), Call returns ErrStopped and f never
// runs. Calls made on the loop itself also wait for the next turn. A loop
// that is neither Run nor Stopped never runs its calls.
func (l *Loop) Call(f func()) error {
	l.callMu.Lock()
	if l.callsClosed {
		l.callMu.Unlock()
		return ErrStopped
	}
	l.calls = append(l.calls, f)
	l.callCount.Add(1)
	l.callMu.Unlock()
	if l.sleeping.Load() {
		l.wake()
	}
	return nil
}

// closeCalls makes Call refuse from now on; calls already accepted still run
// (at the next turn, or in shutdownBackend).
func (l *Loop) closeCalls() {
	l.callMu.Lock()
	l.callsClosed = true
	l.callMu.Unlock()
}

func (l *Loop) wake() {
	if !l.woken.Swap(true) && l.be != nil {
		_ = l.be.Wake()
	}
}

// Now is the loop's clock (monotonic). Loop goroutine, or anywhere for reading.
func (l *Loop) Now() time.Time { return time.Now() }

// CallLater runs f on the loop after d. d <= 0 runs it on the next turn, never
// synchronously. Loop goroutine only (use Call from elsewhere), or before Run.
func (l *Loop) CallLater(d time.Duration, f func()) clock.Call {
	l.mustOnLoop("CallLater", true)
	return l.timers.Schedule(time.Now().Add(d), f)
}

// PendingCalls is the number of scheduled delayed calls. Loop goroutine only.
func (l *Loop) PendingCalls() int {
	l.mustOnLoop("PendingCalls", true)
	return l.timers.Len()
}

// Track registers r to be shut down when the loop stops and returns a handle
// for Untrack. Loop goroutine only, or before Run. A resource tracked during
// shutdown is shut down exactly once too: with the others if they have not
// been shut down yet, otherwise within the current turn, right after the
// callback that tracked it returns (never inside Track).
func (l *Loop) Track(r Resource) int {
	l.mustOnLoop("Track", true)
	if l.resShut {
		l.late = append(l.late, r)
	}
	if n := len(l.freeRes); n > 0 {
		h := l.freeRes[n-1]
		l.freeRes = l.freeRes[:n-1]
		l.resources[h] = r
		return h
	}
	l.resources = append(l.resources, r)
	return len(l.resources) - 1
}

// Untrack forgets a resource registered with Track. Loop goroutine only.
func (l *Loop) Untrack(h int) {
	l.mustOnLoop("Untrack", true)
	if h < 0 || h >= len(l.resources) || l.resources[h] == nil {
		return
	}
	l.resources[h] = nil
	l.freeRes = append(l.freeRes, h)
}

// runLate shuts down the resources tracked after the others were shut down.
func (l *Loop) runLate() {
	for i := 0; i < len(l.late); i++ { // a Shutdown may track more
		r := l.late[i]
		l.late[i] = nil
		l.safe(func() { r.Shutdown(l.shutdownReason()) })
	}
	l.late = l.late[:0]
}

// AssertOnLoop is the loop-goroutine check of loop-only methods, for
// transports and protocols built on the loop: in builds with -race or
// -tags gyredebug it panics with an error wrapping ErrNotOnLoop and naming
// method (for example "Transport.Write") when called from another goroutine
// while the loop runs; in other builds it does nothing and costs nothing.
func (l *Loop) AssertOnLoop(method string) { l.mustOnLoop(method, true) }

// Stopping reports whether shutdown has begun. Loop goroutine only.
func (l *Loop) Stopping() bool {
	l.mustOnLoop("Stopping", true)
	return l.stopping
}

// Submit hands op to the backend; h gets its completions. It fills op.Token.
// Loop goroutine only. See backend.Backend for the ownership rules: op and its
// buffers belong to the backend until the final completion.
func (l *Loop) Submit(op *backend.Op, h Handler) error {
	l.mustOnLoop("Submit", false)
	var idx uint32
	if n := len(l.freeSlot); n > 0 {
		idx = l.freeSlot[n-1]
		l.freeSlot = l.freeSlot[:n-1]
	} else {
		l.slots = append(l.slots, slot{gen: 1})
		idx = uint32(len(l.slots) - 1)
	}
	s := &l.slots[idx]
	s.op, s.h = op, h
	op.Token = backend.MakeToken(idx, s.gen)
	if err := l.be.Submit(op); err != nil {
		l.freeSlotAt(idx)
		return err
	}
	l.inflight++
	return nil
}

func (l *Loop) freeSlotAt(idx uint32) {
	s := &l.slots[idx]
	s.gen++
	if s.gen == 0 {
		s.gen = 1
	}
	s.op, s.h = nil, nil
	l.freeSlot = append(l.freeSlot, idx)
}

// Cancel asks the backend to cancel the op named by tok; the op still reaches
// its final completion (usually -ECANCELED). Cancelling a finished op is a
// no-op. Loop goroutine only.
func (l *Loop) Cancel(tok backend.Token) {
	l.mustOnLoop("Cancel", false)
	idx := tok.Slot()
	if int(idx) >= len(l.slots) || l.slots[idx].gen != tok.Gen() || l.slots[idx].op == nil {
		return
	}
	var op *backend.Op
	if n := len(l.cancelOps); n > 0 {
		op = l.cancelOps[n-1]
		l.cancelOps = l.cancelOps[:n-1]
	} else {
		op = new(backend.Op)
	}
	*op = backend.Op{Kind: backend.KindCancel, Target: tok}
	if err := l.Submit(op, &l.cancelH); err != nil {
		l.cancelOps = append(l.cancelOps, op)
	}
}

type cancelHandler struct{ l *Loop }

func (h *cancelHandler) Complete(op *backend.Op, c *backend.Completion) {
	if !c.More() {
		h.l.cancelOps = append(h.l.cancelOps, op)
	}
}

// Flusher is flushed once at the end of the loop turn in which it asked for it.
type Flusher interface {
	Flush()
}

// FlushLater arranges for f.Flush to run once, just before the loop next waits
// for completions — after every callback of this turn — so that everything a
// connection queued in one turn leaves in one operation. Loop goroutine only;
// callers ask at most once per turn (they keep their own flag).
func (l *Loop) FlushLater(f Flusher) {
	l.mustOnLoop("FlushLater", false)
	l.flushers = append(l.flushers, f)
}

func (l *Loop) runFlush() {
	for i := 0; i < len(l.flushers); i++ {
		f := l.flushers[i]
		l.flushers[i] = nil
		l.safeFlush(f)
	}
	l.flushers = l.flushers[:0]
}

// InFlight is the number of ops submitted and not yet finally completed.
// Loop goroutine only.
func (l *Loop) InFlight() int {
	l.mustOnLoop("InFlight", true)
	return l.inflight
}

// ReportError hands err to the loop's error hook (Config.OnError, default: log).
// Goroutine-safe if the hook is.
func (l *Loop) ReportError(err error) {
	var pe *PanicError
	if errors.As(err, &pe) {
		l.pub.panics.Add(1)
	}
	if l.onError != nil {
		l.onError(err)
		return
	}
	l.log.Error("gyre: loop error", "err", err)
}

// PanicError wraps a value recovered from a panicking callback.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("gyre: callback panicked: %v", e.Value) }

// Unwrap returns the panic value if it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Recovered turns a recovered panic value into a *PanicError (nil for nil).
func Recovered(v any) error {
	if v == nil {
		return nil
	}
	buf := make([]byte, 4096)
	buf = buf[:runtime.Stack(buf, false)]
	return &PanicError{Value: v, Stack: buf}
}

func (l *Loop) safe(f func()) {
	defer func() {
		if err := Recovered(recover()); err != nil {
			l.ReportError(err)
		}
	}()
	f()
}

func (l *Loop) safeFlush(f Flusher) {
	defer func() {
		if err := Recovered(recover()); err != nil {
			l.ReportError(err)
		}
	}()
	f.Flush()
}

func (l *Loop) dispatch(c *backend.Completion) {
	idx := c.Token.Slot()
	if int(idx) >= len(l.slots) {
		l.releaseBuf(c)
		return
	}
	s := &l.slots[idx]
	if s.gen != c.Token.Gen() || s.op == nil {
		// Stale: the op is gone (cannot happen for a correct backend, but a
		// completion must never reach a new owner of the slot).
		l.releaseBuf(c)
		return
	}
	op, h := s.op, s.h
	if !c.More() {
		l.freeSlotAt(idx)
		l.inflight--
	}
	defer l.releaseBuf(c)
	defer func() {
		if err := Recovered(recover()); err != nil {
			l.ReportError(err)
		}
	}()
	h.Complete(op, c)
}

func (l *Loop) releaseBuf(c *backend.Completion) {
	if c.Flags&backend.FlagBuffer != 0 {
		l.be.ReleaseBuffer(c.BufID)
		c.Flags &^= backend.FlagBuffer
	}
}

func (l *Loop) runCalls() {
	if l.callCount.Load() == 0 {
		return
	}
	l.callMu.Lock()
	batch := l.calls
	l.calls = l.spare[:0]
	l.callCount.Store(0)
	l.callMu.Unlock()
	for i, f := range batch {
		l.safe(f)
		batch[i] = nil
	}
	l.spare = batch[:0]
}

func (l *Loop) runTimers(now time.Time) {
	seq := l.timers.Seq() + 1
	for {
		f, ok := l.timers.PopDue(now, seq)
		if !ok {
			return
		}
		l.safe(f)
	}
}

// turn runs one iteration: calls, due timers, then one wait for completions of
// at most maxWait (negative: until the next timer or a wake).
func (l *Loop) turn(maxWait time.Duration) error {
	l.turns++
	called := l.callCount.Load() != 0
	l.runCalls()
	// Reading the clock costs ~100 ns on some VMs: only with timers pending,
	// and once per turn.
	var now time.Time
	if l.timers.Len() > 0 {
		now = time.Now()
		l.runTimers(now)
	}
	l.runLate()
	l.runFlush()
	if maxWait != 0 && l.yieldIfDue(called) {
		// Before the loop computes its timeout and says it sleeps, so that
		// what happened meanwhile (a Call, time passing) is seen below.
		now = time.Time{}
	}
	timeout := maxWait
	if next, ok := l.timers.Next(); ok {
		if now.IsZero() {
			now = time.Now()
		}
		d := max(next.Sub(now), 0)
		if timeout < 0 || d < timeout {
			timeout = d
		}
	}
	if timeout != 0 {
		l.sleeping.Store(true)
		if l.callCount.Load() != 0 || len(l.flushers) != 0 || l.progress || l.stopReq.Load() && !l.stopping {
			timeout = 0
		}
	}
	l.progress = false
	l.publish()
	n, err := l.be.Wait(l.comps, timeout)
	l.sleeping.Store(false)
	l.woken.Store(false)
	if err != nil {
		return err
	}
	l.ctr.completions += uint64(n)
	l.ctr.maxBatch = max(l.ctr.maxBatch, uint64(n))
	for i := 0; i < n; i++ {
		l.dispatch(&l.comps[i])
		l.comps[i] = backend.Completion{}
	}
	l.runLate()
	return nil
}

// yieldEvery bounds how long the loop goroutine runs without passing through
// the Go scheduler; with yieldCheck it must stay well below the runtime's
// forcePreemptNS (10 ms, runtime/proc.go).
const yieldEvery = 5 * time.Millisecond

// The clock is read before every blocking turn while turns are slow, and
// only before every yieldCheck-th one after the turns since the last read
// took less than yieldFast (a read costs ~50 ns on some VMs, a ping-pong
// turn ~10 µs).
const (
	yieldCheck = 8
	yieldFast  = time.Millisecond
)

// yieldIfDue, called before each wait that may block, calls runtime.Gosched
// if the loop goroutine has not been through the scheduler for yieldEvery,
// or if the turn ran calls (called) and the runtime has a single P; it
// reports whether it yielded.
//
// Without the periodic yield a busy loop, which blocks only inside system
// calls and so never leaves its goroutine, keeps one scheduling tick for
// ever. Once that tick is 10 ms old, sysmon takes the loop's P away from
// every blocking wait it sees (runtime retake: "running the same goroutine
// too long", and a goroutine in a system call cannot be preempted): a futex
// wake of another M that spins and parks, sysmon back at its 20 µs period,
// and the loop thread waking sysmon again as it leaves the wait — several
// extra thread wake-ups per request on the loop's CPU. A yield on the locked thread costs two futex
// wake-ups; once per yieldEvery it is noise. A loop that turns less often
// than every yieldEvery does not yield at all.
//
// With a single P (GOMAXPROCS 1: a one-CPU container, a pinned server) a
// loop blocked in its wait holds the only P, so a goroutine a call made
// runnable (the caller waiting for its answer) runs only once sysmon takes
// the P away, one or two sysmon ticks later; yielding first lets it run at
// once (BenchmarkWakeLatency pinned to one CPU: about 4× faster).
func (l *Loop) yieldIfDue(called bool) bool {
	if called && l.oneP {
		runtime.Gosched()
		l.yields++
		return true
	}
	if l.yieldSkip > 0 {
		l.yieldSkip--
		return false
	}
	if l.clock0.IsZero() {
		// The first check finds the loop neither busy nor due.
		l.clock0 = time.Now()
		l.lastCheck, l.lastProcs = -yieldEvery, -yieldEvery
	}
	now := time.Since(l.clock0) // monotonic only: one clock read
	if now-l.lastProcs >= yieldEvery {
		// GOMAXPROCS(0) takes the scheduler's lock: read it once per
		// yieldEvery, not at every check (it changes rarely: a program's
		// call, or the runtime following a container's CPU limit).
		l.oneP, l.lastProcs = runtime.GOMAXPROCS(0) == 1, now
	}
	since := now - l.lastCheck
	l.lastCheck = now
	if since < yieldFast {
		l.yieldSkip = yieldCheck - 1
	}
	// A loop that waited yieldEvery or longer since the last check is not
	// busy: its waits are long and sysmon's retake costs it no more than a
	// yield would (a wait of 10 ms is retaken anyway).
	if since >= yieldEvery || now-l.lastYield < yieldEvery {
		return false
	}
	runtime.Gosched()
	l.yields++
	l.lastYield = time.Since(l.clock0)
	return true
}

func (l *Loop) run(ctx context.Context) error {
	if ctx.Done() != nil {
		stopCtx := context.AfterFunc(ctx, l.Stop)
		defer stopCtx()
	}
	l.fireEvent(Startup)
	for !l.stopReq.Load() {
		if err := l.turn(-1); err != nil {
			l.ReportError(fmt.Errorf("gyre/reactor: backend wait: %w", err))
			l.stopReq.Store(true)
		}
	}
	l.shutdown()
	return nil
}

// shutdown runs the Shutdown event (see Stop).
func (l *Loop) shutdown() {
	l.stopReq.Store(true)
	l.state.Store(stateStopping)
	l.stopping = true
	l.fireEvent(Shutdown)
}

// abortBound bounds the wait, after resources were told to abort, for their
// cancelled ops to complete (cancellation completes within a turn or two on
// both backends; this only guards against a broken backend).
const abortBound = time.Second

// drain ends everything the loop still runs at shutdown: it turns the loop
// until no op is in flight, no call is queued and no timer is due, or until
// graceEnd; then it shuts every still-tracked resource down a second time with
// errAbort (they reset and close) and turns again for at most abortBound.
// Whatever is still in flight after that is logged and left to the backend's
// Close.
func (l *Loop) drain(graceEnd time.Time) {
	if l.drainUntil(graceEnd) {
		return
	}
	if !l.aborting {
		l.aborting = true
		l.log.Warn("gyre: shutdown drain timed out, aborting what is left", "inflight", l.inflight)
	}
	l.shutdownResources()
	if l.drainUntil(time.Now().Add(min(abortBound, l.cfg.DrainTimeout))) {
		return
	}
	l.log.Warn("gyre: ops still in flight after aborting at shutdown", "inflight", l.inflight)
}

// drainUntil turns the loop until nothing is left to run or the deadline
// passes; it reports whether nothing is left.
func (l *Loop) drainUntil(deadline time.Time) bool {
	for l.inflight > 0 || l.callCount.Load() > 0 || l.timerDue() {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		if err := l.turn(min(left, 50*time.Millisecond)); err != nil {
			return false
		}
	}
	return true
}

// timerDue reports whether a delayed call is due now (a resource's next step
// scheduled with CallLater(0), a Shutdown for a resource tracked late).
func (l *Loop) timerDue() bool {
	next, ok := l.timers.Next()
	return ok && !next.After(time.Now())
}

// errAbort is the reason of the second, aborting Shutdown stage.
var errAbort = fmt.Errorf("%w: %w", ErrStopped, ErrDrainTimeout)

// ErrDrainTimeout: the graceful part of shutdown did not finish within
// Config.DrainTimeout; resources still open are aborted. A Resource's second
// Shutdown call has a reason matching it (and ErrStopped).
var ErrDrainTimeout = errors.New("gyre/reactor: shutdown drain timed out")

// shutdownReason is the reason Resources get at the current shutdown stage.
func (l *Loop) shutdownReason() error {
	if l.aborting {
		return errAbort
	}
	return ErrStopped
}

func (l *Loop) shutdownBackend() {
	if l.be == nil {
		return
	}
	// Refuse further calls; run the ones that raced in so none is lost silently
	// after having been accepted.
	l.callMu.Lock()
	l.stopReq.Store(true)
	l.callsClosed = true
	l.callMu.Unlock()
	l.runCalls()
	l.warnKept()
	_ = l.be.Close()
	l.publish()
}

// Sizes is the backend configuration the loop was made with, defaults
// filled in (e.g. the provided-buffer size a datagram transport's receive
// room depends on). Goroutine-safe.
func (l *Loop) Sizes() backend.Config { return l.cfg.Sizes }
