package stream

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// fill returns n bytes of a recognisable pattern starting at tag.
func fill(n int, tag byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = tag + byte(i%251)
	}
	return p
}

// ownedRec tracks one owned buffer in the property test.
type ownedRec struct {
	end      int // offset in the expected stream just past the buffer
	buf      []byte
	releases int
	err      error
}

// TestWriteQueueRandomInterleavings drives the queue with seeded random
// mixes of Write, WriteBuffers, WriteOwned (small and zero-copy sized),
// short sends, zero-copy sends with late or early notifications and refused
// zero-copy sends, and checks: every byte comes out once and in order; every
// owned buffer is released exactly once with nil, only after its last byte
// went out and after its notification; Buffered always equals accepted minus
// sent. A released owned buffer is scribbled over, so a queue that still read
// it would corrupt the output.
func TestWriteQueueRandomInterleavings(t *testing.T) {
	n := uint64(100)
	if testing.Short() {
		n = 20
	}
	for seed := uint64(1); seed <= n; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runRandomQueue(t, seed) })
	}
}

func runRandomQueue(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed*7919))
	var q WriteQueue
	var want, got []byte
	var recs []*ownedRec
	var zcRec *ownedRec // the buffer whose notification is outstanding
	notifDue := false
	accepted, sent := 0, 0
	tag := byte(0)

	check := func() {
		require.Equal(t, accepted-sent, q.Buffered(), "Buffered")
		require.Equal(t, notifDue, q.NotifyPending())
	}
	steps := 300 + rng.IntN(300)
	for step := 0; ; step++ {
		if step >= steps && q.Buffered() == 0 && !notifDue {
			break
		}
		require.Less(t, step, 100000, "queue does not drain")
		op := rng.IntN(10)
		if step >= steps {
			op = 6 + rng.IntN(4) // only send and notify from here
		}
		tag++
		switch op {
		case 0, 1: // Write
			p := fill(rng.IntN(3000), tag)
			q.Write(p)
			want = append(want, p...)
			accepted += len(p)
			clear(p) // copied: the caller may reuse it at once
		case 2: // WriteBuffers
			a, b := fill(rng.IntN(100), tag), fill(rng.IntN(100), tag+1)
			q.WriteBuffers([][]byte{a, b})
			want = append(append(want, a...), b...)
			accepted += len(a) + len(b)
		case 3, 4, 5: // WriteOwned, sometimes zero-copy sized
			n := 1 + rng.IntN(4000)
			if rng.IntN(3) == 0 {
				n = ZeroCopyMin + rng.IntN(ZeroCopyMin)
			}
			p := fill(n, tag)
			want = append(want, p...)
			accepted += n
			r := &ownedRec{end: len(want), buf: p}
			recs = append(recs, r)
			require.True(t, q.WriteOwned(p, func(err error) {
				r.releases++
				r.err = err
				require.GreaterOrEqual(t, len(got), r.end, "released before its bytes were sent")
				require.False(t, r == zcRec && notifDue, "released before its notification")
				for i := range r.buf {
					r.buf[i] = 0xEE // the caller reuses it
				}
			}))
		case 6, 7, 8: // the kernel sends (part of) the next chunk
			var chunk []byte
			var zc bool
			if vec := rng.IntN(2) == 0; vec {
				// A vectored send of what NextBufs gathers.
				bufs, vzc := q.NextBufs(make([][]byte, 0, 1+rng.IntN(6)))
				if len(bufs) > 1 {
					require.False(t, vzc)
					all := bytes.Join(bufs, nil)
					n := len(all)
					if rng.IntN(2) == 0 {
						n = rng.IntN(len(all) + 1)
					}
					got = append(got, all[:n]...)
					sent += n
					q.Sent(n)
					break
				}
				if len(bufs) == 1 {
					chunk, zc = bufs[0], vzc
				}
			} else {
				chunk, zc = q.Next()
			}
			if chunk == nil {
				require.Equal(t, 0, q.Buffered())
				break
			}
			if zc {
				require.GreaterOrEqual(t, len(chunk), ZeroCopyMin)
				require.False(t, notifDue, "zero copy offered while a notification is outstanding")
			}
			n := len(chunk)
			if rng.IntN(2) == 0 {
				n = rng.IntN(len(chunk) + 1) // short send, possibly 0
			}
			if zc && rng.IntN(2) == 0 {
				// A zero-copy send. The head owned buffer is the chunk.
				var head *ownedRec
				for _, r := range recs {
					if r.releases == 0 && len(got) < r.end {
						head = r
						break
					}
				}
				require.NotNil(t, head)
				notify := rng.IntN(5) != 0
				if notify {
					zcRec, notifDue = head, true
				}
				if rng.IntN(8) == 0 { // refused
					q.SentZeroCopy(0, notify)
					q.ZeroCopyRefused()
				} else {
					got = append(got, chunk[:n]...)
					sent += n
					q.SentZeroCopy(n, notify)
				}
				break
			}
			got = append(got, chunk[:n]...)
			sent += n
			q.Sent(n)
		case 9: // the zero-copy notification arrives
			if notifDue {
				notifDue = false
				q.Notified()
			}
		}
		check()
	}
	require.True(t, bytes.Equal(want, got), "stream differs (len want %d got %d)", len(want), len(got))
	for i, r := range recs {
		require.Equal(t, 1, r.releases, "owned buffer %d releases", i)
		require.NoError(t, r.err, "owned buffer %d", i)
	}
	chunk, _ := q.Next()
	require.Nil(t, chunk)
}

func TestWriteQueueOrderCopiedBeforeOwned(t *testing.T) {
	var q WriteQueue
	q.Write([]byte("ab"))
	q.WriteOwned([]byte("CD"), nil)
	q.Write([]byte("ef"))
	q.WriteOwned([]byte("GH"), nil)
	var out []byte
	var chunks []string
	for {
		c, zc := q.Next()
		if c == nil {
			break
		}
		require.False(t, zc)
		chunks = append(chunks, string(c))
		out = append(out, c[:1]...)
		q.Sent(1) // one byte at a time
	}
	require.Equal(t, "abCDefGH", string(out))
	require.Equal(t, []string{"ab", "b", "CD", "D", "ef", "f", "GH", "H"}, chunks)
}

func TestWriteQueueWriteWhileInFlight(t *testing.T) {
	var q WriteQueue
	q.Write([]byte("hello"))
	c, _ := q.Next()
	q.Write([]byte(" world")) // must not touch the in-flight chunk
	require.Equal(t, "hello", string(c))
	c2, _ := q.Next() // same chunk until Sent
	require.Equal(t, "hello", string(c2))
	q.Sent(2)
	c, _ = q.Next()
	require.Equal(t, "llo", string(c))
	q.Sent(3)
	c, _ = q.Next()
	require.Equal(t, " world", string(c))
	q.Sent(6)
	c, _ = q.Next()
	require.Nil(t, c)
	require.Equal(t, 0, q.Buffered())
}

func TestWriteQueueEmptyOwned(t *testing.T) {
	var q WriteQueue
	called := false
	require.False(t, q.WriteOwned(nil, func(error) { called = true }))
	require.False(t, called)
	require.Equal(t, 0, q.Buffered())
}

func TestWriteQueueZeroCopyNotifAfterCompletion(t *testing.T) {
	var q WriteQueue
	p := fill(ZeroCopyMin, 1)
	var rel []error
	q.WriteOwned(p, func(err error) { rel = append(rel, err) })
	c, zc := q.Next()
	require.True(t, zc)
	require.Len(t, c, ZeroCopyMin)
	q.SentZeroCopy(len(c), true)
	require.Empty(t, rel, "released before the notification")
	require.Equal(t, 0, q.Buffered())
	require.True(t, q.NotifyPending())
	c, _ = q.Next()
	require.Nil(t, c)
	q.Notified()
	require.Equal(t, []error{nil}, rel)
	q.Notified() // a stray second one does nothing
	require.Len(t, rel, 1)
}

func TestWriteQueueZeroCopyNotifBeforeCompletion(t *testing.T) {
	var q WriteQueue
	p := fill(2*ZeroCopyMin, 1)
	p2 := fill(ZeroCopyMin, 2)
	var rel []string
	q.WriteOwned(p, func(err error) { rel = append(rel, fmt.Sprint("p:", err)) })
	q.WriteOwned(p2, func(err error) { rel = append(rel, fmt.Sprint("p2:", err)) })
	_, zc := q.Next()
	require.True(t, zc)
	q.SentZeroCopy(ZeroCopyMin, true) // short zero-copy send
	c, zc := q.Next()
	require.Len(t, c, ZeroCopyMin)
	require.False(t, zc, "no second zero-copy send while a notification is outstanding")
	q.Notified() // the notification comes before the rest is sent
	require.Empty(t, rel)
	c, zc = q.Next()
	require.True(t, zc, "the notification frees zero copy again")
	q.Sent(len(c)) // sent by copying after all
	require.Equal(t, []string{"p:<nil>"}, rel)
	c, zc = q.Next()
	require.True(t, zc)
	q.SentZeroCopy(len(c), false) // no notification follows
	require.Equal(t, []string{"p:<nil>", "p2:<nil>"}, rel)
}

func TestWriteQueueZeroCopyRefused(t *testing.T) {
	var q WriteQueue
	q.WriteOwned(fill(ZeroCopyMin, 1), nil)
	_, zc := q.Next()
	require.True(t, zc)
	q.SentZeroCopy(0, false)
	q.ZeroCopyRefused()
	c, zc := q.Next()
	require.False(t, zc, "a refused buffer goes out by copying")
	require.Len(t, c, ZeroCopyMin)
}

func TestWriteQueueDropReleasesOnce(t *testing.T) {
	reason := errors.New("gone")
	var q WriteQueue
	counts := make([]int, 4)
	errs := make([]error, 4)
	mk := func(i int) func(error) {
		return func(err error) { counts[i]++; errs[i] = err }
	}
	q.WriteOwned(fill(ZeroCopyMin, 0), mk(0)) // sent with zc, notification outstanding
	q.Write([]byte("copied"))
	q.WriteOwned(fill(10, 1), mk(1)) // partially sent
	q.WriteOwned(fill(10, 2), mk(2)) // unsent
	q.WriteOwned(fill(10, 3), mk(3))
	c, zc := q.Next()
	require.True(t, zc)
	q.SentZeroCopy(len(c), true)
	c, _ = q.Next()
	require.Equal(t, "copied", string(c))
	q.Sent(len(c))
	_, _ = q.Next()
	q.Sent(4)
	require.Equal(t, []int{0, 0, 0, 0}, counts)

	q.Drop(reason)
	require.Equal(t, []int{1, 1, 1, 1}, counts)
	for _, err := range errs {
		require.ErrorIs(t, err, reason)
	}
	require.Equal(t, 0, q.Buffered())
	require.False(t, q.NotifyPending())
	q.Notified() // late: nothing is released twice
	q.Drop(reason)
	require.Equal(t, []int{1, 1, 1, 1}, counts)
	c, _ = q.Next()
	require.Nil(t, c)

	// Usable again afterwards.
	q.Write([]byte("x"))
	c, _ = q.Next()
	require.Equal(t, "x", string(c))
}

func TestWriteQueueReentrantRelease(t *testing.T) {
	// done writes more: the queue is consistent when done runs.
	var q WriteQueue
	q.WriteOwned([]byte("AB"), func(error) { q.Write([]byte("cd")) })
	c, _ := q.Next()
	q.Sent(len(c))
	c, _ = q.Next()
	require.Equal(t, "cd", string(c))
}

func TestWriteQueueShrinksHugeIdleBuffers(t *testing.T) {
	var q WriteQueue
	big := make([]byte, 5<<20)
	q.Write(big)
	c, _ := q.Next()
	q.Write(big) // queued behind the in-flight chunk: pending grows too
	q.Sent(len(c))
	c, _ = q.Next()
	q.Sent(len(c))
	c, _ = q.Next()
	require.Nil(t, c)
	require.LessOrEqual(t, cap(q.sending), shrinkAbove)
	require.LessOrEqual(t, cap(q.pending), shrinkAbove)

	// Small buffers are kept for reuse.
	q.Write(make([]byte, 100))
	c, _ = q.Next()
	q.Sent(len(c))
	c, _ = q.Next()
	require.Nil(t, c)
	require.NotZero(t, cap(q.sending)+cap(q.pending))
}

func TestWriteQueueOwnedSlotsCompact(t *testing.T) {
	// A queue that never empties of owned buffers does not grow its slot
	// slice without bound.
	var q WriteQueue
	q.WriteOwned([]byte("a"), nil)
	for i := 0; i < 10000; i++ {
		q.WriteOwned([]byte("b"), nil)
		c, _ := q.Next()
		q.Sent(len(c))
	}
	require.Less(t, cap(q.zq), 64)
	require.Equal(t, 1, q.Buffered())
}

func TestWriteQueueSteadyStateAllocs(t *testing.T) {
	var q WriteQueue
	p := make([]byte, 512)
	cycle := func() {
		q.Write(p)
		q.Write(p)
		c, _ := q.Next()
		q.Sent(len(c) / 2)
		c, _ = q.Next()
		q.Sent(len(c))
	}
	for range 10 {
		cycle()
	}
	require.Zero(t, testing.AllocsPerRun(1000, cycle))
	owned := make([]byte, 256)
	cycleOwned := func() {
		q.Write(p)
		q.WriteOwned(owned, nil)
		for c, _ := q.Next(); c != nil; c, _ = q.Next() {
			q.Sent(len(c))
		}
	}
	for range 10 {
		cycleOwned()
	}
	require.Zero(t, testing.AllocsPerRun(1000, cycleOwned))
}

func BenchmarkWriteQueueCycle(b *testing.B) {
	var q WriteQueue
	p := make([]byte, 512)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		q.Write(p)
		c, _ := q.Next()
		q.Sent(len(c))
		if c, _ = q.Next(); c != nil {
			b.Fatal("not drained")
		}
	}
}

func BenchmarkWriteQueueOwnedCycle(b *testing.B) {
	var q WriteQueue
	p := make([]byte, 512)
	o := make([]byte, 4096)
	done := func(error) {}
	b.ReportAllocs()
	b.SetBytes(int64(len(p) + len(o)))
	for b.Loop() {
		q.Write(p)
		q.WriteOwned(o, done)
		for c, _ := q.Next(); c != nil; c, _ = q.Next() {
			q.Sent(len(c))
		}
	}
}

// TestWriteQueueNextBufsGathers: NextBufs gathers the owned buffers queued
// back to back after the head chunk (a copied chunk that ends where they
// begin, or the head owned buffer's rest), stops at copied bytes between
// them and at cap(bufs), and Sent over the vector releases each fully sent
// buffer in order, a partly sent one staying at the head.
func TestWriteQueueNextBufsGathers(t *testing.T) {
	var q WriteQueue
	var released []string
	own := func(s string) {
		q.WriteOwned([]byte(s), func(err error) {
			require.NoError(t, err)
			released = append(released, s)
		})
	}
	q.Write([]byte("ab"))
	own("CD")
	own("EF")
	own("GH")
	q.Write([]byte("ij"))
	own("KL")
	strs := func(b [][]byte) (r []string) {
		for _, p := range b {
			r = append(r, string(p))
		}
		return r
	}
	v, zc := q.NextBufs(make([][]byte, 0, 3))
	require.False(t, zc)
	require.Equal(t, []string{"ab", "CD", "EF"}, strs(v), "cap(bufs) bounds the vector")
	q.Sent(5) // ab, CD, and E
	require.Equal(t, []string{"CD"}, released)
	v, _ = q.NextBufs(make([][]byte, 0, 8))
	require.Equal(t, []string{"F", "GH"}, strs(v), "stops at copied bytes")
	q.Sent(3)
	require.Equal(t, []string{"CD", "EF", "GH"}, released)
	v, _ = q.NextBufs(make([][]byte, 0, 8))
	require.Equal(t, []string{"ij", "KL"}, strs(v))
	q.Sent(1)
	v, _ = q.NextBufs(make([][]byte, 0, 8))
	require.Equal(t, []string{"j", "KL"}, strs(v))
	q.Sent(3)
	require.Equal(t, []string{"CD", "EF", "GH", "KL"}, released)
	v, _ = q.NextBufs(make([][]byte, 0, 8))
	require.Nil(t, v)
	require.Zero(t, q.Buffered())
}

func BenchmarkWriteQueueOwnedGather(b *testing.B) {
	var q WriteQueue
	o := make([]byte, 4096)
	done := func(error) {}
	bufs := make([][]byte, 0, 64)
	b.ReportAllocs()
	b.SetBytes(16 * int64(len(o)))
	for b.Loop() {
		for range 16 {
			q.WriteOwned(o, done)
		}
		for v, _ := q.NextBufs(bufs); v != nil; v, _ = q.NextBufs(bufs) {
			n := 0
			for _, p := range v {
				n += len(p)
			}
			q.Sent(n)
		}
	}
}
