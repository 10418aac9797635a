package stream

import (
	"bytes"
	"errors"
	"testing"
)

var errFuzzDrop = errors.New("fuzz: dropped")

// FuzzWriteQueue drives a WriteQueue with a fuzzer-chosen sequence of
// Write, WriteBuffers, WriteOwned (small and zero-copy sized), short and
// over-long copying sends, zero-copy sends with and without a notification,
// refused zero-copy sends, stray Sent and Notified calls, and Drop, against
// a byte-conservation model: the bytes sent are exactly the bytes accepted,
// in order, minus those Drop forgot; Buffered is always accepted - sent -
// dropped; Next returns the same chunk until it is accounted; every owned
// buffer is released exactly once (nil after its last byte and its
// notification, or Drop's reason), and a released buffer is scribbled over
// so a queue still reading it corrupts the stream.
func FuzzWriteQueue(f *testing.F) {
	f.Add([]byte{0, 10, 3, 255, 2, 1, 3, 0, 3, 255, 3, 255})
	f.Add([]byte{2, 200, 4, 255, 1, 0, 5, 3, 0, 5, 2, 5, 4, 0, 1, 4, 255, 0})
	f.Add([]byte{0, 3, 2, 130, 4, 40, 1, 7, 6, 0, 20, 3, 100, 5})
	f.Add([]byte{2, 129, 2, 131, 4, 255, 1, 4, 9, 1, 5, 4, 255, 0, 8, 3, 255})
	f.Fuzz(func(t *testing.T, prog []byte) {
		var q WriteQueue
		var want, got []byte // the stream since the last Drop
		var recs []*ownedRec // owned buffers not yet released
		accepted, sent, dropped := 0, 0, 0
		notifDue := false
		var zcRec *ownedRec
		tag := byte(0)
		next := func() int {
			if len(prog) == 0 {
				return 0
			}
			b := prog[0]
			prog = prog[1:]
			return int(b)
		}
		released := func(r *ownedRec) func(error) {
			return func(err error) {
				r.releases++
				r.err = err
				if r.releases > 1 {
					t.Fatalf("owned buffer released %d times", r.releases)
				}
				if err == nil && len(got) < r.end {
					t.Fatalf("owned buffer released before its bytes were sent (%d < %d)", len(got), r.end)
				}
				if r == zcRec && notifDue && err == nil {
					t.Fatal("owned buffer released before its notification")
				}
				for i := range r.buf {
					r.buf[i] = 0xEE
				}
			}
		}
		check := func() {
			if b := q.Buffered(); b != accepted-sent-dropped {
				t.Fatalf("Buffered %d, model %d", b, accepted-sent-dropped)
			}
			if q.NotifyPending() != notifDue {
				t.Fatalf("NotifyPending %v, model %v", q.NotifyPending(), notifDue)
			}
		}
		// send hands the next chunk to a pretend kernel; kind 0 copies,
		// 1 uses zero copy when offered, 2 is a refused zero-copy send.
		send := func(kind, nb int) bool {
			chunk, zc := q.Next()
			again, zc2 := q.Next()
			if len(chunk) != len(again) || zc != zc2 || len(chunk) > 0 && &chunk[0] != &again[0] {
				t.Fatal("Next changed its answer before the chunk was accounted")
			}
			if chunk == nil {
				if q.Buffered() != 0 {
					t.Fatalf("Next gave nothing with %d buffered", q.Buffered())
				}
				return false
			}
			if zc && (len(chunk) < ZeroCopyMin || notifDue) {
				t.Fatalf("zero copy offered for %d bytes, notification due %v", len(chunk), notifDue)
			}
			n := nb * len(chunk) / 200 // nb > 200: more than the chunk, clamped
			n = min(n, len(chunk))
			if kind > 0 && zc {
				var head *ownedRec
				for _, r := range recs {
					if r.releases == 0 && len(got) < r.end {
						head = r
						break
					}
				}
				if head == nil || len(want)-len(got) < len(chunk) || head.end != len(got)+len(chunk) {
					t.Fatal("zero-copy chunk is not the head owned buffer's rest")
				}
				notify := nb%5 != 0
				if notify {
					zcRec, notifDue = head, true
				}
				if kind == 2 {
					q.SentZeroCopy(0, notify)
					q.ZeroCopyRefused()
					return true
				}
				got = append(got, chunk[:n]...)
				sent += n
				q.SentZeroCopy(nb*len(chunk)/200, notify)
				return true
			}
			got = append(got, chunk[:n]...)
			sent += n
			q.Sent(nb * len(chunk) / 200)
			return true
		}
		for steps := 0; len(prog) > 0 && steps < 400; steps++ {
			tag++
			switch next() % 10 {
			case 0: // Write
				p := fill(next()*13, tag)
				q.Write(p)
				want = append(want, p...)
				accepted += len(p)
				clear(p)
			case 1: // WriteBuffers
				a, b := fill(next()%40, tag), fill(next()%40, tag+1)
				q.WriteBuffers([][]byte{a, b})
				want = append(append(want, a...), b...)
				accepted += len(a) + len(b)
			case 2: // WriteOwned: below 128 small, from 128 zero-copy sized
				n := next()
				size := 1 + n*7
				if n >= 128 {
					size = ZeroCopyMin + (n-128)*97
				}
				p := fill(size, tag)
				want = append(want, p...)
				accepted += size
				r := &ownedRec{end: len(want), buf: p}
				recs = append(recs, r)
				if !q.WriteOwned(p, released(r)) {
					t.Fatal("WriteOwned refused a non-empty buffer")
				}
			case 3: // a copying send
				send(0, next())
			case 4: // a zero-copy send when offered
				send(1, next())
			case 5: // a refused zero-copy send when offered
				send(2, next())
			case 6: // the notification arrives, or a stray one
				if notifDue || next()%2 == 0 {
					notifDue = false
					q.Notified()
				}
			case 7: // a stray Sent with no chunk outstanding
				q.Sent(next())
			case 8: // Drop, once nothing is in flight
				if notifDue {
					break
				}
				live := 0
				for _, r := range recs {
					if r.releases == 0 {
						live++
					}
				}
				q.Drop(errFuzzDrop)
				for _, r := range recs {
					if r.releases != 1 {
						t.Fatalf("after Drop an owned buffer has %d releases", r.releases)
					}
				}
				if !bytes.Equal(got, want[:len(got)]) {
					t.Fatal("stream before Drop differs")
				}
				dropped += len(want) - len(got)
				want, got, recs, zcRec = nil, nil, nil, nil
			case 9: // WriteOwned of nothing
				if q.WriteOwned(nil, func(error) { t.Fatal("empty owned buffer released") }) {
					t.Fatal("WriteOwned accepted an empty buffer")
				}
			}
			check()
			if !bytes.Equal(got, want[:len(got)]) {
				t.Fatalf("stream differs after %d bytes", len(got))
			}
		}
		// Drain: send everything, deliver the notification.
		for i := 0; ; i++ {
			if i > 1<<16 {
				t.Fatal("queue does not drain")
			}
			if notifDue {
				notifDue = false
				q.Notified()
			}
			if !send(1, 200) && !notifDue {
				break
			}
		}
		check()
		if !bytes.Equal(want, got) {
			t.Fatalf("stream differs: sent %d of %d", len(got), len(want))
		}
		for i, r := range recs {
			if r.releases != 1 || r.err != nil {
				t.Fatalf("owned buffer %d: %d releases, err %v", i, r.releases, r.err)
			}
		}
	})
}
