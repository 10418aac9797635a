package reactor_test

import (
	"testing"
	"time"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
)

func benchBackends(b *testing.B, f func(b *testing.B, h *reactortest.Loop)) {
	for _, k := range []reactor.BackendKind{reactor.Uring, reactor.Epoll} {
		b.Run(k.String(), func(b *testing.B) {
			h := reactortest.Start(b, k)
			f(b, h)
		})
	}
}

// BenchmarkCallLaterCancel schedules and cancels a delayed call on the loop.
func BenchmarkCallLaterCancel(b *testing.B) {
	benchBackends(b, func(b *testing.B, h *reactortest.Loop) {
		f := func() {}
		b.ReportAllocs()
		h.Do(func() {
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c := h.CallLater(time.Hour, f)
				c.Cancel()
			}
			b.StopTimer()
		})
	})
}

// BenchmarkCallThroughput measures Call from another goroutine: b.N calls,
// then wait until the last one ran.
func BenchmarkCallThroughput(b *testing.B) {
	benchBackends(b, func(b *testing.B, h *reactortest.Loop) {
		n := 0
		f := func() { n++ }
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			_ = h.Call(f)
		}
		done := make(chan struct{})
		_ = h.Call(func() { close(done) })
		<-done
	})
}

// BenchmarkWakeLatency measures one round trip into an idle (sleeping) loop:
// Call, the loop wakes and runs it, the caller is signalled.
func BenchmarkWakeLatency(b *testing.B) {
	benchBackends(b, func(b *testing.B, h *reactortest.Loop) {
		ch := make(chan struct{}, 1)
		f := func() { ch <- struct{}{} }
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			_ = h.Call(f)
			<-ch
		}
	})
}
