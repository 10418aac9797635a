package uring

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
)

// TCP urgent data and signals.
//
// A recv at TCP's urgent mark fails with EAGAIN whenever the thread has a
// signal pending (tcp_recvmsg_locked stops at the mark "if we have read
// anything or have SIGURG pending", and the test is for any signal), although
// bytes wait behind the mark. A native multishot recv that stopped at the mark
// is retried by the kernel at once (its completion carried
// IORING_CQE_F_SOCK_NONEMPTY), inside io_uring_enter on the loop's thread; if
// that retry meets a pending signal (the Go runtime signals its own threads:
// preemption, profiling) the recv goes back to waiting for a wake-up that no
// byte already queued will bring, and the stream stalls.
//
// The backend notices the shape: a stream recv whose last completion said
// "more queued" and which posted nothing after it once the CQ is drained. It
// asks the socket whether it sits at the urgent mark (SIOCATMARK); only then
// is the recv stuck, and setting SO_RCVLOWAT to its own value (tcp_set_rcvlowat
// calls tcp_data_ready) wakes the recv's poll so the kernel retries it. Until
// that retry posts, Wait sleeps at most markPoll at a time and asks again.
// Anything else (the kernel requeued a busy recv, the mark was passed) drops
// the suspicion. Cost in steady state: one flag test per completion; an ioctl
// only after a pass ended on a "more queued" completion.
//
// Not recovered: a recv that reached the mark because new bytes woke it (its
// last completion did not say "more queued") and met a signal there waits
// for the next bytes to arrive. Nothing the backend sees tells that case from
// an idle socket short of a system call per completion. It needs urgent
// data (obsolete, RFC 6093: telnet and FTP still send it) split across
// segments that arrive on either side of a loop turn, and a signal landing on
// the loop's thread within that retry; the epoll backend, which makes its
// reads itself, recovers every case.

// markPoll bounds a Wait's sleep while a recv may be stuck at the urgent mark.
const markPoll = time.Millisecond

// noteNonEmpty records what c says about a native multishot stream recv op:
// a data completion with FlagMore and FlagSockNonEmpty makes it a suspect until
// its next completion.
func (b *Backend) noteNonEmpty(op *backend.Op, c *backend.Completion) {
	if op.Kind != backend.KindRecv || !op.Multishot || op.Sys.State&(stEmuMulti|stPollRecv) != 0 {
		return
	}
	if c.Res > 0 && c.Flags&(backend.FlagMore|backend.FlagSockNonEmpty) == backend.FlagMore|backend.FlagSockNonEmpty {
		op.Sys.State |= stNonEmpty
		if op.Sys.State&stListed == 0 {
			op.Sys.State |= stListed
			b.nonEmpty = append(b.nonEmpty, op.Token)
		}
		return
	}
	op.Sys.State &^= stNonEmpty
}

// checkMarks runs once the CQ is drained: every suspect that is still
// in flight, still has no later completion and sits at the urgent mark is
// woken; the others are forgotten. It reports whether suspects remain.
func (b *Backend) checkMarks() bool {
	kept := b.nonEmpty[:0]
	for _, tok := range b.nonEmpty {
		op := b.live.Lookup(tok)
		if op == nil || op.Sys.State&stListed == 0 {
			continue // finished, or a duplicate (the op was submitted again)
		}
		if op.Sys.State&stNonEmpty == 0 {
			op.Sys.State &^= stListed
			continue
		}
		b.stats.UrgentMarkChecks++
		if mark, err := unix.IoctlGetInt(int(op.Fd), unix.SIOCATMARK); err != nil || mark == 0 {
			op.Sys.State &^= stNonEmpty
			continue
		}
		// tcp_set_rcvlowat wakes the socket's waiters if at least the new
		// low-water mark is queued: 1 does, and the user's value is put back.
		lowat, err := unix.GetsockoptInt(int(op.Fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT)
		_ = unix.SetsockoptInt(int(op.Fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, 1)
		if err == nil && lowat != 1 {
			_ = unix.SetsockoptInt(int(op.Fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, lowat)
		}
		kept = append(kept, tok)
	}
	clear(b.nonEmpty[len(kept):])
	b.nonEmpty = kept
	return len(kept) > 0
}
