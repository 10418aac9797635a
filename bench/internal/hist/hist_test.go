package hist

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIndexBoundsRoundTrip(t *testing.T) {
	prevHi := uint64(0)
	for i := 0; i < nBucket; i++ {
		lo, hi := bounds(i)
		require.LessOrEqual(t, lo, hi, "bucket %d", i)
		if i > 0 {
			require.Equal(t, prevHi+1, lo, "buckets must be contiguous at %d", i)
		}
		require.Equal(t, i, index(lo), "lo of %d", i)
		require.Equal(t, i, index(hi), "hi of %d", i)
		prevHi = hi
	}
	require.Equal(t, uint64(math.MaxUint64), prevHi)
	require.Equal(t, nBucket-1, index(math.MaxUint64))
}

func TestExactBelowSub(t *testing.T) {
	var h Histogram
	for v := uint64(1); v <= 100; v++ {
		h.Record(v)
	}
	require.Equal(t, uint64(50), h.Quantile(0.5))
	require.Equal(t, uint64(99), h.Quantile(0.99))
	require.Equal(t, uint64(100), h.Quantile(0.999))
	require.Equal(t, uint64(1), h.Min())
	require.Equal(t, uint64(100), h.Max())
	require.InDelta(t, 50.5, h.Mean(), 1e-9)
}

func TestQuantilesAgainstSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	vals := make([]uint64, 200000)
	for i := range vals {
		// log-normal-ish latencies from ~1 µs to ~100 ms
		v := uint64(math.Exp(7 + 5*r.Float64() + r.NormFloat64()))
		vals[i] = v
		h.Record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 0.9999} {
		want := vals[int(math.Ceil(q*float64(len(vals))))-1]
		got := h.Quantile(q)
		require.InEpsilon(t, float64(want), float64(got), 0.005, "q=%v", q)
	}
	require.Equal(t, vals[0], h.Quantile(0))
	require.Equal(t, vals[len(vals)-1], h.Quantile(1))
}

func TestMergeEqualsCombined(t *testing.T) {
	var a, b, all Histogram
	for v := uint64(0); v < 10000; v += 7 {
		a.Record(v * 13)
		all.Record(v * 13)
	}
	for v := uint64(0); v < 5000; v += 3 {
		b.Record(v * 1000)
		all.Record(v * 1000)
	}
	a.Merge(&b)
	require.Equal(t, all.Count(), a.Count())
	require.Equal(t, all.Min(), a.Min())
	require.Equal(t, all.Max(), a.Max())
	for _, q := range []float64{0.1, 0.5, 0.99, 0.999} {
		require.Equal(t, all.Quantile(q), a.Quantile(q))
	}
	var empty Histogram
	require.Equal(t, uint64(0), empty.Quantile(0.5))
	require.True(t, math.IsNaN(empty.Mean()))
	a.Reset()
	require.Equal(t, uint64(0), a.Count())
}

func BenchmarkRecord(b *testing.B) {
	b.ReportAllocs()
	var h Histogram
	for i := 0; i < b.N; i++ {
		h.Record(uint64(i) * 997)
	}
}
