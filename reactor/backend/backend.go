// Package backend is the completion-shaped boundary between the reactor loop and
// the kernel.
//
// A loop hands a backend operations (accept, recv, send, connect, close, timeout,
// cancel, …) and later collects their completions. io_uring works this way already;
// the epoll backend emulates it: it tries the system call at once, parks the
// operation on its descriptor when the call would block, and finishes it when epoll
// reports readiness. Transports are written once against this contract and run
// unchanged on either backend.
//
// # The contract
//
// Every Backend implementation must obey the following.
//
//   - Ownership. Submit takes a *Op. From that moment until the op's final
//     completion (the one without FlagMore) the backend may read and write the Op,
//     every buffer it names (Buf, Bufs, Addr, Control) and its Sys scratch space; the caller
//     must keep the Op reachable and must not modify it. Cancellation does not end
//     ownership: only the final completion does.
//   - Single goroutine. Submit, Wait, ReleaseBuffer and Close are called from one
//     goroutine only, the one that created the backend (a loop locked to its OS
//     thread). Only Wake may be called from any goroutine.
//   - Submit never blocks and never runs completions. It queues; the kernel sees the
//     queue at the next Wait at the latest. It fails only for a malformed op, an
//     unsupported Kind, or a closed backend: such an op produces no completion.
//     Every backend judges ops with the one function Validate, so a malformed op
//     gets the same error (ErrInvalidOp) on every backend.
//   - Wait flushes queued submissions, then blocks until at least one completion is
//     ready, the timeout passes (timeout < 0 waits forever, 0 only polls) or Wake is
//     called. It copies completions into out and returns how many; completions left
//     over are returned by the next Wait. Wait retries EINTR itself and never
//     returns it. A Wait woken by Wake may return zero completions.
//   - An idle backend sleeps. While nothing completes, no timeout is due and no
//     Wake comes, a Wait blocks in one kernel wait (Stats.Waits grows by one or
//     two), however many ops are parked; it never polls in a loop. A batching
//     window (Config.BatchWait) shortens a wait only when completions are ready.
//   - Exactly one final completion per op. Multishot ops (Op.Multishot) deliver
//     completions with FlagMore until a final one without it. A backend whose kernel
//     lacks a multishot form emulates it by re-arming internally: the caller never
//     sees the difference. A zero-copy send delivers its result (with FlagMore) and
//     then a completion with FlagNotif, which is final: only then is Buf free.
//   - Cancellation. KindCancel with Target ends the target op: the target completes
//     with -ECANCELED (or with its result, if it won the race); the cancel op
//     itself completes with 0, -ENOENT or -EALREADY. The two completions may come
//     in either order. KindCancelFd cancels every op on Fd.
//   - Closing a descriptor does not end operations pending on it (io_uring holds
//     its own reference). Callers cancel and drain first, then submit KindClose.
//   - Provided buffers. A recv with BufferSelect picks a buffer from the backend's
//     pool; its completion has FlagBuffer, BufID and Buf (a view of Res bytes into
//     the pool). Buf stays valid until ReleaseBuffer(BufID), which the caller must
//     call exactly once. An empty pool ends a multishot recv with -ENOBUFS and
//     loses no data: the bytes stay in the socket for the next recv.
//   - Errors in completions are negative errnos in Res, never Go errors; Err turns
//     them into syscall.Errno values.
//   - Close cancels whatever is still in flight, waits for the final completions
//     (discarding them; descriptors a discarded recvmsg received with
//     SCM_RIGHTS are closed), then releases the kernel objects. Memory the kernel may
//     still write (io_uring's provided-buffer ring and buffers, the ring itself)
//     is never unmapped while an op may be in flight: if the final completions do
//     not all arrive within Close's bound, that memory is left mapped for the
//     life of the process, counted in Stats.CloseLeaks and logged, rather than
//     freed under the kernel. After Close every method returns ErrClosed (Stats
//     still answers).
//   - Lost completions are reported. A completion the kernel had to drop (an
//     io_uring completion queue overflow without IORING_FEAT_NODROP) would
//     leave its op without a final completion forever; backends count such
//     drops in Stats.CQOverflow and log them.
package backend

import (
	"errors"
	"log/slog"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by a backend's methods after Close.
var ErrClosed = errors.New("gyre/backend: backend closed")

// ErrUnsupported is returned by Submit for an op kind or flag combination the
// backend cannot perform, even emulated. Every ErrInvalidOp also matches it.
var ErrUnsupported = errors.New("gyre/backend: operation not supported")

// ErrInvalidOp is returned (wrapped, with a description) by Validate and so by
// every backend's Submit for a malformed op: nil, an unknown Kind, Multishot or
// BufferSelect on a kind that has none, a multishot recv without
// BufferSelect, a connect without Addr, a sendmsg with AddrLen but no Addr,
// Control on a kind other than sendmsg and recvmsg, a token reserved for backends, or an op submitted again before its final
// completion. errors.Is(err, ErrUnsupported) also holds for it.
var ErrInvalidOp error = invalidOp{}

type invalidOp struct{}

func (invalidOp) Error() string        { return "gyre/backend: invalid operation" }
func (invalidOp) Is(target error) bool { return target == ErrUnsupported }

// Token names one in-flight operation: a slot number in the loop's op table and
// that slot's generation. A completion whose generation no longer matches the slot
// belongs to an op that is gone and is dropped.
type Token uint64

// MakeToken packs a slot and a generation into a Token.
func MakeToken(slot, gen uint32) Token { return Token(uint64(gen)<<32 | uint64(slot)) }

// Slot is the op-table index of t.
func (t Token) Slot() uint32 { return uint32(t) }

// Gen is the generation of t.
func (t Token) Gen() uint32 { return uint32(t >> 32) }

// Kind says which operation an Op is.
type Kind uint8

// The operation kinds. For each: which Op fields it reads, and what Res means.
const (
	// KindNop does nothing. Res = 0.
	KindNop Kind = iota
	// KindAccept accepts on listening socket Fd (SOCK_NONBLOCK|SOCK_CLOEXEC are
	// always set on the new socket). Multishot allowed. Res = new descriptor.
	KindAccept
	// KindConnect connects non-blocking socket Fd to Addr[:AddrLen]. Res = 0
	// once connected. A connect the kernel refuses at once fails at once with
	// its errno; in particular an AF_UNIX stream connect to a listener whose
	// backlog is full completes at once with -EAGAIN (connect(2): the
	// non-blocking answer), on every backend: the op is never parked waiting
	// for the backlog to drain. A TCP connect in progress completes when the
	// handshake ends (0 or -ECONNREFUSED, -ETIMEDOUT, …).
	KindConnect
	// KindRecv receives from stream socket Fd into Buf, or into a provided buffer
	// when BufferSelect is set. Multishot requires BufferSelect. Res = bytes, 0 at
	// end of stream.
	KindRecv
	// KindSend sends Buf on Fd (MSG_NOSIGNAL). Res = bytes sent, possibly fewer
	// than len(Buf).
	KindSend
	// KindSendv sends Bufs on Fd in one vectored sendmsg (MSG_NOSIGNAL). Res = bytes.
	KindSendv
	// KindSendZC sends Buf on Fd without copying where the kernel can. Res = bytes
	// (with FlagMore), then a final FlagNotif completion releases Buf. If the first
	// completion has no FlagMore there is no notification.
	KindSendZC
	// KindRecvMsg is recvmsg(2) on Fd: one datagram, or the next bytes of a
	// stream, into Buf (or a provided buffer with BufferSelect). With Addr set
	// the sender's address is written there and AddrLen set to its length
	// (Addr always has room for a unix.RawSockaddrAny). With Control set,
	// control messages (cmsg(3): SCM_RIGHTS, SCM_CREDENTIALS, IP_PKTINFO, …)
	// are written into it and the completion's Control is the part used.
	// Res = payload length (0 at end of stream, or an empty datagram);
	// FlagTrunc when the datagram did not fit Buf, FlagCtrunc when the
	// control messages did not fit Control (the kernel then closes the
	// descriptors of an SCM_RIGHTS message it could not deliver).
	//
	// Descriptors received with SCM_RIGHTS are always close-on-exec: every
	// backend passes MSG_CMSG_CLOEXEC. On a stream socket a descriptor
	// travels attached to a byte of data, and only a receive with a control
	// buffer delivers it: a KindRecv (multishot included), or a KindRecvMsg
	// without Control, that reads that byte makes the kernel close the
	// descriptor. A stream that may carry descriptors is therefore read with
	// single-shot KindRecvMsg ops and Control.
	//
	// Multishot (datagram sockets only; requires BufferSelect) receives one
	// datagram per completion, each into its own provided buffer, until
	// cancelled, an error, or -ENOBUFS (the pool ran dry; nothing the
	// kernel had queued is lost: re-submit after releasing buffers). Addr
	// non-nil asks for the sender's address and len(Control) is the room
	// reserved for control messages. Each successful completion has
	// FlagMore, Name the sender's address and Control the control
	// messages; one with payload has FlagBuffer, Buf the payload, and Name
	// and Control are views of the provided buffer valid until
	// ReleaseBuffer(BufID). An empty datagram (Res 0) comes without a
	// buffer: its Name and Control are views of Addr and Control, valid
	// until the next Wait (at most one empty datagram per Wait and op), the
	// only time the backend writes them. Every
	// backend lays each buffer out as io_uring does (Linux 6.0,
	// struct io_uring_recvmsg_out: a 16-byte header, the name room, the
	// control room, then the payload), so the payload room, and with it
	// where FlagTrunc starts, is the same on every backend:
	// MultishotRecvMsgRoom. Submit rejects (ErrInvalidOp) a multishot
	// recvmsg whose name and control room leave no payload room.
	KindRecvMsg
	// KindSendMsg is sendmsg(2) (MSG_NOSIGNAL) of Buf, or of Bufs gathered, as
	// one datagram to Addr[:AddrLen] (AddrLen 0: the connected peer), or as the
	// next bytes of a connected stream (AddrLen 0). Control, when set, holds
	// control messages to send with the data (build them with
	// unix.UnixRights, unix.UnixCredentials, …). Res = bytes sent.
	//
	// On a stream socket the control messages go with the first byte sent:
	// send at least one byte with them (Linux sends nothing, and passes no
	// descriptor, for a stream sendmsg of zero bytes), and when Res is short
	// send the rest without Control (they already went). A failed send
	// (Res < 0) sent nothing.
	KindSendMsg
	// KindRead reads Fd (a pipe or file; current offset) into Buf. Res = bytes.
	KindRead
	// KindWrite writes Buf to Fd (current offset). Res = bytes.
	KindWrite
	// KindPoll waits until Fd reports any of Events (unix.POLLIN, …). Multishot
	// allowed. Res = the events that fired.
	KindPoll
	// KindTimeout completes after Timeout with Res = -ETIME.
	KindTimeout
	// KindCancel cancels the op named by Target. Res = 0, -ENOENT or -EALREADY.
	KindCancel
	// KindCancelFd cancels every op on Fd. Res = number cancelled or -ENOENT.
	KindCancelFd
	// KindClose closes Fd. Res = 0.
	KindClose
	// KindShutdown shuts down Fd; How is unix.SHUT_RD, SHUT_WR or SHUT_RDWR.
	KindShutdown
	kindCount
)

var kindNames = [...]string{"nop", "accept", "connect", "recv", "send", "sendv", "send_zc",
	"recvmsg", "sendmsg", "read", "write", "poll", "timeout", "cancel", "cancel_fd", "close", "shutdown"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(?)"
}

// Op is one operation. The loop owns Op values (usually in a slab, reused) and
// hands pointers to Submit; see the package contract for the ownership rules.
type Op struct {
	Kind  Kind
	Token Token
	Fd    int32

	Multishot    bool // keep delivering completions until a final one
	BufferSelect bool // receive into a provided buffer (recv, recvmsg)

	Buf  []byte   // single buffer: recv, send, send_zc, recvmsg, sendmsg, read, write
	Bufs [][]byte // vectored send (KindSendv, KindSendMsg)

	// Addr is the socket address for connect and sendmsg, and where recvmsg writes
	// the sender. AddrLen is its length in bytes (updated by recvmsg).
	Addr    *unix.RawSockaddrAny
	AddrLen uint32

	// Control is ancillary data (cmsg(3)) for KindSendMsg and KindRecvMsg
	// only: the control messages to send, or the room the received ones are
	// written into (see those kinds). Like Buf it belongs to the backend until
	// the op's final completion: the kernel reads or writes it then.
	//
	// Allocation: the backends allocate nothing for Control. The x/sys/unix
	// helpers do: unix.UnixRights and unix.UnixCredentials return a new slice
	// per call, and unix.ParseSocketControlMessage, ParseUnixRights and
	// ParseUnixCredentials allocate their results; a hot path builds its
	// control buffer once (or writes the cmsghdr in place) and reads received
	// messages in place. Size a receive buffer with unix.CmsgSpace; the
	// kernel reports the space used, padding included (CmsgSpace(4) for
	// one descriptor).
	Control []byte

	Events  uint32        // KindPoll
	How     int32         // KindShutdown
	Timeout time.Duration // KindTimeout
	Target  Token         // KindCancel

	// Sys is scratch space owned by the backend while the op is in flight
	// (iovecs, msghdr, timespec). Callers never touch it.
	Sys Sys
}

// Sys is per-op scratch memory a backend may point the kernel at; it lives inside
// the Op so it stays reachable and in place for the op's whole life.
type Sys struct {
	Msg   unix.Msghdr
	Iov   []unix.Iovec
	Ts    unix.Timespec
	State uint32 // backend-private state bits
	Next  *Op    // backend-private list link (epoll wait lists)
}

// Flag describes a completion.
type Flag uint32

// Completion flags.
const (
	// FlagMore: more completions follow for the same op.
	FlagMore Flag = 1 << iota
	// FlagNotif: the zero-copy notification; the send buffer is free again.
	FlagNotif
	// FlagBuffer: Buf is a provided buffer to give back with ReleaseBuffer(BufID).
	FlagBuffer
	// FlagTrunc: a datagram was larger than the buffer and was truncated.
	FlagTrunc
	// FlagSockNonEmpty: the socket had more data after this recv.
	FlagSockNonEmpty
	// FlagCtrunc: a recvmsg's control messages did not all fit Op.Control
	// (MSG_CTRUNC); descriptors that did not fit were closed by the kernel.
	FlagCtrunc
)

// Completion is one result of one op.
type Completion struct {
	Token Token
	Res   int32 // >= 0: result; < 0: -errno
	Flags Flag
	BufID uint16
	Buf   []byte // with FlagBuffer: the received bytes, valid until ReleaseBuffer
	// Control is, for a KindRecvMsg with Op.Control, the control messages
	// received: Op.Control[:n] for the n bytes the kernel wrote (parse them
	// with unix.ParseSocketControlMessage). It is a view of the caller's
	// memory, valid as long as the caller keeps Op.Control untouched; nil
	// when none arrived. For a multishot KindRecvMsg it is a view of the
	// provided buffer instead (see KindRecvMsg).
	Control []byte
	// Name is, for a KindRecvMsg with Op.Addr, the sender's address as the
	// kernel wrote it (a struct sockaddr of len(Name) bytes; nil when the
	// socket reported none, as for an unbound UNIX datagram sender). A view
	// of Op.Addr for a single-shot recvmsg, of the provided buffer for a
	// multishot one.
	Name []byte
}

// RecvMsgHeaderLen is the size of struct io_uring_recvmsg_out, the header
// io_uring writes at the start of each buffer of a multishot recvmsg (and
// which every backend reserves alike).
const RecvMsgHeaderLen = 16

// MultishotRecvMsgRoom returns the payload room of each provided buffer of
// bufferSize bytes for a multishot KindRecvMsg op shaped like op (name room
// unix.SizeofSockaddrAny when op.Addr is set, control room len(op.Control)),
// with the name and control room; room <= 0 means the op cannot run.
// A datagram longer than room is delivered cut, with FlagTrunc.
func MultishotRecvMsgRoom(op *Op, bufferSize int) (room, nameLen, controlLen int) {
	if op.Addr != nil {
		nameLen = unix.SizeofSockaddrAny
	}
	controlLen = len(op.Control)
	return bufferSize - RecvMsgHeaderLen - nameLen - controlLen, nameLen, controlLen
}

// Err returns nil for a successful completion and the errno for a failed one.
func (c *Completion) Err() error {
	if c.Res >= 0 {
		return nil
	}
	return syscall.Errno(-c.Res)
}

// More reports whether further completions follow for the same op.
func (c *Completion) More() bool { return c.Flags&FlagMore != 0 }

// Features says what a backend can do natively on the running kernel. Emulated
// behaviour (multishot re-armed in user space) is not counted as native.
type Features struct {
	MultishotAccept bool
	MultishotRecv   bool
	ProvidedBuffers bool
	SendZC          bool
	// Setup names the ring set-up flags in use ("single_issuer|defer_taskrun",
	// "coop_taskrun", "none"); empty for epoll.
	Setup string
	// RecvBuffers and RecvBufferSize describe the buffers stream receives
	// (KindRecv with BufferSelect) draw from when they differ from
	// Config.BufferCount and BufferSize (0: they do not): both backends
	// regroup the same memory into 64 KiB buffers (Config.LargeRecv) — the
	// io_uring backend only where the kernel can bound a multishot recv's
	// bytes per arming (6.17+), the epoll backend in its emulated pool (so
	// with ProvidedBuffers false).
	RecvBuffers, RecvBufferSize int
}

// Stats counts a backend's work since New. The counters only grow.
type Stats struct {
	// Waits is the number of kernel calls that could put the loop's thread to
	// sleep (io_uring_enter waiting for completions, epoll_wait with a
	// non-zero timeout). An idle Wait adds one (two at most).
	Waits uint64
	// Polls is the number of kernel calls that only submitted or looked
	// without sleeping (io_uring_enter without a wait, epoll_wait with a zero
	// timeout).
	Polls uint64
	// CQOverflow is the number of completions the kernel dropped because the
	// completion queue was full (io_uring without IORING_FEAT_NODROP, or out
	// of memory). Each is an op that will never see its final completion; any
	// non-zero value is a bug to report (size Config.CQEntries for the
	// completions in flight). Always 0 for epoll.
	CQOverflow uint64
	// CloseLeaks is the number of kernel-shared memory regions Close left
	// mapped because ops were still in flight when its bound ran out (see the
	// contract). Always 0 for epoll.
	CloseLeaks uint64
	// UrgentMarkChecks counts SIOCATMARK ioctls: a read that may have
	// stopped at TCP's urgent mark while a signal was pending (then it fails
	// with EAGAIN although bytes follow; see the backends' docs) is checked
	// and made again. 0 on a loop whose peers send no urgent data, apart from
	// rare io_uring passes that end on a "more queued" completion.
	UrgentMarkChecks uint64
}

// Config sizes a backend. The zero value picks sensible defaults.
type Config struct {
	// Entries is the submission queue size (io_uring) or the epoll event batch;
	// default 256. CQEntries sizes the completion queue; default 4×Entries.
	Entries   uint32
	CQEntries uint32
	// BufferCount provided buffers of BufferSize bytes each form the receive pool.
	// BufferCount must be a power of two; defaults 1024 and 4096.
	BufferCount int
	BufferSize  int
	// BatchWait lets a busy io_uring loop collect several completions per
	// wake-up: after a batch of k completions the next wait asks the kernel
	// for k again, but returns as soon as one is ready once BatchWait has
	// passed (IORING_FEAT_MIN_TIMEOUT, 6.12+). A loop that handled a single
	// completion waits for one, so an idle or ping-pong connection gets no
	// added latency. Default 50µs; negative turns it off. Epoll ignores it.
	BatchWait time.Duration
	// Logger receives the backend's rare reports (a completion queue
	// overflow, memory left mapped by a Close that timed out); nil means
	// slog.Default().
	Logger *slog.Logger
}

// WithDefaults fills in zero fields.
func (c Config) WithDefaults() Config {
	if c.Entries == 0 {
		c.Entries = 256
	}
	if c.CQEntries == 0 {
		c.CQEntries = 4 * c.Entries
	}
	if c.BufferCount == 0 {
		c.BufferCount = 1024
	}
	if c.BufferSize == 0 {
		c.BufferSize = 4096
	}
	if c.BatchWait == 0 {
		c.BatchWait = 50 * time.Microsecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Backend is the contract every backend implements; see the package comment.
type Backend interface {
	// Name is "uring" or "epoll".
	Name() string
	// Features reports native capabilities.
	Features() Features
	// Stats returns the backend's counters. Loop goroutine only; also after
	// Close.
	Stats() Stats
	// Submit queues op. Loop goroutine only; never blocks.
	Submit(op *Op) error
	// Wait flushes submissions and waits for completions (see the contract).
	// Loop goroutine only.
	Wait(out []Completion, timeout time.Duration) (int, error)
	// Wake makes a concurrent or the next Wait return. Goroutine-safe.
	Wake() error
	// ReleaseBuffer gives a provided buffer back to the pool. Loop goroutine only.
	ReleaseBuffer(id uint16)
	// Close drains and releases everything. Loop goroutine only.
	Close() error
}

// LargeRecvSize is the size of the buffers a backend regroups its receive
// pool into for stream receives (Config.LargeRecv): one receive then takes
// up to 64 KiB, as Twisted's and gnet's reads do, instead of one
// BufferSize piece at a time.
const LargeRecvSize = 64 << 10

// largeRecvMin is the fewest large buffers worth regrouping into.
const largeRecvMin = 16

// LargeRecv is the regrouping of c's receive pool (BufferCount×BufferSize
// bytes) into count buffers of LargeRecvSize bytes for stream receives:
// count is the largest power of two whose buffers fit in the pool's bytes.
// ok is false (keep BufferCount×BufferSize) when BufferSize is already at
// least LargeRecvSize or fewer than 16 large buffers would result. The
// defaults (1024 × 4 KiB) give 64 × 64 KiB.
func (c Config) LargeRecv() (count int, ok bool) {
	c = c.WithDefaults()
	if c.BufferSize >= LargeRecvSize || c.BufferSize <= 0 || c.BufferCount <= 0 || c.BufferCount > 32768 ||
		c.BufferCount&(c.BufferCount-1) != 0 {
		return 0, false // already large, or invalid: New reports it
	}
	n := c.BufferCount * c.BufferSize / LargeRecvSize
	count = 1
	for count*2 <= n {
		count *= 2
	}
	if n < largeRecvMin {
		return 0, false
	}
	return count, true
}
