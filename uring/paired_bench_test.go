package uring_test

import (
	"slices"
	"testing"

	"github.com/gyre-io/gyre/uring"
	"golang.org/x/sys/unix"
)

// BenchmarkLeverPaired measures one set-up lever as a paired comparison on a
// shared, noisy machine: two rings on the same thread, one with the lever and
// one without, alternate in short blocks, and each block's thread CPU time
// (CLOCK_THREAD_CPUTIME_ID, exact) is taken. Each b.N iteration is one pair
// of blocks; the reported ratio is the median over pairs of lever ÷ no lever
// (< 1: the lever saves CPU), and the ns/op figures are per enter (or per
// nop) with and without the lever.
func BenchmarkLeverPaired(b *testing.B) {
	levers := []struct {
		name     string
		with, wo uring.Options
	}{
		{"regring", uring.Options{RegisterRing: true}, uring.Options{}},
		{"nosqarray", uring.Options{}, uring.Options{KeepSQArray: true}},
		// Two identical rings: how far from 1 the method itself strays.
		{"control", uring.Options{}, uring.Options{}},
	}
	works := []struct {
		name string
		ops  int // counted per block
		run  func(b *testing.B, r *uring.Ring, out []uring.CQE)
	}{
		// An enter that submits nothing and finds nothing: the fixed cost.
		{"enter", 512, func(b *testing.B, r *uring.Ring, out []uring.CQE) {
			for range 512 {
				if _, err := r.Submit(); err != nil {
					b.Fatal(err)
				}
			}
		}},
		// 32 nops per enter, reaped: the per-SQE cost.
		{"nop32", 32 * 16, func(b *testing.B, r *uring.Ring, out []uring.CQE) {
			for range 16 {
				for range 32 {
					s := r.GetSQE()
					s.PrepNop()
				}
				if _, err := r.SubmitAndWait(32, -1); err != nil {
					b.Fatal(err)
				}
				r.Reap(out)
			}
		}},
	}
	for _, lv := range levers {
		for _, w := range works {
			b.Run(lv.name+"/"+w.name, func(b *testing.B) {
				lv.with.Entries, lv.wo.Entries = 64, 64
				ra := newRing(b, lv.with)
				rb := newRing(b, lv.wo)
				out := make([]uring.CQE, 64)
				var ta, tb int64
				ratios := make([]float64, 0, b.N)
				for i := 0; b.Loop(); i++ {
					// Alternate which ring goes first.
					first, second := ra, rb
					if i%2 == 1 {
						first, second = rb, ra
					}
					t0 := threadClock(b)
					w.run(b, first, out)
					t1 := threadClock(b)
					w.run(b, second, out)
					t2 := threadClock(b)
					a, c := t1-t0, t2-t1
					if i%2 == 1 {
						a, c = c, a
					}
					ta += a
					tb += c
					ratios = append(ratios, float64(a)/float64(c))
				}
				slices.Sort(ratios)
				n := float64(len(ratios) * w.ops)
				b.ReportMetric(float64(ta)/n, "with-ns/op")
				b.ReportMetric(float64(tb)/n, "without-ns/op")
				b.ReportMetric(ratios[len(ratios)/2], "median-ratio")
			})
		}
	}
}

// threadClock is the calling thread's CPU time in nanoseconds
// (CLOCK_THREAD_CPUTIME_ID: exact, unlike the tick-sampled user/system split
// of threadCPU).
func threadClock(b *testing.B) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return ts.Nano()
}
