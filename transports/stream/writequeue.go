package stream

// ZeroCopyMin is the size from which the unsent rest of an owned buffer is
// offered for a zero-copy send (IORING_OP_SEND_ZC); below it a copying send
// is cheaper (the notification costs a second completion).
const ZeroCopyMin = 16 << 10

// shrinkAbove: an idle queue does not keep a copy buffer larger than this.
const shrinkAbove = 4 << 20

// what the chunk returned by the last Next is.
const (
	curNone   = iota // nothing outstanding
	curCopied        // a slice of the copied bytes (sending)
	curOwned         // the unsent rest of the head owned buffer
)

// WriteQueue is a stream transport's outbound queue as pure logic: no system
// calls, no loop, no timers (the write buffer of Twisted's
// abstract.FileDescriptor, with caller-owned and zero-copy buffers added).
//
// Bytes enter with Write (copied) or WriteOwned (kept, not copied) and leave
// in exactly the order they were accepted. The transport asks Next for the
// next contiguous chunk to hand to the kernel, sends it (one send op in
// flight at a time), and reports the result with Sent or SentZeroCopy; a short
// send is resumed from where it stopped by the next Next.
//
// Copied bytes live in two buffers that swap roles: pending (appended to by
// Write) and sending (owned by the kernel while a send names it). Sending is
// never modified while a chunk of it may be in flight, so Write can run while
// a send is in flight; once all of sending is sent, Next swaps the buffers and
// reuses the old one's capacity, so a steady Write/Next/Sent cycle allocates
// nothing.
//
// An owned buffer is released exactly once through its done callback: with
// nil once every byte was sent and, if a zero-copy send used it, after the
// kernel's notification (Notified); or with Drop's reason if the queue is
// dropped first. done runs synchronously inside Sent, SentZeroCopy, Notified
// or Drop, after the queue's state is consistent, so it may call Write or
// WriteOwned again.
//
// The zero value is an empty queue ready for use. Not goroutine-safe: a
// transport calls it on its loop only.
type WriteQueue struct {
	pending []byte // accepted by Write, not yet handed out by Next
	sending []byte // handed out by Next; sendOff bytes of it are sent
	sendOff int

	copyIn  int64 // copied bytes accepted so far
	copyOut int64 // copied bytes sent so far

	zq    []owned // owned buffers not fully sent, in order; zq[zh] is the head
	zh    int
	zqLen int // their unsent bytes

	wait    owned // a fully sent owned buffer waiting for its notification
	waiting bool
	zcBusy  bool // a zero-copy notification is outstanding (head or wait)

	cur      int8 // what the last Next handed out
	curLen   int  // its length, for a copied chunk (Sent clamps to it)
	curOwned int  // owned buffers in what the last Next or NextBufs handed out
}

// owned is a caller-owned buffer queued by WriteOwned.
type owned struct {
	buf        []byte
	off        int   // bytes of buf sent
	copyBefore int64 // copied bytes queued before it: they go first
	done       func(error)
	notif      bool // a zero-copy notification for buf is outstanding
	noZC       bool // zero copy was refused for buf: copying sends only
}

// Write queues a copy of p; the caller may reuse p at once.
func (q *WriteQueue) Write(p []byte) {
	q.pending = append(q.pending, p...)
	q.copyIn += int64(len(p))
}

// WriteBuffers queues a copy of every buffer in bufs, in order (Twisted's
// writeSequence).
func (q *WriteQueue) WriteBuffers(bufs [][]byte) {
	for _, b := range bufs {
		q.Write(b)
	}
}

// WriteOwned queues p without copying it. The queue (and, through the slices
// Next hands out, the kernel) uses p until done is called; the caller must not
// modify p before then. done (may be nil) is called exactly once: with nil
// after every byte of p was sent and any zero-copy notification for it
// arrived, or with Drop's reason. Bytes written before WriteOwned, copied or
// owned, are sent before p.
//
// An empty p is not queued: WriteOwned returns false and never calls done;
// the transport completes such a write itself (tcp calls done(nil) on the
// next loop turn). It returns true when p was queued.
func (q *WriteQueue) WriteOwned(p []byte, done func(error)) bool {
	if len(p) == 0 {
		return false
	}
	if q.zh > 0 && len(q.zq) == cap(q.zq) {
		// Compact instead of growing: a queue fed owned buffers without
		// ever emptying would otherwise keep every dead head slot.
		n := copy(q.zq, q.zq[q.zh:])
		clear(q.zq[n:])
		q.zq, q.zh = q.zq[:n], 0
	}
	q.zq = append(q.zq, owned{buf: p, copyBefore: q.copyIn, done: done})
	q.zqLen += len(p)
	return true
}

// Buffered is the number of bytes accepted by Write and WriteOwned and not yet
// reported sent (including a chunk in flight). Flow control (Flow.Update)
// reads this figure.
func (q *WriteQueue) Buffered() int {
	return len(q.pending) + len(q.sending) - q.sendOff + q.zqLen
}

// NotifyPending reports whether a zero-copy notification is outstanding (a
// buffer is still held by the kernel even if Buffered is zero).
func (q *WriteQueue) NotifyPending() bool { return q.zcBusy }

// Next returns the next chunk to hand to the kernel, or nil when nothing is
// queued (the queue is drained: Buffered() == 0). The chunk is contiguous:
// either copied bytes (up to the next owned buffer) or the unsent rest of the
// head owned buffer. zeroCopy reports that the chunk is an owned buffer's rest
// of at least ZeroCopyMin bytes, not refused for zero copy, with no other
// notification outstanding: the transport may send it with SEND_ZC and must
// then report with SentZeroCopy.
//
// The chunk stays valid and unmodified until the Sent or SentZeroCopy that
// accounts it; calling Next again before then returns the same chunk. Write
// and WriteOwned may be called while it is in flight. When the queue is found
// drained, an idle copy buffer larger than 4 MiB is released.
func (q *WriteQueue) Next() (chunk []byte, zeroCopy bool) {
	limit := -1
	if q.zh < len(q.zq) {
		z := &q.zq[q.zh]
		if q.copyOut >= z.copyBefore {
			q.cur, q.curOwned = curOwned, 1
			rest := z.buf[z.off:]
			return rest, !q.zcBusy && !z.noZC && len(rest) >= ZeroCopyMin
		}
		limit = int(z.copyBefore - q.copyOut)
	}
	if q.sendOff >= len(q.sending) {
		if len(q.pending) == 0 {
			q.idle()
			return nil, false
		}
		q.sending, q.pending = q.pending, q.sending[:0]
		q.sendOff = 0
	}
	b := q.sending[q.sendOff:]
	if limit >= 0 && len(b) > limit {
		b = b[:limit]
	}
	q.cur, q.curLen, q.curOwned = curCopied, len(b), 0
	return b, false
}

// OwnedQueued is the number of owned buffers queued and not yet released
// by a send (a zero-copy one waiting for its notification not counted).
func (q *WriteQueue) OwnedQueued() int { return len(q.zq) - q.zh }

// NextBufs is Next for a vectored send: bufs[:0] is filled with Next's chunk
// followed, unless it is offered for zero copy, by the owned buffers queued
// right after it with no copied bytes between them, up to cap(bufs) slices
// (at least one). A queue fed received buffers one by one (zero-copy
// forwarding, see transports.BufferKeeper) goes out in one sendmsg per
// flush this way rather than one send per buffer. The result is nil when
// nothing is queued; zeroCopy is Next's (the result then has one slice).
// Sent accounts the whole vector, releasing each owned buffer fully sent,
// in order; the vector stays valid until then.
func (q *WriteQueue) NextBufs(bufs [][]byte) (out [][]byte, zeroCopy bool) {
	chunk, zc := q.Next()
	if chunk == nil {
		return nil, false
	}
	out = append(bufs[:0], chunk)
	if zc {
		return out, true
	}
	j := q.zh
	switch {
	case q.cur == curOwned:
		j++
	case j >= len(q.zq) || q.copyOut+int64(len(chunk)) != q.zq[j].copyBefore:
		return out, false // copied bytes only, or more of them before the next owned buffer
	}
	before := q.zq[q.zh].copyBefore
	for ; j < len(q.zq) && len(out) < cap(out) && q.zq[j].copyBefore == before; j++ {
		out = append(out, q.zq[j].buf)
		q.curOwned++
	}
	return out, false
}

// idle resets a drained queue and drops huge idle buffers.
func (q *WriteQueue) idle() {
	q.cur = curNone
	q.sending, q.sendOff = q.sending[:0], 0
	if cap(q.sending) > shrinkAbove {
		q.sending = nil
	}
	if cap(q.pending) > shrinkAbove {
		q.pending = nil
	}
}

// Sent accounts n bytes sent from the chunk the last Next returned, by a
// copying send (or a zero-copy send whose first completion said no
// notification follows). n may be less than the chunk (a short send); the
// rest comes back from the next Next. An owned buffer fully sent is released
// with nil here unless a notification for it is outstanding. n beyond the
// chunk is clamped; Sent without a chunk outstanding does nothing.
func (q *WriteQueue) Sent(n int) { q.sent(n, false) }

// SentZeroCopy accounts the result of a zero-copy send of the chunk the last
// Next returned: n bytes sent (0 for a failed send) and notify, whether a
// notification completion follows (the first completion's FlagMore). With
// notify the buffer is held until Notified, even once fully sent, and no
// other chunk is offered for zero copy meanwhile.
func (q *WriteQueue) SentZeroCopy(n int, notify bool) { q.sent(n, notify) }

func (q *WriteQueue) sent(n int, notify bool) {
	n = max(n, 0)
	owned := q.curOwned
	if q.cur == curCopied {
		// Clamp to the chunk, not to sending: a copied chunk stops at the
		// next owned buffer, whose bytes go before the rest of sending.
		m := min(n, q.curLen)
		q.sendOff += m
		q.copyOut += int64(m)
		n -= m
		if m < q.curLen {
			owned = 0
		}
	}
	q.cur, q.curOwned = curNone, 0
	// The owned buffers of the chunk (NextBufs gathers several), in order;
	// q.zq is indexed afresh each round since a done may queue more.
	for ; owned > 0; owned-- {
		z := &q.zq[q.zh]
		if notify {
			z.notif, q.zcBusy = true, true
		}
		m := min(n, len(z.buf)-z.off)
		z.off += m
		q.zqLen -= m
		n -= m
		if z.off < len(z.buf) {
			return
		}
		done := *z
		q.popOwned()
		if done.notif {
			// Sent, but the kernel may still read it until the
			// notification. Only one notification is outstanding at a
			// time, so only the vector's first buffer can be waiting.
			q.wait, q.waiting = done, true
			continue
		}
		release(done.done, nil)
	}
}

func (q *WriteQueue) popOwned() {
	q.zq[q.zh] = owned{}
	q.zh++
	if q.zh == len(q.zq) {
		q.zq, q.zh = q.zq[:0], 0
	}
}

// ZeroCopyRefused reports that the kernel refused a zero-copy send of the
// head owned buffer (EOPNOTSUPP, ENOMEM, ENOBUFS): the rest of that buffer
// goes out with copying sends, so a refusal cannot repeat forever. Call it
// after SentZeroCopy(0, more).
func (q *WriteQueue) ZeroCopyRefused() {
	if q.zh < len(q.zq) {
		q.zq[q.zh].noZC = true
	}
}

// Notified accounts the zero-copy notification (the FlagNotif completion):
// the kernel no longer reads the buffer. If the buffer was fully sent it is
// released with nil now; otherwise it is released when its last byte is sent.
// Without an outstanding notification it does nothing.
func (q *WriteQueue) Notified() {
	if !q.zcBusy {
		return
	}
	q.zcBusy = false
	if q.waiting {
		w := q.wait
		q.wait, q.waiting = owned{}, false
		release(w.done, nil)
		return
	}
	if q.zh < len(q.zq) {
		q.zq[q.zh].notif = false
	}
}

// Drop empties the queue for good: copied bytes are forgotten and every owned
// buffer not yet released is released with reason, in queue order. Call it
// only when no send op naming a chunk of this queue is in flight any more
// (after the descriptor's last final completion, e.g. from Owner's onClosed):
// done tells the caller it may reuse the buffer. The queue is empty and usable
// afterwards.
func (q *WriteQueue) Drop(reason error) {
	wait, waiting := q.wait, q.waiting
	rest := q.zq[q.zh:]
	*q = WriteQueue{}
	if waiting {
		release(wait.done, reason)
	}
	for i := range rest {
		done := rest[i].done
		rest[i] = owned{}
		release(done, reason)
	}
}

func release(done func(error), err error) {
	if done != nil {
		done(err)
	}
}
