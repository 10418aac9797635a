package uring_test

import (
	"testing"
	"time"

	"github.com/gyre-io/gyre/uring"
	"golang.org/x/sys/unix"
)

// Benchmarks run on every ring kind (ours; giouring with the build tag), through
// the testRing interface so both pay the same adapter cost.

func forEachRingB(b *testing.B, f func(b *testing.B, r testRing)) {
	for _, k := range ringKinds {
		if k.name == "uring-coop" || k.name == "uring-plain" {
			continue // benchmark the default setup (and its levers) only
		}
		b.Run(k.name, func(b *testing.B) {
			r := k.open(b, 64, 256) // locks the goroutine to its thread
			b.ReportAllocs()
			u0, s0 := threadCPU(b)
			c0 := threadClock(b)
			f(b, r)
			c1 := threadClock(b)
			u1, s1 := threadCPU(b)
			// CPU time of this thread per op, split user/kernel: less
			// disturbed than wall time by other processes on a shared
			// machine (time the thread spends preempted is not counted).
			b.ReportMetric(float64(u1-u0)/float64(b.N), "usr-ns/op")
			b.ReportMetric(float64(s1-s0)/float64(b.N), "sys-ns/op")
			b.ReportMetric(float64(c1-c0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// reapN waits for and consumes exactly n completions.
func reapN(b *testing.B, r testRing, out []uring.CQE, n int) {
	got := 0
	for got < n {
		if err := r.Wait(1, time.Second); err != nil {
			b.Fatal(err)
		}
		got += r.Reap(out[:n-got])
	}
}

func BenchmarkNop(b *testing.B) {
	forEachRingB(b, func(b *testing.B, r testRing) {
		out := make([]uring.CQE, 1)
		for b.Loop() {
			if err := r.Nop(1); err != nil {
				b.Fatal(err)
			}
			reapN(b, r, out, 1)
		}
	})
}

func BenchmarkNopBatch32(b *testing.B) {
	forEachRingB(b, func(b *testing.B, r testRing) {
		out := make([]uring.CQE, 32)
		for b.Loop() {
			for i := 0; i < 32; i++ {
				if err := r.Nop(uint64(i)); err != nil {
					b.Fatal(err)
				}
			}
			reapN(b, r, out, 32)
		}
	})
}

// BenchmarkSocketpairRoundTrip sends 64 bytes one way and receives them, both
// through the ring, per iteration.
func BenchmarkSocketpairRoundTrip(b *testing.B) {
	forEachRingB(b, func(b *testing.B, r testRing) {
		sv, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer unix.Close(sv[0])
		defer unix.Close(sv[1])
		msg := make([]byte, 64)
		buf := make([]byte, 64)
		out := make([]uring.CQE, 2)
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			if err := r.Send(1, sv[0], msg); err != nil {
				b.Fatal(err)
			}
			if err := r.Recv(2, sv[1], buf); err != nil {
				b.Fatal(err)
			}
			reapN(b, r, out, 2)
		}
	})
}

// threadCPU is the calling thread's user and system CPU time in nanoseconds.
func threadCPU(b *testing.B) (usr, sys int64) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		b.Fatal(err)
	}
	return unix.TimevalToNsec(ru.Utime), unix.TimevalToNsec(ru.Stime)
}
