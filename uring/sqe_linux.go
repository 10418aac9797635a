package uring

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Opcode is an io_uring operation code (enum io_uring_op).
type Opcode uint8

// The opcodes gyre uses.
const (
	OpNop           Opcode = 0
	OpPollAdd       Opcode = 6
	OpPollRemove    Opcode = 7
	OpSendmsg       Opcode = 9
	OpRecvmsg       Opcode = 10
	OpTimeout       Opcode = 11
	OpTimeoutRemove Opcode = 12
	OpAccept        Opcode = 13
	OpAsyncCancel   Opcode = 14
	OpLinkTimeout   Opcode = 15
	OpConnect       Opcode = 16
	OpClose         Opcode = 19
	OpRead          Opcode = 22
	OpWrite         Opcode = 23
	OpSend          Opcode = 26
	OpRecv          Opcode = 27
	OpProvideBufs   Opcode = 31
	OpShutdown      Opcode = 34
	OpMsgRing       Opcode = 40
	OpSocket        Opcode = 45
	OpSendZC        Opcode = 47
	OpSendmsgZC     Opcode = 48
)

// OffsetCurrent as the offset of PrepRead/PrepWrite means "the file's current
// position" (pipes, sockets, and files read sequentially).
const OffsetCurrent = ^uint64(0)

// SQE is one submission queue entry (struct io_uring_sqe, 64 bytes). It lives in
// memory shared with the kernel: obtain it from Ring.GetSQE, fill it with exactly
// one Prep method, then set UserData (and Flags if needed) and submit.
//
// Every Prep method overwrites the whole entry (UserData and Flags included) and
// allocates nothing. Memory an SQE points at is read or written by the kernel
// later, so it must not live on a goroutine stack and must stay reachable:
//   - timespecs, msghdrs, sockaddrs and addrlen words: until the SQE is submitted
//     (the kernel copies them at submission; IORING_FEAT_SUBMIT_STABLE);
//   - data buffers and the buffers a msghdr's iovecs name: until the request's
//     final completion (the one without CQEFMore).
//
// Heap-allocated values that the caller keeps referenced (for example fields of
// a long-lived struct) or mmap'd memory satisfy this.
type SQE struct {
	Opcode   Opcode
	Flags    uint8
	Ioprio   uint16
	Fd       int32
	Off      uint64 // also addr2
	Addr     uint64
	Len      uint32
	OpFlags  uint32 // rw_flags, msg_flags, timeout_flags, accept_flags, cancel_flags, poll32_events, …
	UserData uint64
	BufIndex uint16 // also buf_group
	// Personality is the registered credentials to use, if any.
	Personality uint16
	SpliceFdIn  int32 // also file_index, addr_len
	Addr3       uint64
	pad         uint64
}

func ptr[T any](p *T) uint64 { return uint64(uintptr(unsafe.Pointer(p))) }

func bufAddr(b []byte) uint64 {
	if cap(b) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

func (s *SQE) rw(op Opcode, fd int32, addr uint64, n uint32, off uint64) {
	*s = SQE{Opcode: op, Fd: fd, Addr: addr, Len: n, Off: off}
}

// PrepNop prepares a no-op. Res 0.
func (s *SQE) PrepNop() { s.rw(OpNop, -1, 0, 0, 0) }

// PrepTimeout prepares a timeout that completes with -ETIME after ts (relative,
// or absolute with TimeoutAbs in flags), or with 0 once count other completions
// have been posted (count 0: pure timer).
func (s *SQE) PrepTimeout(ts *unix.Timespec, count uint32, flags uint32) {
	s.rw(OpTimeout, -1, ptr(ts), 1, uint64(count))
	s.OpFlags = flags
}

// PrepTimeoutRemove removes the timeout whose UserData is target. Res 0, -ENOENT
// or -EALREADY; the removed timeout completes with -ECANCELED.
func (s *SQE) PrepTimeoutRemove(target uint64, flags uint32) {
	s.rw(OpTimeoutRemove, -1, target, 0, 0)
	s.OpFlags = flags
}

// PrepLinkTimeout prepares a timeout for the previous SQE, which must carry
// SQEIOLink. If it fires, the linked request is cancelled (-ECANCELED) and the
// link timeout completes with -ETIME; otherwise it completes with -ECANCELED.
func (s *SQE) PrepLinkTimeout(ts *unix.Timespec, flags uint32) {
	s.rw(OpLinkTimeout, -1, ptr(ts), 1, 0)
	s.OpFlags = flags
}

// PrepAccept accepts one connection on listening socket fd. addr and addrLen may
// be nil; if set, *addrLen must hold the size of *addr. flags are accept4 flags
// (unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC). Res is the new descriptor.
func (s *SQE) PrepAccept(fd int32, addr *unix.RawSockaddrAny, addrLen *uint32, flags uint32) {
	var a, l uint64
	if addr != nil {
		a, l = ptr(addr), ptr(addrLen)
	}
	s.rw(OpAccept, fd, a, 0, l)
	s.OpFlags = flags
}

// PrepMultishotAccept accepts connections until cancelled or an error; each CQE
// carries one descriptor and CQEFMore while the request stays armed. It passes no
// address (one shared address buffer would be overwritten by every
// connection): call getpeername instead.
func (s *SQE) PrepMultishotAccept(fd int32, flags uint32) {
	s.rw(OpAccept, fd, 0, 0, 0)
	s.OpFlags = flags
	s.Ioprio = acceptMultishot
}

// PrepConnect connects socket fd to addr[:addrLen]. Res 0.
func (s *SQE) PrepConnect(fd int32, addr *unix.RawSockaddrAny, addrLen uint32) {
	s.rw(OpConnect, fd, ptr(addr), 0, uint64(addrLen))
}

// PrepRecv receives into buf on socket fd. Res bytes, 0 at end of stream.
func (s *SQE) PrepRecv(fd int32, buf []byte, msgFlags uint32) {
	s.rw(OpRecv, fd, bufAddr(buf), uint32(len(buf)), 0)
	s.OpFlags = msgFlags
}

// PrepRecvBufferSelect receives into a buffer the kernel picks from provided
// buffer group; maxLen caps the bytes taken (0: the buffer's size). The CQE has
// CQEFBuffer and the buffer ID (CQE.BufferID).
func (s *SQE) PrepRecvBufferSelect(fd int32, group uint16, maxLen uint32, msgFlags uint32) {
	s.rw(OpRecv, fd, 0, maxLen, 0)
	s.OpFlags = msgFlags
	s.Flags = SQEBufferSelect
	s.BufIndex = group
}

// PrepRecvMultishot receives repeatedly into buffers from provided buffer group
// (requires buffer selection; MSG_WAITALL is not allowed). Each CQE carries one
// buffer; the request stays armed while CQEs carry CQEFMore. An empty group ends
// it with -ENOBUFS, leaving unread data in the socket.
//
// maxLen 0 receives up to a whole buffer per CQE; a non-zero maxLen caps
// each receive (a kernel that predates the cap fails the request with
// -EINVAL). Either
// way one invocation (the socket became readable) goes on receiving while
// data remains, up to the kernel's retry bound (MULTISHOT_MAX_RETRY, 32
// receives) before other requests get their turn; SetRecvMultishotTotal
// bounds a request's bytes instead.
func (s *SQE) PrepRecvMultishot(fd int32, group uint16, maxLen uint32, msgFlags uint32) {
	s.PrepRecvBufferSelect(fd, group, maxLen, msgFlags)
	s.Ioprio = recvMultishot
}

// SetRecvMultishotTotal makes the multishot recv s was prepared as end once
// it has received limit bytes in total (possibly more: the receive that
// reaches the limit is not cut): its last CQE carries data and no CQEFMore,
// and the application re-arms it if it wants more. Re-arming puts the
// socket behind the other requests the ring has ready, which bounds what
// one busy socket takes per turn however large the buffers. 0 means no
// limit. sqe->optlen; Linux 6.17+ (Features.MultishotRecvTotal), older
// kernels fail the request with -EINVAL.
func (s *SQE) SetRecvMultishotTotal(limit uint32) { s.SpliceFdIn = int32(limit) }

// PrepSend sends buf on socket fd. Res bytes sent, possibly short.
func (s *SQE) PrepSend(fd int32, buf []byte, msgFlags uint32) {
	s.rw(OpSend, fd, bufAddr(buf), uint32(len(buf)), 0)
	s.OpFlags = msgFlags
}

// PrepSendZC sends buf on fd without copying where possible. The first CQE holds
// the result; if it has CQEFMore, a second CQE with CQEFNotif follows when the
// kernel no longer uses buf. zcFlags: SendZCReportUsage, RecvSendPollFirst.
func (s *SQE) PrepSendZC(fd int32, buf []byte, msgFlags uint32, zcFlags uint16) {
	s.rw(OpSendZC, fd, bufAddr(buf), uint32(len(buf)), 0)
	s.OpFlags = msgFlags
	s.Ioprio = zcFlags
}

// PrepSendmsg sends the message msg describes on fd. Res bytes.
func (s *SQE) PrepSendmsg(fd int32, msg *unix.Msghdr, msgFlags uint32) {
	s.rw(OpSendmsg, fd, ptr(msg), 1, 0)
	s.OpFlags = msgFlags
}

// PrepSendmsgZC is PrepSendmsg without copying; completions as for PrepSendZC.
func (s *SQE) PrepSendmsgZC(fd int32, msg *unix.Msghdr, msgFlags uint32) {
	s.rw(OpSendmsgZC, fd, ptr(msg), 1, 0)
	s.OpFlags = msgFlags
}

// PrepRecvmsg receives one message on fd into the buffers msg describes. Res
// payload bytes; the kernel updates msg's Namelen, Controllen and Flags.
func (s *SQE) PrepRecvmsg(fd int32, msg *unix.Msghdr, msgFlags uint32) {
	s.rw(OpRecvmsg, fd, ptr(msg), 1, 0)
	s.OpFlags = msgFlags
}

// PrepRecvmsgMultishot receives messages repeatedly into buffers from group.
// msg supplies only Namelen and Controllen (how much room to reserve); each
// buffer starts with a RecvmsgOut header (see ParseRecvmsgOut). Res is the bytes
// used in the buffer.
func (s *SQE) PrepRecvmsgMultishot(fd int32, msg *unix.Msghdr, group uint16, msgFlags uint32) {
	s.PrepRecvmsg(fd, msg, msgFlags)
	s.Flags = SQEBufferSelect
	s.BufIndex = group
	s.Ioprio = recvMultishot
}

// PrepRead reads fd into buf at offset (OffsetCurrent: current position). Res bytes.
func (s *SQE) PrepRead(fd int32, buf []byte, offset uint64) {
	s.rw(OpRead, fd, bufAddr(buf), uint32(len(buf)), offset)
}

// PrepWrite writes buf to fd at offset (OffsetCurrent: current position). Res bytes.
func (s *SQE) PrepWrite(fd int32, buf []byte, offset uint64) {
	s.rw(OpWrite, fd, bufAddr(buf), uint32(len(buf)), offset)
}

// PrepClose closes fd. Res 0. Closing does not end requests pending on fd.
func (s *SQE) PrepClose(fd int32) { s.rw(OpClose, fd, 0, 0, 0) }

// PrepShutdown shuts down socket fd; how is unix.SHUT_RD, SHUT_WR or SHUT_RDWR.
func (s *SQE) PrepShutdown(fd int32, how int32) { s.rw(OpShutdown, fd, 0, uint32(how), 0) }

// PrepPollAdd waits once until fd reports one of events (unix.POLLIN, …). Res is
// the events that fired.
func (s *SQE) PrepPollAdd(fd int32, events uint32) {
	s.rw(OpPollAdd, fd, 0, 0, 0)
	s.OpFlags = events // poll32_events, little-endian
}

// PrepPollMultishot is PrepPollAdd staying armed: one CQE (with CQEFMore) per
// readiness edge until cancelled.
func (s *SQE) PrepPollMultishot(fd int32, events uint32) {
	s.PrepPollAdd(fd, events)
	s.Len = pollAddMulti
}

// PrepPollRemove removes the poll request whose UserData is target.
func (s *SQE) PrepPollRemove(target uint64) { s.rw(OpPollRemove, -1, target, 0, 0) }

// PrepCancel cancels the request whose UserData is target (flags: CancelAll to
// cancel every match). Res 0 (or the count with CancelAll), -ENOENT or
// -EALREADY; the target completes with -ECANCELED unless it won the race.
func (s *SQE) PrepCancel(target uint64, flags uint32) {
	s.rw(OpAsyncCancel, -1, target, 0, 0)
	s.OpFlags = flags
}

// PrepCancelFd cancels requests on fd (flags: CancelAll for every one).
func (s *SQE) PrepCancelFd(fd int32, flags uint32) {
	s.rw(OpAsyncCancel, fd, 0, 0, 0)
	s.OpFlags = flags | CancelFd
}

// PrepCancelAny cancels any request in flight (with CancelAll: every one).
func (s *SQE) PrepCancelAny(flags uint32) {
	s.rw(OpAsyncCancel, -1, 0, 0, 0)
	s.OpFlags = flags | CancelAny
}

// PrepMsgRing posts a CQE with Res res and UserData userData to the ring whose
// descriptor is ringFd (possibly this ring: a cheap wake-up). Res of this
// request is 0.
func (s *SQE) PrepMsgRing(ringFd int32, res uint32, userData uint64, flags uint32) {
	s.rw(OpMsgRing, ringFd, msgData, res, userData)
	s.OpFlags = flags
}

// PrepSocket creates a socket like socket(2). Res is the descriptor.
func (s *SQE) PrepSocket(domain, typ, proto int32, flags uint32) {
	s.rw(OpSocket, domain, 0, uint32(proto), uint64(typ))
	s.OpFlags = flags
}

// CQE is one completion queue entry (struct io_uring_cqe).
type CQE struct {
	UserData uint64
	Res      int32 // >= 0 result, < 0 -errno
	Flags    uint32
}

// More reports whether the request posts further CQEs.
func (c CQE) More() bool { return c.Flags&CQEFMore != 0 }

// Notif reports whether this is a zero-copy notification.
func (c CQE) Notif() bool { return c.Flags&CQEFNotif != 0 }

// HasBuffer reports whether a provided buffer was consumed (see BufferID).
func (c CQE) HasBuffer() bool { return c.Flags&CQEFBuffer != 0 }

// BufferID is the ID of the provided buffer used; meaningful only with HasBuffer.
func (c CQE) BufferID() uint16 { return uint16(c.Flags >> cqeBufferShift) }

// Err returns nil for Res >= 0 and the syscall.Errno otherwise.
func (c CQE) Err() error {
	if c.Res >= 0 {
		return nil
	}
	return syscall.Errno(-c.Res)
}

// ParseRecvmsgOut splits a buffer filled by a multishot recvmsg (b is the
// buffer's first n bytes, n being the CQE's Res) into its header, source name,
// control data and payload, for a request whose msghdr reserved nameLen and
// controlLen bytes. ok is false when b is too short. The slices alias b.
func ParseRecvmsgOut(b []byte, nameLen, controlLen uint32) (h RecvmsgOut, name, control, payload []byte, ok bool) {
	hs := int(unsafe.Sizeof(RecvmsgOut{}))
	if len(b) < hs+int(nameLen)+int(controlLen) {
		return h, nil, nil, nil, false
	}
	h = *(*RecvmsgOut)(unsafe.Pointer(&b[0]))
	off := hs
	nl := min(h.NameLen, nameLen)
	name = b[off : off+int(nl)]
	off += int(nameLen)
	cl := min(h.ControlLen, controlLen)
	control = b[off : off+int(cl)]
	off += int(controlLen)
	end := off + int(h.PayloadLen)
	if end > len(b) {
		end = len(b)
	}
	payload = b[off:end]
	return h, name, control, payload, true
}
