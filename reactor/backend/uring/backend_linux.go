package uring

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/backend/internal/bufpool"
	"github.com/gyre-io/gyre/reactor/backend/internal/msghdr"
	"github.com/gyre-io/gyre/reactor/backend/internal/opindex"
	"github.com/gyre-io/gyre/reactor/backend/internal/waker"
	ring "github.com/gyre-io/gyre/uring"
)

// Tokens of the backend's own requests (backend.Reserved: the loop never
// makes them).
var (
	tokWake      = backend.MakeToken(0xffffffff, 0)
	tokCancelAll = backend.MakeToken(0xfffffffe, 0)
)

// abandoned keeps reachable, for the life of the process, Go memory the
// kernel may still write after a Close that timed out (see Close): the
// eventfd read's target. Deliberate, bounded by the number of such Closes.
var abandoned struct {
	sync.Mutex
	bufs []*[8]byte
}

// closeLimit bounds how long Close waits for in-flight ops to reach their final
// completions after cancelling them.
const closeLimit = 2 * time.Second

// options force fallback paths (tests) or a ring setup mode.
type options struct {
	noMultishot bool // emulate multishot accept/recv/poll by re-arming
	noBufRing   bool // use the backend-owned buffer pool instead of a buffer ring
	noBufInc    bool // no incrementally consumed ring: stream recvs share the classic one
	noSendZC    bool // emulate send_zc with a copying send
	setup       ring.SetupMode
	parkAll     bool // Submit parks every op on the pending list (exercises it)
	noRegRing   bool // enter through the ring descriptor, not a registered slot
	keepSQArray bool // keep the SQ index array (no IORING_SETUP_NO_SQARRAY)
	noLargeInc  bool // stream recvs' inc ring keeps Config's buffer size (no large buffers)
}

// disableEnv names the environment variable that turns ring levers off, for
// measurement only: a comma-separated list of "regring" (no registered ring
// descriptor), "nosqarray" (keep the SQ index array) and "largeinc" (stream
// receives use Config.BufferSize buffers), read at New.
const disableEnv = "GYRE_URING_DISABLE"

// fromEnv adds to o the levers disableEnv turns off.
func (o options) fromEnv() options {
	for _, w := range strings.Split(os.Getenv(disableEnv), ",") {
		switch strings.TrimSpace(w) {
		case "regring":
			o.noRegRing = true
		case "nosqarray":
			o.keepSQArray = true
		case "largeinc":
			o.noLargeInc = true
		}
	}
	return o
}

// Backend is the io_uring backend. Create it with New on the goroutine (locked
// to its OS thread) that will use it; see backend.Backend for the contract.
// Only Wake is goroutine-safe.
type Backend struct {
	r    *ring.Ring
	cfg  backend.Config
	feat backend.Features

	msAccept, msRecv, msPoll, sendZC bool
	parkAll                          bool

	br   *ring.BufRing // provided buffers, or nil: pool is used
	held []bool        // buffer-ring IDs handed out and not yet released
	pool *bufpool.Pool

	// Stream recvs (KindRecv) take their buffers from inc, an incrementally
	// consumed ring (Linux 6.12+) of BufferCount buffers of BufferSize bytes,
	// when the kernel has one: a receive uses only the bytes it needs, so
	// large buffers (a 64 KiB message in one completion) cost no memory per
	// small message. recvmsg keeps br (a datagram must not be cut at whatever room
	// the head buffer has left). One inc buffer serves several completions,
	// so each completion handed out gets a handle of its own as its BufID
	// (incBit|h: released exactly once, like any BufID), and a buffer goes
	// back to the kernel once the kernel is done with it (a CQE without
	// CQEFBufMore) and every completion using it has been released.
	inc       *ring.BufRing
	incOff    []uint32 // bytes of each inc buffer the kernel has filled
	recvTotal uint32   // bytes per arming of a stream recv on large inc buffers (0: no limit)
	recvCap   uint32   // bytes per receive of such a recv when recvTotal is below the buffer size (else 0)
	incRefs   []int32  // handles naming each inc buffer
	incKernel []bool   // the kernel may still fill the buffer
	hBuf      []uint16 // handle → inc buffer
	hUsed     []bool   // handle handed out, not yet released
	hFree     []uint16 // stack of free handles

	// Ops that did not get an SQE (the kernel refused more): FIFO via Sys.Next.
	pendHead, pendTail *backend.Op

	// Ops needing work at completion (recvmsg, emulated multishot or send_zc,
	// pool buffers), by token.
	track map[backend.Token]*backend.Op
	// Completions made by the backend itself, delivered before the ring's.
	synth []backend.Completion

	cqes     []ring.CQE
	iovArena []unix.Iovec // iovecs of SQEs not yet taken by the kernel
	iovUsed  int
	syncIov  unix.Iovec      // pool-mode recvmsg done synchronously
	inflight int             // ops accepted by Submit without their final completion yet
	live     opindex.Index   // those ops by token, to clear backend.StateInFlight
	nonEmpty []backend.Token // stream recvs that may be stuck at the urgent mark (mark_linux.go)

	log          *slog.Logger
	overflowSeen uint32 // the ring's CQ overflow count already reported
	overflowAdd  uint32 // added to the ring's count (test hook: overflows cannot be forced)
	stats        backend.Stats

	wk        *waker.Waker
	wakeBuf   *[8]byte // the armed read's target (own allocation: see abandoned)
	wakeArmed bool     // the eventfd read is in the kernel
	wakeQueue bool     // the eventfd read must be armed at the next flush
	sawWake   bool     // the current Wait reaped the wake-up

	// Batching of wake-ups (see Wait): the size of the last batch, and the
	// window granted to collect one.
	lastBatch uint32
	batchWait time.Duration

	closeLimit time.Duration // how long Close waits for final completions

	closing   bool // Close is draining: no re-arms
	cancelOut bool // Close's cancel-all request has not completed
	closed    bool
	closedA   atomic.Bool
}

// New sets up an io_uring backend sized by cfg. It must be called on the OS
// thread that will drive the backend, and Close must run on it too: the ring
// descriptor is registered with that thread (IORING_REGISTER_RING_FDS, Linux
// 5.18+, where available) so that each io_uring_enter skips the descriptor
// lookup. When io_uring cannot be used (missing, disabled, kernel older than
// 5.19) the error matches the binding's uring.ErrUnavailable. BufferCount
// must be a power of two no larger than 32768.
//
// The ring levers in use (registered descriptor, no SQ index array) are in
// RingFeatures and logged at debug level. For measurement, the environment
// variable GYRE_URING_DISABLE=regring,nosqarray turns them off.
func New(cfg backend.Config) (*Backend, error) { return newBackend(cfg, options{}.fromEnv()) }

func newBackend(cfg backend.Config, o options) (*Backend, error) {
	cfg = cfg.WithDefaults()
	if cfg.BufferCount <= 0 || cfg.BufferCount > 32768 || cfg.BufferCount&(cfg.BufferCount-1) != 0 || cfg.BufferSize <= 0 {
		return nil, fmt.Errorf("gyre/backend/uring: bad Config: BufferCount %d must be a power of two up to 32768 and BufferSize %d positive: %w",
			cfg.BufferCount, cfg.BufferSize, backend.ErrUnsupported)
	}
	r, err := ring.New(ring.Options{Entries: cfg.Entries, CQEntries: cfg.CQEntries, Setup: o.setup,
		RegisterRing: !o.noRegRing, KeepSQArray: o.keepSQArray})
	if err != nil {
		return nil, fmt.Errorf("gyre/backend/uring: %w", err)
	}
	f := r.Features()
	cfg.Logger.Debug("gyre/backend/uring: ring set up", "features", f.String(),
		"registered_ring", f.RegisteredRing, "registered_ring_note", f.RegisteredRingNote, "no_sqarray", f.NoSQArray)
	if err := checkOpcodes(&f.Probe); err != nil {
		_ = r.Close()
		return nil, err
	}
	b := &Backend{
		batchWait:  max(cfg.BatchWait, 0),
		r:          r,
		cfg:        cfg,
		track:      make(map[backend.Token]*backend.Op, 64),
		synth:      make([]backend.Completion, 0, 64),
		cqes:       make([]ring.CQE, 128),
		iovArena:   make([]unix.Iovec, iovArenaLen),
		wakeBuf:    new([8]byte),
		closeLimit: closeLimit,
		log:        cfg.Logger,
	}
	if f.BufRing && !o.noBufRing {
		if f.BufRingInc && !o.noBufInc {
			b.setupInc(f.MultishotRecvTotal && f.MultishotRecv && !o.noMultishot && !o.noLargeInc)
		}
		if b.inc == nil {
			if err = b.setupClassic(); err != nil {
				b.br = nil // fall back to the pool
			}
		}
	}
	if b.br == nil && b.inc == nil {
		if b.pool, err = bufpool.New(cfg.BufferCount, cfg.BufferSize); err != nil {
			_ = r.Close()
			return nil, fmt.Errorf("gyre/backend/uring: %w", err)
		}
	}
	b.msAccept = f.MultishotAccept && !o.noMultishot
	b.msRecv = f.MultishotRecv && (b.br != nil || b.inc != nil) && !o.noMultishot
	b.msPoll = f.MultishotPoll && !o.noMultishot
	b.sendZC = f.SendZC && !o.noSendZC
	b.parkAll = o.parkAll
	b.feat = backend.Features{
		MultishotAccept: b.msAccept,
		MultishotRecv:   b.msRecv,
		ProvidedBuffers: b.br != nil || b.inc != nil,
		SendZC:          b.sendZC,
		Setup:           f.Setup,
	}
	if b.recvTotal > 0 {
		b.feat.RecvBuffers, b.feat.RecvBufferSize = len(b.incOff), b.inc.Size()
	}
	if b.wk, err = waker.New(); err != nil {
		b.release()
		return nil, fmt.Errorf("gyre/backend/uring: %w", err)
	}
	b.armWake()
	return b, nil
}

// The incrementally consumed ring's group, and the bit the IDs of its
// completions' handles carry.
const (
	incGroup   = 1
	incBit     = 0x8000
	incHandles = 0x8000 // completions with inc buffers handed out at once
)

// mshotRetries is the kernel's bound on receives per invocation of a
// multishot recv (MULTISHOT_MAX_RETRY, io_uring/net.c): with buffers of
// BufferSize bytes one socket takes at most mshotRetries*BufferSize bytes
// before others get their turn; large buffers (backend.Config.LargeRecv)
// keep that bound through the per-arming total limit.
const mshotRetries = 32

// setupInc registers the incrementally consumed ring for stream recvs (left
// nil if the kernel refuses it). large: the kernel has the per-arming total
// limit (Linux 6.17+), so the ring may regroup Config's memory into large
// buffers (backend.Config.LargeRecv): a big message is then one receive and
// one completion rather than one per BufferSize bytes.
func (b *Backend) setupInc(large bool) {
	count, size := b.cfg.BufferCount, b.cfg.BufferSize
	if n, ok := b.cfg.LargeRecv(); large && ok {
		count, size = n, backend.LargeRecvSize
	}
	inc, err := b.r.NewBufRingIncremental(incGroup, count, size)
	if err != nil {
		return
	}
	if size != b.cfg.BufferSize {
		// The receive that reaches the total is not cut: cap each one too
		// when the total is below a buffer, so an arming never takes more.
		b.recvTotal = uint32(mshotRetries * b.cfg.BufferSize)
		if int(b.recvTotal) < size {
			b.recvCap = b.recvTotal
		}
	}
	b.inc = inc
	b.incOff, b.incRefs = make([]uint32, count), make([]int32, count)
	b.incKernel = make([]bool, count)
	for i := range b.incKernel {
		b.incKernel[i] = true
	}
	b.hBuf, b.hUsed, b.hFree = make([]uint16, incHandles), make([]bool, incHandles), make([]uint16, incHandles)
	for i := range b.hFree {
		b.hFree[i] = uint16(incHandles - 1 - i)
	}
}

// setupClassic registers the buffer ring recvmsg takes its buffers from
// (and stream recvs too without inc). With inc it is made only when the
// first recvmsg with BufferSelect is submitted, so a loop that never
// receives datagrams or descriptors maps the receive memory once.
func (b *Backend) setupClassic() error {
	br, err := b.r.NewBufRing(0, b.cfg.BufferCount, b.cfg.BufferSize)
	if err != nil {
		return err
	}
	b.br, b.held = br, make([]bool, b.cfg.BufferCount)
	return nil
}

// checkOpcodes rejects kernels missing an opcode the backend uses. OP_SOCKET
// (5.19) stands in for the 5.19 features a probe cannot show (cancel by
// descriptor, buffer rings).
func checkOpcodes(p *ring.Probe) error {
	if p.LastOp == 0 {
		return fmt.Errorf("gyre/backend/uring: no opcode probe (kernel older than 5.6): %w", ring.ErrUnavailable)
	}
	for _, op := range [...]ring.Opcode{ring.OpNop, ring.OpPollAdd, ring.OpSendmsg, ring.OpRecvmsg,
		ring.OpTimeout, ring.OpAccept, ring.OpAsyncCancel, ring.OpConnect, ring.OpClose, ring.OpRead,
		ring.OpWrite, ring.OpSend, ring.OpRecv, ring.OpShutdown, ring.OpSocket} {
		if !p.Supported(op) {
			return fmt.Errorf("gyre/backend/uring: kernel lacks io_uring opcode %d (needs Linux 5.19+): %w", op, ring.ErrUnavailable)
		}
	}
	return nil
}

// Name returns "uring". Goroutine-safe.
func (b *Backend) Name() string { return "uring" }

// Features reports what runs natively on this kernel; forced or emulated
// fallbacks report false. Goroutine-safe.
func (b *Backend) Features() backend.Features { return b.feat }

// Stats returns the backend's counters: the ring's kernel waits and polls,
// completions lost to CQ overflow, memory left mapped by Close. Loop
// goroutine only; also after Close.
func (b *Backend) Stats() backend.Stats {
	rs := b.r.Stats()
	s := b.stats
	s.Waits, s.Polls = rs.Waits, rs.Polls
	b.checkOverflow()
	s.CQOverflow = b.stats.CQOverflow
	return s
}

// checkOverflow counts and logs completions the kernel dropped since the last
// check (the CQ overflow counter, IORING_FEAT_NODROP notwithstanding).
func (b *Backend) checkOverflow() {
	if o := b.r.Stats().Overflow + b.overflowAdd; o != b.overflowSeen {
		lost := o - b.overflowSeen
		b.overflowSeen = o
		b.stats.CQOverflow += uint64(lost)
		b.log.Error("gyre/backend/uring: completion queue overflow: completions dropped; their ops will never complete",
			"dropped", lost, "total", b.stats.CQOverflow, "cq_entries", b.r.CQEntries())
	}
}

// RingFeatures reports the binding's view of the ring (setup flags, probe,
// detected features). Goroutine-safe.
func (b *Backend) RingFeatures() ring.Features { return b.r.Features() }

// Wake makes a Wait in progress, or the next one, return. It writes the
// backend's eventfd; wake-ups coalesce. Goroutine-safe; returns
// backend.ErrClosed after Close.
func (b *Backend) Wake() error {
	if b.closedA.Load() {
		return backend.ErrClosed
	}
	err := b.wk.Wake()
	if err != nil && !errors.Is(err, backend.ErrClosed) {
		err = fmt.Errorf("gyre/backend/uring: %w", err)
	}
	return err
}

// armWake queues the eventfd read (internal token).
func (b *Backend) armWake() {
	if b.closing || b.wakeArmed {
		return
	}
	s := b.getSQE()
	if s == nil {
		b.wakeQueue = true
		return
	}
	b.wakeQueue = false
	s.PrepRead(int32(b.wk.Fd()), b.wakeBuf[:], ring.OffsetCurrent)
	s.UserData = uint64(tokWake)
	b.wakeArmed = true
}

// ReleaseBuffer gives provided buffer id back to the pool. Loop goroutine
// only; an ID that is not handed out (out of range, released twice) and any
// call after Close are ignored.
func (b *Backend) ReleaseBuffer(id uint16) {
	if b.closed {
		return
	}
	if id&incBit != 0 && b.inc != nil {
		if h := id &^ incBit; b.hUsed[h] {
			b.hUsed[h] = false
			b.hFree = append(b.hFree, h)
			i := b.hBuf[h]
			b.incRefs[i]--
			b.incRecycle(i)
		}
		return
	}
	if b.br != nil {
		if int(id) < len(b.held) && b.held[id] {
			b.held[id] = false
			b.br.Recycle(id)
		}
		return
	}
	b.pool.Put(id)
}

// Close cancels every op in flight, waits (up to closeLimit) for their final
// completions and discards them, then unregisters the buffer ring, closes the
// eventfd and the ring and unmaps the memory. Ops submitted but never handed
// to the kernel are dropped. If some final completions have not arrived by
// then, memory the kernel may still write (the buffer ring's buffers, the
// eventfd read's target) is deliberately left mapped and reachable for the
// life of the process instead of being freed under the kernel: Stats
// CloseLeaks counts it and the backend's Logger reports it. Loop goroutine
// only; a second Close returns backend.ErrClosed.
func (b *Backend) Close() error {
	if b.closed {
		return backend.ErrClosed
	}
	b.closing = true
	for op := b.pendHead; op != nil; {
		next := op.Sys.Next
		op.Sys.Next = nil
		b.dropOp(op)
		op = next
	}
	b.pendHead, b.pendTail = nil, nil
	sent := false
	deadline := time.Now().Add(b.closeLimit)
	var err error
	for b.draining(sent) && time.Now().Before(deadline) {
		if !sent {
			if s := b.getSQE(); s != nil { // nil: the SQ is full, retry after reaping
				s.PrepCancelAny(ring.CancelAll)
				s.UserData = uint64(tokCancelAll)
				sent, b.cancelOut = true, true
			}
		}
		if _, err = b.r.SubmitAndWait(1, min(50*time.Millisecond, max(time.Until(deadline), time.Millisecond))); err != nil && !errors.Is(err, unix.EBUSY) {
			break
		}
		err = nil
		for {
			k := b.r.PeekBatch(b.cqes)
			if k == 0 {
				break
			}
			var c backend.Completion
			for i := range k {
				if !b.translate(&b.cqes[i], &c) {
					continue
				}
				if c.Control != nil {
					msghdr.CloseRights(c.Control) // descriptors received for nobody
				}
				if c.Flags&backend.FlagBuffer != 0 && b.br != nil && b.held[c.BufID] {
					b.held[c.BufID] = false // a multishot recvmsg's, handed out to be read here
					b.br.Recycle(c.BufID)
				}
			}
			b.r.CQAdvance(uint32(k))
		}
		b.synth = b.synth[:0]
	}
	b.checkOverflow()
	if b.draining(true) {
		b.abandon()
	}
	b.release()
	return err
}

// draining reports whether Close must still wait: ops or the wake-up read
// without their final completion, or the cancel-all not yet sent or done.
func (b *Backend) draining(sent bool) bool {
	return b.inflight > 0 || b.wakeArmed || b.cancelOut || !sent
}

// abandon leaves mapped, for good, the memory the kernel may still write
// after a Close that could not drain: the buffer ring and the wake-up
// buffer. release then frees everything else.
func (b *Backend) abandon() {
	var bytes uintptr
	if b.br != nil {
		bytes += b.br.Abandon()
		b.stats.CloseLeaks++
	}
	if b.inc != nil {
		bytes += b.inc.Abandon()
		b.stats.CloseLeaks++
	}
	if b.wakeArmed {
		abandoned.Lock()
		abandoned.bufs = append(abandoned.bufs, b.wakeBuf)
		abandoned.Unlock()
		b.stats.CloseLeaks++
	}
	b.log.Warn("gyre/backend/uring: Close timed out with operations in flight; memory the kernel may still write is left mapped",
		"inflight", b.inflight, "wake_read", b.wakeArmed, "bytes", bytes, "limit", b.closeLimit)
}

// dropOp forgets an op that never reached the kernel.
func (b *Backend) dropOp(op *backend.Op) {
	delete(b.track, op.Token)
	op.Sys.State &= backend.StateInFlight
	b.finished(op.Token)
}

// release frees every kernel object; the backend is closed afterwards.
func (b *Backend) release() {
	b.closed = true
	b.closing = true
	b.closedA.Store(true)
	if b.br != nil {
		_ = b.br.Close()
	}
	if b.inc != nil {
		_ = b.inc.Close()
	}
	if b.wk != nil {
		b.wk.Close()
	}
	if err := b.r.Close(); err != nil {
		b.log.Warn("gyre/backend/uring: closing the ring", "err", err)
	}
	if b.pool != nil {
		_ = b.pool.Close()
	}
	clear(b.track)
	b.live.Each(func(op *backend.Op) { op.Sys.State = 0 })
	b.live.Reset()
	b.synth = b.synth[:0]
}
