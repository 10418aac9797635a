package uring

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/backend/internal/msghdr"
	ring "github.com/gyre-io/gyre/uring"
)

// Op.Sys.State bits (backend-private).
const (
	stTracked  uint32 = 1 << iota // in b.track
	stEmuMulti                    // multishot emulated by re-arming
	stCancel                      // a cancel targeted the re-arming op: do not re-arm
	stEmuZC                       // send_zc done as a copying send + synthetic notification
	stZCRetry                     // native send_zc said EOPNOTSUPP: redo it copying after its notification
	stPollRecv                    // pool mode: poll for input, then receive into a pool buffer
	stRecvMsg                     // recvmsg: copy AddrLen, control length and flags back at completion
	stLimited                     // untracked native multishot recv with a total limit: re-armed when it ends with data
	stNonEmpty                    // native multishot stream recv whose last completion said more is queued (mark_linux.go)
	stListed                      // its token is in b.nonEmpty (mark_linux.go)
)

// nativeMultiRecvMsg reports whether op runs as io_uring's own multishot
// recvmsg (a buffer ring, kernel 6.0+): its buffers then hold a
// struct io_uring_recvmsg_out header, the name, the control data and the payload.
func nativeMultiRecvMsg(op *backend.Op) bool {
	return op.Kind == backend.KindRecvMsg && op.Multishot && op.Sys.State&(stEmuMulti|stPollRecv) == 0
}

const acceptFlags = unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC

// Submit queues op for the next Wait (or hands it to the kernel at once when
// the submission queue is full). It fails, producing no completion, for an op
// backend.Validate rejects (backend.ErrInvalidOp), and with backend.ErrClosed
// after Close. Loop goroutine only; never blocks.
func (b *Backend) Submit(op *backend.Op) error {
	if b.closed {
		return backend.ErrClosed
	}
	if err := backend.Validate(op); err != nil {
		return fmt.Errorf("gyre/backend/uring: submit: %w", err)
	}
	if err := backend.ValidateRoom(op, b.cfg.BufferSize); err != nil {
		return fmt.Errorf("gyre/backend/uring: submit: %w", err)
	}
	if op.Kind == backend.KindRecvMsg && op.BufferSelect && b.br == nil && b.inc != nil {
		if err := b.setupClassic(); err != nil {
			return fmt.Errorf("gyre/backend/uring: submit: registering recvmsg's provided buffers: %w (%w)", backend.ErrUnsupported, err)
		}
	}
	op.Sys.State = backend.StateInFlight
	op.Sys.Next = nil
	b.live.Add(op)
	switch op.Kind {
	case backend.KindAccept:
		if op.Multishot && !b.msAccept {
			b.trackOp(op, stEmuMulti)
		}
	case backend.KindPoll:
		if op.Multishot && !b.msPoll {
			b.trackOp(op, stEmuMulti)
		}
	case backend.KindRecv:
		if op.Multishot && !b.msRecv {
			b.trackOp(op, stEmuMulti)
		}
		if op.BufferSelect && b.pool != nil {
			b.trackOp(op, stPollRecv)
		}
		if op.Multishot && op.BufferSelect && b.msRecv && b.recvTotal > 0 {
			op.Sys.State |= stLimited
		}
	case backend.KindSendZC:
		if !b.sendZC {
			b.trackOp(op, stEmuZC)
		} else {
			b.trackOp(op, 0) // to catch EOPNOTSUPP
		}
	case backend.KindRecvMsg:
		b.trackOp(op, stRecvMsg)
		if op.Multishot && !b.msRecv {
			b.trackOp(op, stEmuMulti)
		}
		if op.BufferSelect && b.pool != nil {
			b.trackOp(op, stPollRecv)
		}
	case backend.KindTimeout:
		op.Sys.Ts = unix.NsecToTimespec(int64(max(op.Timeout, 0)))
	case backend.KindCancel:
		if len(b.track) > 0 {
			if t := b.track[op.Target]; t != nil && (t.Sys.State&(stEmuMulti|stPollRecv) != 0 || nativeMultiRecvMsg(t)) {
				t.Sys.State |= stCancel
			}
		}
		if t := b.live.Lookup(op.Target); t != nil && t.Sys.State&stLimited != 0 {
			t.Sys.State |= stCancel
		}
	case backend.KindCancelFd:
		for _, t := range b.track {
			if t.Fd == op.Fd && (t.Sys.State&(stEmuMulti|stPollRecv) != 0 || nativeMultiRecvMsg(t)) {
				t.Sys.State |= stCancel
			}
		}
		if b.recvTotal > 0 {
			b.live.Each(func(t *backend.Op) {
				if t.Fd == op.Fd && t.Sys.State&stLimited != 0 {
					t.Sys.State |= stCancel
				}
			})
		}
		b.trackOp(op, 0) // CANCEL_ALL reports 0 for none: make it -ENOENT
	case backend.KindConnect:
		if op.Addr.Addr.Family == unix.AF_UNIX {
			// An AF_UNIX connect never waits: connect(2) on a non-blocking
			// socket succeeds or fails at once (-EAGAIN on a full backlog).
			// io_uring may instead park it on poll until the backlog drains
			// (seen under load on 6.18), which the contract forbids, so it is
			// done here and completed synthetically, like epoll does.
			b.inflight++
			b.finishSynth(backend.Completion{Token: op.Token, Res: connectNow(op)})
			return nil
		}
	}
	b.inflight++
	b.push(op)
	return nil
}

// connectNow runs a non-blocking connect(2) for op and returns its result as
// a completion's Res.
func connectNow(op *backend.Op) int32 {
	for {
		_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(op.Fd), uintptr(unsafe.Pointer(op.Addr)), uintptr(min(op.AddrLen, unix.SizeofSockaddrAny)))
		if e != unix.EINTR {
			return -int32(e)
		}
	}
}

func (b *Backend) trackOp(op *backend.Op, bits uint32) {
	op.Sys.State |= stTracked | bits
	b.track[op.Token] = op
}

func (b *Backend) untrack(op *backend.Op) {
	if op.Sys.State&stTracked != 0 {
		delete(b.track, op.Token)
	}
	op.Sys.State &= backend.StateInFlight
}

// finishSynth queues a final synthetic completion.
func (b *Backend) finishSynth(c backend.Completion) {
	b.synth = append(b.synth, c)
	b.finished(c.Token)
}

// finished accounts for the final completion of the op with token tok: it
// leaves the in-flight index and may be submitted again.
func (b *Backend) finished(tok backend.Token) {
	b.inflight--
	if op := b.live.Lookup(tok); op != nil {
		b.live.Remove(op)
		op.Sys.State &^= backend.StateInFlight
	}
}

// iovArenaLen is the number of iovecs in the per-submission arena; more than
// IOV_MAX (1024) is never useful.
const iovArenaLen = 1024

// iovecs returns room for n iovecs that must stay valid until the SQE about to
// be prepared is handed to the kernel. The kernel copies msghdrs and their
// iovec arrays when it takes the SQE (IORING_FEAT_SUBMIT_STABLE), so the room
// comes from an arena reused once the SQ has been drained; an op that does not
// fit even then gets op.Sys.Iov. Call it before taking the SQE.
func (b *Backend) iovecs(op *backend.Op, n int) []unix.Iovec {
	if b.r.Pending() == 0 {
		b.iovUsed = 0
	}
	if b.iovUsed+n > len(b.iovArena) && n <= len(b.iovArena) {
		if _, err := b.r.Submit(); err == nil && b.r.Pending() == 0 {
			b.iovUsed = 0
		}
	}
	if b.iovUsed+n <= len(b.iovArena) {
		v := b.iovArena[b.iovUsed : b.iovUsed+n : b.iovUsed+n]
		b.iovUsed += n
		return v
	}
	if cap(op.Sys.Iov) < n {
		op.Sys.Iov = make([]unix.Iovec, n)
	}
	return op.Sys.Iov[:n]
}

func iovec(p []byte) unix.Iovec {
	var v unix.Iovec
	if len(p) > 0 {
		v.Base = unsafe.SliceData(p)
		v.SetLen(len(p))
	}
	return v
}

// buildMsg fills op.Sys.Msg (and its iovecs) for sendmsg and recvmsg ops. A
// recvmsg reads into op.Buf, its pool buffer, or (with a buffer ring) a buffer
// the kernel selects, up to BufferSize bytes.
func (b *Backend) buildMsg(op *backend.Op) {
	m := &op.Sys.Msg
	*m = unix.Msghdr{}
	msghdr.Prepare(m, op)
	var iov []unix.Iovec
	switch op.Kind {
	case backend.KindSendv, backend.KindSendMsg:
		switch {
		case len(op.Bufs) > 0:
			iov = b.iovecs(op, len(op.Bufs))
			for i, p := range op.Bufs {
				iov[i] = iovec(p)
			}
		case op.Kind == backend.KindSendMsg:
			iov = b.iovecs(op, 1)
			iov[0] = iovec(op.Buf)
		}
	case backend.KindRecvMsg:
		if nativeMultiRecvMsg(op) {
			// Only the room to reserve in each buffer: the kernel writes
			// name and control there (io_uring_recvmsg_out layout).
			_, nl, cl := backend.MultishotRecvMsgRoom(op, b.cfg.BufferSize)
			*m = unix.Msghdr{Namelen: uint32(nl)}
			m.SetControllen(cl)
			return
		}
		iov = b.iovecs(op, 1)
		switch {
		case op.BufferSelect && op.Multishot: // emulated: payload room only, name and control copied in later
			room, _, _ := backend.MultishotRecvMsgRoom(op, b.cfg.BufferSize)
			iov[0] = unix.Iovec{}
			iov[0].SetLen(room)
		case op.BufferSelect:
			iov[0] = unix.Iovec{}
			iov[0].SetLen(b.cfg.BufferSize)
		default:
			iov[0] = iovec(op.Buf)
		}
	}
	if len(iov) > 0 {
		m.Iov = &iov[0]
		m.SetIovlen(len(iov))
	}
}

// getSQE returns a free SQE, submitting queued ones once if the queue is full;
// nil when the kernel takes none.
func (b *Backend) getSQE() *ring.SQE {
	if s := b.r.GetSQE(); s != nil {
		return s
	}
	if _, err := b.r.Submit(); err != nil {
		return nil
	}
	return b.r.GetSQE()
}

// push gives op an SQE, or appends it to the pending list (keeping submission
// order) when none is free.
func (b *Backend) push(op *backend.Op) {
	if b.pendHead == nil && !b.parkAll && b.issue(op) {
		return
	}
	op.Sys.Next = nil
	if b.pendTail == nil {
		b.pendHead = op
	} else {
		b.pendTail.Sys.Next = op
	}
	b.pendTail = op
}

// pushLater appends op to the pending list: it reaches the kernel at the
// next Wait's flush, not before.
func (b *Backend) pushLater(op *backend.Op) {
	op.Sys.Next = nil
	if b.pendTail == nil {
		b.pendHead = op
	} else {
		b.pendTail.Sys.Next = op
	}
	b.pendTail = op
}

// flushPending moves pending ops (and a queued wake-up read) into the SQ.
func (b *Backend) flushPending() {
	if b.wakeQueue {
		b.armWake()
	}
	for b.pendHead != nil {
		op := b.pendHead
		if !b.issue(op) {
			return
		}
		b.pendHead = op.Sys.Next
		if b.pendHead == nil {
			b.pendTail = nil
		}
		op.Sys.Next = nil
	}
}

// issue builds op's message header if it has one, takes an SQE and prepares
// it; false when the SQ is full and the kernel takes nothing.
func (b *Backend) issue(op *backend.Op) bool {
	switch op.Kind {
	case backend.KindSendv, backend.KindSendMsg:
		b.buildMsg(op)
	case backend.KindRecvMsg:
		if op.Sys.State&stPollRecv == 0 {
			b.buildMsg(op)
		}
	}
	s := b.getSQE()
	if s == nil {
		return false
	}
	b.prep(s, op)
	return true
}

// prep fills s for op.
func (b *Backend) prep(s *ring.SQE, op *backend.Op) {
	fd := op.Fd
	switch op.Kind {
	case backend.KindNop:
		s.PrepNop()
	case backend.KindAccept:
		if op.Multishot && op.Sys.State&stEmuMulti == 0 {
			s.PrepMultishotAccept(fd, acceptFlags)
		} else {
			s.PrepAccept(fd, nil, nil, acceptFlags)
		}
	case backend.KindConnect:
		s.PrepConnect(fd, op.Addr, op.AddrLen)
	case backend.KindRecv:
		switch {
		case op.Sys.State&stPollRecv != 0:
			s.PrepPollAdd(fd, unix.POLLIN)
		case op.BufferSelect && op.Multishot && op.Sys.State&stEmuMulti == 0:
			if op.Sys.State&stLimited != 0 {
				s.PrepRecvMultishot(fd, b.recvGroup(), b.recvCap, 0)
				s.SetRecvMultishotTotal(b.recvTotal)
			} else {
				s.PrepRecvMultishot(fd, b.recvGroup(), 0, 0)
			}
		case op.BufferSelect:
			s.PrepRecvBufferSelect(fd, b.recvGroup(), 0, 0)
		default:
			s.PrepRecv(fd, op.Buf, 0)
		}
	case backend.KindSend:
		s.PrepSend(fd, op.Buf, unix.MSG_NOSIGNAL)
	case backend.KindSendZC:
		if op.Sys.State&stEmuZC != 0 {
			s.PrepSend(fd, op.Buf, unix.MSG_NOSIGNAL)
		} else {
			s.PrepSendZC(fd, op.Buf, unix.MSG_NOSIGNAL, 0)
		}
	case backend.KindSendv, backend.KindSendMsg:
		s.PrepSendmsg(fd, &op.Sys.Msg, msghdr.SendFlags)
	case backend.KindRecvMsg:
		if op.Sys.State&stPollRecv != 0 {
			s.PrepPollAdd(fd, unix.POLLIN)
			break
		}
		if nativeMultiRecvMsg(op) {
			s.PrepRecvmsgMultishot(fd, &op.Sys.Msg, 0, msghdr.RecvFlags)
			break
		}
		s.PrepRecvmsg(fd, &op.Sys.Msg, msghdr.RecvFlags)
		if op.BufferSelect {
			s.Flags |= ring.SQEBufferSelect
			s.BufIndex = 0
		}
	case backend.KindRead:
		s.PrepRead(fd, op.Buf, ring.OffsetCurrent)
	case backend.KindWrite:
		s.PrepWrite(fd, op.Buf, ring.OffsetCurrent)
	case backend.KindPoll:
		if op.Multishot && op.Sys.State&stEmuMulti == 0 {
			s.PrepPollMultishot(fd, op.Events)
		} else {
			s.PrepPollAdd(fd, op.Events)
		}
	case backend.KindTimeout:
		s.PrepTimeout(&op.Sys.Ts, 0, 0)
	case backend.KindCancel:
		s.PrepCancel(uint64(op.Target), 0)
	case backend.KindCancelFd:
		s.PrepCancelFd(fd, ring.CancelAll)
	case backend.KindClose:
		s.PrepClose(fd)
	case backend.KindShutdown:
		s.PrepShutdown(fd, op.How)
	}
	s.UserData = uint64(op.Token)
}

// recvGroup is the buffer group stream recvs take their buffers from.
func (b *Backend) recvGroup() uint16 {
	if b.inc != nil {
		return incGroup
	}
	return 0
}
