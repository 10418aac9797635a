package uring

// Kernel UAPI of io_uring (include/uapi/linux/io_uring.h), restated in Go.
// Only the parts gyre uses are here. Layouts are checked by TestUAPILayout.

// SQE flags (sqe->flags).
const (
	// SQEFixedFile: Fd is an index into the registered file table.
	SQEFixedFile uint8 = 1 << 0
	// SQEIODrain: issue only after every earlier SQE has completed.
	SQEIODrain uint8 = 1 << 1
	// SQEIOLink: the next SQE starts only after this one completes successfully.
	SQEIOLink uint8 = 1 << 2
	// SQEIOHardlink: like SQEIOLink, but the chain survives a failure.
	SQEIOHardlink uint8 = 1 << 3
	// SQEAsync: always punt to the async worker pool.
	SQEAsync uint8 = 1 << 4
	// SQEBufferSelect: pick a buffer from the group in BufIndex.
	SQEBufferSelect uint8 = 1 << 5
	// SQECQESkipSuccess: post no CQE when the request succeeds.
	SQECQESkipSuccess uint8 = 1 << 6
)

// Setup flags (io_uring_params.flags).
const (
	setupCQSize       = 1 << 3
	setupClamp        = 1 << 4
	setupSubmitAll    = 1 << 7
	setupCoopTaskrun  = 1 << 8
	setupTaskrunFlag  = 1 << 9
	setupSingleIssuer = 1 << 12
	setupDeferTaskrun = 1 << 13
	setupNoSQArray    = 1 << 16 // IORING_SETUP_NO_SQARRAY (6.6)
)

// Timeout flags (sqe->timeout_flags).
const (
	// TimeoutAbs: the timespec is an absolute time.
	TimeoutAbs    uint32 = 1 << 0
	timeoutUpdate        = 1 << 1
	// TimeoutBoottime: measure against CLOCK_BOOTTIME.
	TimeoutBoottime uint32 = 1 << 2
	// TimeoutRealtime: measure against CLOCK_REALTIME.
	TimeoutRealtime uint32 = 1 << 3
	// TimeoutEtimeSuccess: a timeout expiring completes with -ETIME but does not
	// break a link chain.
	TimeoutEtimeSuccess uint32 = 1 << 5
	// TimeoutMultishot: a repeating timeout (kernel 6.4+).
	TimeoutMultishot uint32 = 1 << 6
)

// Poll flags, stored in sqe->len for POLL_ADD.
const (
	pollAddMulti = 1 << 0
)

// Async cancel flags (sqe->cancel_flags).
const (
	// CancelAll cancels every request matching the key, not just the first.
	CancelAll uint32 = 1 << 0
	// CancelFd matches on the file descriptor instead of user data.
	CancelFd uint32 = 1 << 1
	// CancelAny matches any request.
	CancelAny uint32 = 1 << 2
	// CancelFdFixed says the descriptor is a fixed-file index.
	CancelFdFixed uint32 = 1 << 3
)

// send/recv flags, stored in sqe->ioprio.
const (
	// RecvSendPollFirst arms poll before the first attempt (socket expected empty/full).
	RecvSendPollFirst uint16 = 1 << 0
	recvMultishot            = 1 << 1
	// SendZCReportUsage asks the notification to report whether data was copied.
	SendZCReportUsage uint16 = 1 << 3
)

// NotifUsageZCCopied is set in the Res of a send_zc notification (with
// SendZCReportUsage) when the kernel had to copy the data after all.
const NotifUsageZCCopied = int32(-1 << 31)

// Accept flags, stored in sqe->ioprio.
const (
	acceptMultishot = 1 << 0
)

// msg_ring command (sqe->addr).
const (
	msgData = 0
)

// CQE flags (cqe->flags).
const (
	// CQEFBuffer: the upper 16 bits of Flags hold the ID of the provided buffer used.
	CQEFBuffer uint32 = 1 << 0
	// CQEFMore: the request will post more CQEs (multishot, send_zc).
	CQEFMore uint32 = 1 << 1
	// CQEFSockNonempty: the socket had more data after this receive.
	CQEFSockNonempty uint32 = 1 << 2
	// CQEFNotif: this CQE is a zero-copy send notification.
	CQEFNotif uint32 = 1 << 3
	// CQEFBufMore: the provided buffer of an incrementally consumed ring
	// (NewBufRingIncremental) was used only in part; the kernel keeps filling
	// it from where this completion's data ends (IORING_CQE_F_BUF_MORE, 6.12).
	CQEFBufMore uint32 = 1 << 4
	// cqeBufferShift is where the buffer ID starts in Flags.
	cqeBufferShift = 16
)

// mmap offsets.
const (
	offSQRing = 0
	offCQRing = 0x8000000
	offSQEs   = 0x10000000
)

// SQ ring flags (*sq.flags).
const (
	sqNeedWakeup = 1 << 0
	sqCQOverflow = 1 << 1
	sqTaskrun    = 1 << 2
)

// Enter flags.
const (
	enterGetEvents     = 1 << 0
	enterExtArg        = 1 << 3
	enterRegisteredRng = 1 << 4 // IORING_ENTER_REGISTERED_RING (5.18)
)

// Features (io_uring_params.features).
const (
	featSingleMMap = 1 << 0
	featNoDrop     = 1 << 1
	featExtArg     = 1 << 8
	featCQESkip    = 1 << 11 // IORING_FEAT_CQE_SKIP (5.17)
)

// Register opcodes.
const (
	registerProbe          = 8
	registerRingFds        = 20 // IORING_REGISTER_RING_FDS (5.18)
	unregisterRingFds      = 21
	maxRegisteredRings     = 16 // IO_RINGFD_REG_MAX: slots per thread
	registerPbufRing       = 22
	unregisterPbufRing     = 23
	pbufRingInc            = 2 // IOU_PBUF_RING_INC, io_uring_buf_reg.flags (6.12)
	ioURingOpSupported     = 1 << 0
	probeOpsCapacity       = 256
	maxBufRingEntries      = 32768
	sizeofSQE              = 64
	sizeofCQE              = 16
	sizeofBufRingEntry     = 16
	sizeofGeteventsArg     = 24
	sizeofKernelTimespec   = 16
	sizeofIOURingParams    = 120
	sizeofIOURingBufReg    = 40
	sizeofIOURingProbeHead = 16
	sizeofRsrcUpdate       = 16
)

// rsrcUpdate is struct io_uring_rsrc_update (IORING_REGISTER_RING_FDS).
type rsrcUpdate struct {
	Offset uint32
	Resv   uint32
	Data   uint64
}

type sqringOffsets struct {
	Head        uint32
	Tail        uint32
	RingMask    uint32
	RingEntries uint32
	Flags       uint32
	Dropped     uint32
	Array       uint32
	Resv1       uint32
	UserAddr    uint64
}

type cqringOffsets struct {
	Head        uint32
	Tail        uint32
	RingMask    uint32
	RingEntries uint32
	Overflow    uint32
	Cqes        uint32
	Flags       uint32
	Resv1       uint32
	UserAddr    uint64
}

// params is struct io_uring_params.
type params struct {
	SQEntries    uint32
	CQEntries    uint32
	Flags        uint32
	SQThreadCPU  uint32
	SQThreadIdle uint32
	Features     uint32
	WQFd         uint32
	Resv         [3]uint32
	SQOff        sqringOffsets
	CQOff        cqringOffsets
}

// geteventsArg is struct io_uring_getevents_arg.
type geteventsArg struct {
	Sigmask     uint64
	SigmaskSz   uint32
	MinWaitUsec uint32
	Ts          uint64
}

// bufReg is struct io_uring_buf_reg.
type bufReg struct {
	RingAddr    uint64
	RingEntries uint32
	Bgid        uint16
	Flags       uint16
	Resv        [3]uint64
}

// bufRingEntry is struct io_uring_buf. The ring's tail overlays the resv field of
// entry 0.
type bufRingEntry struct {
	Addr uint64
	Len  uint32
	Bid  uint16
	Resv uint16
}

// probeOp is struct io_uring_probe_op.
type probeOp struct {
	Op    uint8
	Resv  uint8
	Flags uint16
	Resv2 uint32
}

// probeHead is struct io_uring_probe without its flexible ops array.
type probeHead struct {
	LastOp uint8
	OpsLen uint8
	Resv   uint16
	Resv2  [3]uint32
}

// probeBuf is a probe header followed by room for every opcode.
type probeBuf struct {
	probeHead
	Ops [probeOpsCapacity]probeOp
}

// RecvmsgOut is struct io_uring_recvmsg_out: the header a multishot recvmsg
// writes at the start of each provided buffer, followed by the name (NameLen
// bytes reserved, as given in the msghdr), the control data (ControlLen
// reserved) and the payload.
type RecvmsgOut struct {
	NameLen    uint32
	ControlLen uint32
	PayloadLen uint32
	Flags      uint32
}
