// Package hist is a log-linear (HDR-style) latency histogram: exact below 256,
// then 128 linear sub-buckets per power of two, so a reported value is within
// 0.4% of a recorded one. Recording is a few instructions and never allocates.
package hist

import (
	"math"
	"math/bits"
	"time"
)

const (
	subBits = 8
	sub     = 1 << subBits // values below this are exact
	half    = sub >> 1     // sub-buckets per power of two above sub
	nBucket = (64-subBits)*half + sub
)

// Histogram counts non-negative values (nanoseconds, by convention). The zero
// value is ready to use. Not goroutine-safe: give each goroutine its own and
// Merge them.
type Histogram struct {
	counts [nBucket]uint64
	n      uint64
	sum    float64
	min    uint64
	max    uint64
}

// index maps v to its bucket.
func index(v uint64) int {
	if v < sub {
		return int(v)
	}
	g := bits.Len64(v) - subBits // >= 1
	return g<<(subBits-1) + int(v>>uint(g))
}

// bounds returns the smallest and largest value of bucket i.
func bounds(i int) (lo, hi uint64) {
	if i < sub {
		return uint64(i), uint64(i)
	}
	g := i>>(subBits-1) - 1
	m := uint64(i - g<<(subBits-1))
	return m << uint(g), (m+1)<<uint(g) - 1
}

// Record adds one value.
func (h *Histogram) Record(v uint64) {
	h.counts[index(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// RecordDuration adds d in nanoseconds (negative durations count as 0).
func (h *Histogram) RecordDuration(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.Record(uint64(d))
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Min is the smallest recorded value (0 when empty).
func (h *Histogram) Min() uint64 { return h.min }

// Max is the largest recorded value (0 when empty).
func (h *Histogram) Max() uint64 { return h.max }

// Mean is the exact mean of the recorded values (NaN when empty).
func (h *Histogram) Mean() float64 {
	if h.n == 0 {
		return math.NaN()
	}
	return h.sum / float64(h.n)
}

// Quantile returns the value at quantile q in [0, 1]: the middle of the bucket
// holding the ceil(q·n)-th smallest value, clamped to [Min, Max]. It returns 0
// for an empty histogram.
func (h *Histogram) Quantile(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bounds(i)
			v := lo + (hi-lo)/2
			if v < h.min {
				v = h.min
			}
			if v > h.max {
				v = h.max
			}
			return v
		}
	}
	return h.max
}

// QuantileDuration is Quantile as a time.Duration.
func (h *Histogram) QuantileDuration(q float64) time.Duration {
	return time.Duration(h.Quantile(q))
}
