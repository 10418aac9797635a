package uring

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/backend/internal/msghdr"
	ring "github.com/gyre-io/gyre/uring"
)

// maxWait is the longest Wait timeout taken literally (about 146 years).
const maxWait = time.Duration(1 << 62)

// Wait submits queued ops, waits until at least one completion is ready, the
// timeout passes (timeout < 0: no limit; 0: poll) or Wake is called, and copies
// up to len(out) completions into out. Completions that do not fit stay for the
// next Wait. A Buf with FlagBuffer stays valid until ReleaseBuffer of its BufID;
// out itself is not retained. EINTR is retried inside. Loop goroutine only.
func (b *Backend) Wait(out []backend.Completion, timeout time.Duration) (int, error) {
	if b.closed {
		return 0, backend.ErrClosed
	}
	if timeout > maxWait {
		timeout = -1 // beyond any deadline arithmetic: no limit
	}
	b.sawWake = false
	n := b.drainSynth(out)
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		b.flushPending()
		wt := timeout
		if timeout > 0 {
			wt = max(time.Until(deadline), 0)
		}
		if n > 0 || len(out) == 0 {
			wt = 0
		}
		// A loop that just handled completions of k different ops waits for
		// up to k again (at most batchWait longer than for the first), so a
		// busy ring is woken once per batch instead of once per completion;
		// after a single op's completions it waits for one, adding no
		// latency. k counts ops, not CQEs (see sources): with DEFER_TASKRUN
		// the kernel wakes a waiter once enough task-work items are queued,
		// and one multishot recv's item can post many CQEs (one per buffer),
		// so asking for k CQEs after a burst of one op would sleep out the
		// whole min-wait window each time (a 64 KiB ping-pong over 4 KiB
		// buffers: 17 CQEs of two ops per turn).
		waitNr := uint32(1)
		if b.batchWait > 0 && n == 0 && wt != 0 {
			waitNr = min(max(b.lastBatch, 1), 32)
		}
		if len(b.nonEmpty) > 0 && b.r.CQReady() == 0 && b.checkMarks() && (wt < 0 || wt > markPoll) {
			wt = markPoll // a recv may be stuck at the urgent mark: look again soon
		}
		if _, err := b.r.SubmitAndWaitMin(waitNr, b.batchWait, wt); err != nil && b.r.CQReady() == 0 {
			if n > 0 || errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EAGAIN) {
				// EBUSY/EAGAIN: the kernel is short of room or memory for now;
				// the caller's next Wait tries again.
				return n, nil
			}
			return 0, fmt.Errorf("gyre/backend/uring: wait: %w", err)
		}
		n += b.reap(out[n:])
		n += b.drainSynth(out[n:])
		if wt != 0 {
			b.lastBatch = sources(out[:n])
		}
		if n > 0 || wt == 0 || b.sawWake || timeout > 0 && !time.Now().Before(deadline) {
			if b.r.Overflowed()+b.overflowAdd != b.overflowSeen {
				b.checkOverflow()
			}
			return n, nil
		}
		// Only internal completions arrived: keep waiting.
	}
}

// sources counts the ops a batch of completions came from, as runs of equal
// tokens: a multishot op's completions from one kernel pass are adjacent.
func sources(cs []backend.Completion) uint32 {
	k := uint32(0)
	for i := range cs {
		if i == 0 || cs[i].Token != cs[i-1].Token {
			k++
		}
	}
	return k
}

// drainSynth moves synthetic completions into out.
func (b *Backend) drainSynth(out []backend.Completion) int {
	if len(b.synth) == 0 {
		return 0
	}
	n := copy(out, b.synth)
	rest := copy(b.synth, b.synth[n:])
	clear(b.synth[rest:])
	b.synth = b.synth[:rest]
	return n
}

// reap translates ready CQEs into out until it is full or the CQ is empty.
func (b *Backend) reap(out []backend.Completion) int {
	n := 0
	for n < len(out) {
		k := b.r.PeekBatch(b.cqes[:min(len(out)-n, len(b.cqes))])
		if k == 0 {
			break
		}
		for i := range k {
			if b.translate(&b.cqes[i], &out[n]) {
				n++
			}
		}
		b.r.CQAdvance(uint32(k))
	}
	return n
}

// translate turns one CQE into a completion in *c and reports whether it is to
// be delivered (internal and swallowed CQEs are not).
func (b *Backend) translate(cqe *ring.CQE, c *backend.Completion) bool {
	tok := backend.Token(cqe.UserData)
	if backend.Reserved(tok) {
		switch tok {
		case tokWake:
			b.wakeArmed = false
			b.wk.Consumed()
			b.sawWake = true
			b.armWake()
		case tokCancelAll:
			b.cancelOut = false
		}
		return false
	}
	*c = backend.Completion{Token: tok, Res: cqe.Res}
	f := cqe.Flags
	if f&ring.CQEFMore != 0 {
		c.Flags |= backend.FlagMore
	}
	if f&ring.CQEFNotif != 0 {
		c.Flags |= backend.FlagNotif
	}
	if f&ring.CQEFSockNonempty != 0 {
		c.Flags |= backend.FlagSockNonEmpty
	}
	var op *backend.Op
	if len(b.track) > 0 {
		op = b.track[tok]
	}
	if f&ring.CQEFBuffer != 0 && b.inc != nil && b.fromInc(tok, op) {
		b.incCQE(cqe, c)
	} else if f&ring.CQEFBuffer != 0 && b.br != nil {
		id := cqe.BufferID()
		// A multishot recvmsg's buffer is handed out even for an empty
		// datagram (it holds the name), and even while closing (its control
		// data may hold descriptors Close must close before recycling it).
		msRecvMsg := op != nil && op.Kind == backend.KindRecvMsg && op.Multishot
		if cqe.Res > 0 && !b.closing || msRecvMsg && cqe.Res >= 0 {
			c.Flags |= backend.FlagBuffer
			c.BufID = id
			c.Buf = b.br.Buffer(id)[:cqe.Res]
			b.held[id] = true
		} else {
			b.br.Recycle(id) // consumed without data (end of stream, error)
		}
	}
	if f&ring.CQEFSockNonempty != 0 || len(b.nonEmpty) > 0 {
		live := op
		if live == nil {
			live = b.live.Lookup(tok)
		}
		if live != nil {
			b.noteNonEmpty(live, c)
		}
	}
	if op != nil && !b.finishTracked(op, c) {
		return false
	}
	if c.Flags&backend.FlagMore == 0 {
		if cqe.Res > 0 && op == nil && b.recvTotal > 0 && b.rearmLimited(tok) {
			c.Flags |= backend.FlagMore
			if f&ring.CQEFSockNonempty != 0 {
				// The re-arm's first recv meets queued bytes, maybe at the
				// urgent mark: a suspect like a retry (mark_linux.go).
				if live := b.live.Lookup(tok); live != nil {
					b.noteNonEmpty(live, c)
				}
			}
			return true
		}
		b.finished(tok)
	}
	return true
}

// rearmLimited re-arms the stream recv named by tok if it is a limited
// multishot recv that ended with data at its total limit (or, the same for
// the contract, because the CQ overflowed), unless it is being cancelled or
// the backend closes: the consumer sees one multishot that goes on.
func (b *Backend) rearmLimited(tok backend.Token) bool {
	op := b.live.Lookup(tok)
	if op == nil || op.Sys.State&stLimited == 0 || op.Sys.State&stCancel != 0 || b.closing {
		return false
	}
	b.push(op)
	return true
}

// fromInc reports whether the buffer of op's (found by tok when untracked)
// completion came from the incrementally consumed ring: a stream recv's.
func (b *Backend) fromInc(tok backend.Token, op *backend.Op) bool {
	if op == nil {
		op = b.live.Lookup(tok)
	}
	return op != nil && op.Kind == backend.KindRecv
}

// incCQE accounts for a CQE that used inc buffer id: its data follows what
// the kernel put in the buffer before; the completion hands the data out
// (BufID incBit|handle) unless there is none or the backend is closing.
func (b *Backend) incCQE(cqe *ring.CQE, c *backend.Completion) {
	id := cqe.BufferID()
	if int(id) >= len(b.incOff) {
		c.Res = -int32(unix.EIO) // cannot happen: the kernel names a buffer of the ring
		return
	}
	off, n := b.incOff[id], uint32(max(cqe.Res, 0))
	if cqe.Flags&ring.CQEFBufMore == 0 {
		b.incKernel[id] = false
	}
	if int(off+n) > b.inc.Size() {
		c.Res = -int32(unix.EIO) // cannot happen: the kernel fills the buffer in order
		n = 0
	}
	b.incOff[id] = off + n
	if n > 0 && !b.closing {
		k := len(b.hFree)
		if k == 0 {
			// 32768 completions unreleased: the caller leaks buffers. The
			// bytes cannot be handed out without a name; say so loudly.
			c.Res = -int32(unix.ENOBUFS)
			b.log.Error("gyre/backend/uring: provided buffers never released; received bytes dropped",
				"unreleased", incHandles, "bytes", n)
			b.incRecycle(id)
			return
		}
		h := b.hFree[k-1]
		b.hFree = b.hFree[:k-1]
		b.hUsed[h], b.hBuf[h] = true, id
		c.Flags |= backend.FlagBuffer
		c.BufID = h | incBit
		c.Buf = b.inc.Buffer(id)[off : off+n : off+n]
		b.incRefs[id]++
		return
	}
	b.incRecycle(id)
}

// incRecycle gives inc buffer id back to the kernel once the kernel is done
// with it and no completion still uses it.
func (b *Backend) incRecycle(id uint16) {
	if b.incKernel[id] || b.incRefs[id] > 0 {
		return
	}
	b.incOff[id] = 0
	b.incKernel[id] = true
	b.inc.Recycle(id)
}

// recvMsgMulti turns c, a completion of multishot recvmsg op carrying a
// buffer, into the contract's shape (Res the payload length; Buf, Name and
// Control views of the buffer). A native completion's buffer is parsed as
// struct io_uring_recvmsg_out; an emulated one (a single-shot recvmsg with
// buffer select) got the payload at the start of the buffer, and its name
// and control data are copied in behind the payload room.
func (b *Backend) recvMsgMulti(op *backend.Op, c *backend.Completion, native bool) {
	room, nl, cl := backend.MultishotRecvMsgRoom(op, b.cfg.BufferSize)
	if !native {
		// A single-shot recvmsg with buffer select: an empty datagram came
		// without a buffer.
		var full []byte
		if c.Flags&backend.FlagBuffer != 0 {
			full = b.br.Buffer(c.BufID)
		}
		c.Flags &^= backend.FlagBuffer // set again by ResultMultishot
		msghdr.ResultMultishot(&op.Sys.Msg, op, full, room, nl, cl, int(c.Res), c)
		c.Flags &^= backend.FlagMore // the re-arm decides
		return
	}
	h, name, control, payload, ok := ring.ParseRecvmsgOut(c.Buf, uint32(nl), uint32(cl))
	if !ok {
		c.Res = -int32(unix.EIO) // cannot happen: the kernel wrote the header
		c.Buf, c.Flags = nil, c.Flags&^backend.FlagBuffer
		b.held[c.BufID] = false
		b.br.Recycle(c.BufID)
		return
	}
	c.Res = int32(len(payload))
	name, control = name[:min(int(h.NameLen), len(name))], control[:min(int(h.ControlLen), len(control))]
	if len(payload) > 0 {
		c.Buf = payload[:len(payload):len(payload)]
		msghdr.CopyOut(c, name, control, name, control)
	} else {
		// An empty datagram: name and control data move to op's memory
		// (valid until the next Wait) and the buffer goes back.
		var nameTo []byte
		if op.Addr != nil {
			nameTo = unsafe.Slice((*byte)(unsafe.Pointer(op.Addr)), nl)
		}
		msghdr.CopyOut(c, name, control, nameTo, op.Control[:cl])
		c.Buf, c.Flags = nil, c.Flags&^backend.FlagBuffer
		b.held[c.BufID] = false
		b.br.Recycle(c.BufID)
		c.BufID = 0
	}
	if h.Flags&unix.MSG_TRUNC != 0 {
		c.Flags |= backend.FlagTrunc
	}
	if h.Flags&unix.MSG_CTRUNC != 0 {
		c.Flags |= backend.FlagCtrunc
	}
}

// finishTracked does the completion-time work of a tracked op: pool buffers,
// recvmsg results, emulated multishot and send_zc. It reports whether c is to
// be delivered; a final c untracks op.
func (b *Backend) finishTracked(op *backend.Op, c *backend.Completion) bool {
	st := op.Sys.State
	if op.Kind == backend.KindCancelFd && c.Res == 0 {
		c.Res = -int32(unix.ENOENT)
	}
	if st&stPollRecv != 0 && !b.pollRecv(op, c) {
		return false
	}
	if st&stRecvMsg != 0 && c.Res >= 0 {
		switch {
		case !op.Multishot:
			msghdr.Result(&op.Sys.Msg, op, c)
		case st&stPollRecv != 0: // pollRecv did it
		default:
			b.recvMsgMulti(op, c, st&stEmuMulti == 0)
		}
	}
	if op.Kind == backend.KindSendZC {
		switch {
		case st&stZCRetry != 0:
			// The failed zero-copy attempt's notification: redo the send copying.
			if c.Flags&backend.FlagMore != 0 {
				return false
			}
			if !b.closing {
				op.Sys.State = backend.StateInFlight | stTracked | stEmuZC
				b.push(op)
				return false
			}
		case st&stEmuZC == 0 && c.Res == -int32(unix.EOPNOTSUPP) && c.Flags&backend.FlagNotif == 0 && !b.closing:
			// The socket cannot send zero-copy (AF_UNIX): behave as the emulation.
			if c.Flags&backend.FlagMore != 0 {
				op.Sys.State |= stZCRetry
				return false
			}
			op.Sys.State = backend.StateInFlight | stTracked | stEmuZC
			b.push(op)
			return false
		case st&stEmuZC != 0 && c.Res >= 0 && !b.closing:
			c.Flags |= backend.FlagMore
			b.untrack(op)
			b.finishSynth(backend.Completion{Token: op.Token, Flags: backend.FlagNotif})
			return true
		}
	}
	rearm := st&stEmuMulti != 0 && (c.Res > 0 || c.Res == 0 && op.Kind != backend.KindRecv)
	if nativeMultiRecvMsg(op) && c.Res == 0 {
		rearm = true // the kernel ends a multishot recvmsg at an empty datagram; the contract does not
	}
	if rearm && c.Flags&backend.FlagMore == 0 && !b.closing && st&stCancel == 0 {
		c.Flags |= backend.FlagMore
		if op.Kind == backend.KindRecvMsg && c.Res == 0 {
			// The empty datagram's name and control data are in op's
			// memory until the next Wait: issue the re-arm only then.
			b.pushLater(op)
		} else {
			b.push(op)
		}
		return true
	}
	if c.Flags&backend.FlagMore == 0 {
		b.untrack(op)
	}
	return true
}

// pollRecv finishes a pool-mode receive whose poll completed in c: it takes a
// pool buffer and receives into it without blocking, turning c into the
// receive's result. It reports false (c swallowed, poll re-armed) when the
// data was gone. With the pool empty the receive fails with -ENOBUFS, leaving
// the data in the socket, as with a buffer ring.
func (b *Backend) pollRecv(op *backend.Op, c *backend.Completion) bool {
	if c.Res < 0 || b.closing {
		if c.Res >= 0 {
			c.Res = -int32(unix.ECANCELED)
		}
		return true
	}
	id, ok := b.pool.Get()
	if !ok {
		c.Res = -int32(unix.ENOBUFS)
		return true
	}
	buf := b.pool.Buf(id)
	var n uintptr
	var errno unix.Errno
	for {
		if op.Kind == backend.KindRecvMsg && op.Multishot {
			room, nl, cl := backend.MultishotRecvMsgRoom(op, b.cfg.BufferSize)
			m := &op.Sys.Msg
			msghdr.PrepareMultishot(m, &b.syncIov, op, buf, room, nl, cl)
			n, _, errno = unix.Syscall(unix.SYS_RECVMSG, uintptr(op.Fd), uintptr(unsafe.Pointer(m)),
				unix.MSG_DONTWAIT|msghdr.RecvFlags)
			if errno == 0 {
				c.BufID = id
				if !msghdr.ResultMultishot(m, op, buf, room, nl, cl, int(n), c) {
					b.pool.Put(id)
					c.BufID = 0
				}
				c.Flags &^= backend.FlagMore // the re-arm decides
			}
			m.Iov, m.Name, m.Control = nil, nil, nil
			if errno == 0 {
				return true
			}
		} else if op.Kind == backend.KindRecvMsg {
			b.syncIov = iovec(buf)
			m := &op.Sys.Msg
			*m = unix.Msghdr{Iov: &b.syncIov, Iovlen: 1}
			msghdr.Prepare(m, op)
			n, _, errno = unix.Syscall(unix.SYS_RECVMSG, uintptr(op.Fd), uintptr(unsafe.Pointer(m)),
				unix.MSG_DONTWAIT|msghdr.RecvFlags)
			m.Iov = nil
		} else {
			n, _, errno = unix.Syscall6(unix.SYS_RECVFROM, uintptr(op.Fd), uintptr(unsafe.Pointer(&buf[0])),
				uintptr(len(buf)), unix.MSG_DONTWAIT, 0, 0)
		}
		if errno != unix.EINTR {
			break
		}
	}
	switch {
	case errno == unix.EAGAIN && op.Sys.State&stCancel != 0:
		b.pool.Put(id) // a cancel may have missed the poll: end here
		c.Res = -int32(unix.ECANCELED)
	case errno == unix.EAGAIN:
		b.pool.Put(id)
		b.push(op) // the poll again
		return false
	case errno != 0:
		b.pool.Put(id)
		c.Res = -int32(errno)
	case n == 0: // end of stream, or an empty datagram
		b.pool.Put(id)
		c.Res = 0
	default:
		c.Res = int32(n)
		c.Flags |= backend.FlagBuffer
		c.BufID = id
		c.Buf = buf[:n]
	}
	return true
}
