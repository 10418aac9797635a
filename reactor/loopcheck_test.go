package reactor_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/reactortest"
)

// misuse runs f and returns the error it panicked with (nil if it did not).
func misuse(f func()) (err error) {
	defer func() {
		if v := recover(); v != nil {
			e, ok := v.(error)
			if !ok {
				e = fmt.Errorf("panic: %v", v)
			}
			err = e
		}
	}()
	f()
	return nil
}

type nopFlusher struct{}

func (nopFlusher) Flush() {}

// Loop-only methods called from another goroutine while the loop runs fail
// loudly, naming the method, in builds with -race or -tags gyredebug; on the
// loop (and, for set-up methods, before Run) they work.
func TestLoopOnlyMethodsOffLoopPanic(t *testing.T) {
	if !reactor.LoopChecks {
		t.Skip("loop-goroutine checks are built only with -race or -tags gyredebug")
	}
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		// Before Run, set-up methods may be called from the creating goroutine.
		l, _ := newLoop(t, kind, reactor.Config{})
		require.NoError(t, misuse(func() {
			l.CallLater(time.Hour, func() {})
			l.AddTrigger(reactor.Startup, reactor.During, func() {})
			l.Untrack(l.Track(&closer{}))
		}))
		l.Stop()
		<-l.Done()

		h := reactortest.Start(t, kind)
		h.Do(func() {}) // the loop runs
		op := &backend.Op{Kind: backend.KindNop}
		methods := map[string]func(){
			"CallLater":                func() { h.CallLater(time.Hour, func() {}) },
			"PendingCalls":             func() { _ = h.PendingCalls() },
			"Track":                    func() { h.Track(&closer{}) },
			"Untrack":                  func() { h.Untrack(0) },
			"Stopping":                 func() { _ = h.Stopping() },
			"Submit":                   func() { _ = h.Submit(op, &recvHandler{}) },
			"Cancel":                   func() { h.Cancel(op.Token) },
			"FlushLater":               func() { h.FlushLater(nopFlusher{}) },
			"InFlight":                 func() { _ = h.InFlight() },
			"AddSystemEventTrigger":    func() { h.AddTrigger(reactor.Shutdown, reactor.After, func() {}) },
			"RemoveSystemEventTrigger": func() { h.RemoveSystemEventTrigger(reactor.TriggerID{}) },
		}
		for name, f := range methods {
			err := misuse(f)
			require.ErrorIs(t, err, reactor.ErrNotOnLoop, name)
			require.ErrorContains(t, err, "Loop."+name, name)
		}
		// The same calls on the loop are fine.
		h.Do(func() {
			require.NoError(t, misuse(func() {
				c := h.CallLater(time.Hour, func() {})
				c.Cancel()
				_ = h.PendingCalls()
				h.Untrack(h.Track(&closer{}))
				_ = h.Stopping()
				_ = h.InFlight()
			}))
		})
		// A trigger's done called off the loop is caught too.
		doneCh := make(chan func(), 1)
		h.Do(func() {
			h.AddSystemEventTrigger(reactor.Shutdown, reactor.Before, func(done func()) { doneCh <- done })
		})
		h.Stop()
		done := <-doneCh
		err := misuse(done)
		require.ErrorIs(t, err, reactor.ErrNotOnLoop)
		require.ErrorContains(t, err, "trigger done")
		require.NoError(t, h.Call(done))
		h.StopWait()
	})
}
