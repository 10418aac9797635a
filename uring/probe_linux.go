package uring

import (
	"errors"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Probe lists the opcodes the kernel supports (IORING_REGISTER_PROBE).
type Probe struct {
	// LastOp is the highest opcode the kernel knows.
	LastOp Opcode
	ops    [probeOpsCapacity / 64]uint64
}

// Supported reports whether the kernel implements op.
func (p *Probe) Supported(op Opcode) bool { return p.ops[op/64]&(1<<(op%64)) != 0 }

func (p *Probe) set(op Opcode) { p.ops[op/64] |= 1 << (op % 64) }

// Features is what the running kernel and a ring can do. Probe answers "is this
// opcode known"; the booleans below it come from try-and-see detection at New
// (submit the request, look at the result) for what a probe cannot report.
type Features struct {
	// Setup names the setup mode in use: "single_issuer|defer_taskrun",
	// "coop_taskrun" or "none"; SetupFlags are the raw io_uring_setup flags.
	Setup      string
	SetupFlags uint32
	// KernelFeatures is io_uring_params.features (IORING_FEAT_*).
	KernelFeatures uint32
	// SQEntries and CQEntries are the queue sizes granted.
	SQEntries, CQEntries uint32
	// NoDrop: the kernel keeps overflowing CQEs instead of dropping them.
	NoDrop bool
	// NoSQArray: the ring has no SQ index array (IORING_SETUP_NO_SQARRAY,
	// 6.6+; see Options.KeepSQArray).
	NoSQArray bool
	// RegisteredRing: io_uring_enter names the ring by a registered slot
	// (IORING_ENTER_REGISTERED_RING, 5.18+; see Options.RegisterRing).
	// RegisteredRingNote says why not when false.
	RegisteredRing     bool
	RegisteredRingNote string
	// CQESkip: the kernel honours SQECQESkipSuccess (IORING_FEAT_CQE_SKIP,
	// 5.17+).
	CQESkip bool
	// Probe is the opcode table.
	Probe Probe

	// SendZC: IORING_OP_SEND_ZC is known (6.0+).
	SendZC bool
	// MsgRing: IORING_OP_MSG_RING is known (5.18+).
	MsgRing bool
	// Socket: IORING_OP_SOCKET is known (5.19+).
	Socket bool

	// Detected by trying (false when Options.SkipDetect):

	// BufRing: IORING_REGISTER_PBUF_RING with user memory works (5.19+).
	BufRing bool
	// MultishotAccept: accept with IORING_ACCEPT_MULTISHOT stays armed (5.19+).
	MultishotAccept bool
	// MultishotRecv: recv with IORING_RECV_MULTISHOT and a buffer ring (6.0+).
	MultishotRecv bool
	// MultishotPoll: poll with IORING_POLL_ADD_MULTI (5.13+).
	MultishotPoll bool
	// BufRingInc: incrementally consumed buffer rings (IOU_PBUF_RING_INC,
	// 6.12+; NewBufRingIncremental).
	BufRingInc bool
	// MultishotRecvTotal: a multishot recv takes a total byte limit, after
	// which it ends (SetRecvMultishotTotal; 6.17+, older kernels refuse it
	// with -EINVAL).
	MultishotRecvTotal bool
}

// String lists the notable features in one line.
func (f Features) String() string {
	var b strings.Builder
	b.WriteString("setup=" + f.Setup)
	for _, x := range []struct {
		on   bool
		name string
	}{{f.NoDrop, "nodrop"}, {f.NoSQArray, "no_sqarray"}, {f.RegisteredRing, "registered_ring"},
		{f.CQESkip, "cqe_skip"}, {f.SendZC, "send_zc"}, {f.MsgRing, "msg_ring"}, {f.Socket, "socket"},
		{f.BufRing, "buf_ring"}, {f.MultishotAccept, "multishot_accept"}, {f.MultishotRecv, "multishot_recv"},
		{f.MultishotPoll, "multishot_poll"}, {f.BufRingInc, "buf_ring_inc"},
		{f.MultishotRecvTotal, "multishot_recv_total"}} {
		if x.on {
			b.WriteString(" " + x.name)
		}
	}
	return b.String()
}

func (f *Features) fromProbe() {
	f.SendZC = f.Probe.Supported(OpSendZC)
	f.MsgRing = f.Probe.Supported(OpMsgRing)
	f.Socket = f.Probe.Supported(OpSocket)
}

func (r *Ring) probe(p *Probe) error {
	var buf probeBuf
	if err := r.register(registerProbe, unsafe.Pointer(&buf), probeOpsCapacity); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return nil // pre-5.6 kernel: no probe; leave the table empty
		}
		return err
	}
	p.LastOp = Opcode(buf.LastOp)
	for i := 0; i < int(buf.OpsLen) && i < probeOpsCapacity; i++ {
		if buf.Ops[i].Flags&ioURingOpSupported != 0 {
			p.set(Opcode(buf.Ops[i].Op))
		}
	}
	return nil
}

// User data values used by detection; New reaps them all before returning.
const (
	detectTarget = ^uint64(0) - iota
	detectCancel
	detectGroup = 0xfffe
)

// detect fills the try-and-see fields. The CQ is empty on entry and on return.
func (r *Ring) detect() error {
	// Buffer ring with our own memory.
	br, err := r.NewBufRing(detectGroup, 1, 64)
	if err == nil {
		r.features.BufRing = true
		if inc, err := r.NewBufRingIncremental(detectGroup-1, 1, 64); err == nil {
			r.features.BufRingInc = true
			if err := inc.Close(); err != nil {
				_ = br.Close()
				return err
			}
		}
	}
	var sv [2]int
	if sv, err = unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
		if br != nil {
			_ = br.Close()
		}
		return err
	}
	defer unix.Close(sv[0])
	defer unix.Close(sv[1])

	if r.features.Probe.Supported(OpPollAdd) {
		r.features.MultishotPoll = r.tryArmed(func(s *SQE) { s.PrepPollMultishot(int32(sv[0]), unix.POLLIN) })
	}
	if br != nil {
		r.features.MultishotRecv = r.tryArmed(func(s *SQE) { s.PrepRecvMultishot(int32(sv[0]), detectGroup, 0, 0) })
		if r.features.MultishotRecv {
			r.features.MultishotRecvTotal = r.tryArmed(func(s *SQE) {
				s.PrepRecvMultishot(int32(sv[0]), detectGroup, 0, 0)
				s.SetRecvMultishotTotal(1 << 20)
			})
		}
		if err := br.Close(); err != nil {
			return err
		}
	}
	// Multishot accept on a listening AF_UNIX socket (autobound abstract name).
	ln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(ln)
	if unix.Bind(ln, &unix.SockaddrUnix{}) == nil && unix.Listen(ln, 1) == nil {
		r.features.MultishotAccept = r.tryArmed(func(s *SQE) {
			s.PrepMultishotAccept(int32(ln), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		})
	}
	return nil
}

// tryArmed submits the request prep builds on an idle descriptor, cancels it and
// reports whether it was accepted and stayed armed (ended by -ECANCELED rather
// than rejected with -EINVAL).
func (r *Ring) tryArmed(prep func(*SQE)) bool {
	for r.Pending()+2 > r.sqEntries {
		if _, err := r.Submit(); err != nil {
			return false
		}
	}
	s := r.GetSQE()
	prep(s)
	s.UserData = detectTarget
	s = r.GetSQE()
	s.PrepCancel(detectTarget, 0)
	s.UserData = detectCancel
	var (
		cqes  [2]CQE
		got   int
		ok    bool
		limit = time.Now().Add(2 * time.Second)
	)
	targetDone := false
	for got < 2 && time.Now().Before(limit) {
		if _, err := r.SubmitAndWait(1, 100*time.Millisecond); err != nil {
			return false
		}
		n := r.Reap(cqes[:])
		for _, c := range cqes[:n] {
			got++
			if c.UserData == detectTarget {
				ok = c.Res == -int32(unix.ECANCELED)
				if c.More() {
					got-- // an armed multishot may post before the cancel lands
				} else {
					targetDone = true
				}
			}
		}
	}
	return ok && targetDone
}
