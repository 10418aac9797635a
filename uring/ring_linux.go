package uring

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SetupMode picks the io_uring_setup flags.
type SetupMode uint8

// Setup modes. SetupAuto tries SetupDeferTaskrun, then SetupCoopTaskrun, then
// SetupPlain, moving on when the kernel answers EINVAL. The others force one mode.
const (
	SetupAuto SetupMode = iota
	// SetupDeferTaskrun: SINGLE_ISSUER|DEFER_TASKRUN (6.1+). Completion work runs
	// only when the ring is entered with GETEVENTS, on the creating thread.
	SetupDeferTaskrun
	// SetupCoopTaskrun: COOP_TASKRUN|TASKRUN_FLAG (5.19+).
	SetupCoopTaskrun
	// SetupPlain: no task-run flags.
	SetupPlain
)

var setupModeFlags = [...]uint32{
	SetupDeferTaskrun: setupSingleIssuer | setupDeferTaskrun | setupSubmitAll,
	SetupCoopTaskrun:  setupCoopTaskrun | setupTaskrunFlag | setupSubmitAll,
	SetupPlain:        0,
}

var setupModeNames = [...]string{"auto", "single_issuer|defer_taskrun", "coop_taskrun", "none"}

// String is the mode's name as reported in Features.Setup.
func (m SetupMode) String() string {
	if int(m) < len(setupModeNames) {
		return setupModeNames[m]
	}
	return "setup(?)"
}

// Options configures New. The zero value gives 256 SQ entries, 1024 CQ entries,
// SetupAuto and feature detection.
type Options struct {
	// Entries is the submission queue size (rounded up to a power of two by the
	// kernel); default 256.
	Entries uint32
	// CQEntries is the completion queue size (IORING_SETUP_CQSIZE); default
	// 4×Entries. Multishot requests post many CQEs per SQE, so size it for the
	// completions in flight, not the submissions.
	CQEntries uint32
	// Setup forces a setup mode; default SetupAuto.
	Setup SetupMode
	// SkipDetect skips the try-and-see feature detection at New (the probe still
	// runs); Features then reports multishot and buffer rings as unknown (false).
	SkipDetect bool
	// RegisterRing registers the ring descriptor with the kernel
	// (IORING_REGISTER_RING_FDS, Linux 5.18+) so that every io_uring_enter
	// names the ring by its slot (IORING_ENTER_REGISTERED_RING) and the
	// kernel skips looking the descriptor up and taking a reference on it.
	//
	// A registration belongs to the OS thread that made it. Set this only
	// when the goroutine calling New is locked to its thread
	// (runtime.LockOSThread) and makes every call that enters the kernel
	// (Submit, SubmitAndWait*, AcquireSQE) and Close from it. Each ring takes
	// a slot unique in the process (16 at most, IO_RINGFD_REG_MAX), so an
	// enter from another thread fails with ErrWrongThread rather than reach
	// another ring. When the kernel refuses (before 5.18), or all 16 slots
	// are taken, the ring uses its descriptor: Features.RegisteredRing is
	// false and Features.RegisteredRingNote says why.
	RegisterRing bool
	// KeepSQArray keeps the submission queue's index array even when the
	// kernel can do without it (IORING_SETUP_NO_SQARRAY, Linux 6.6+, used by
	// default and dropped when io_uring_setup answers EINVAL). For tests and
	// measurement.
	KeepSQArray bool

	// setupErr, when non-zero, makes io_uring_setup fail with it (test hook).
	setupErr syscall.Errno
	// rejectSetup: io_uring_setup fails with EINVAL for these flags, as on a
	// kernel that does not know them (test hook).
	rejectSetup uint32
	// regRingErr, when non-zero, makes IORING_REGISTER_RING_FDS fail with it
	// (test hook).
	regRingErr syscall.Errno
}

// Ring is one io_uring instance: a submission queue, a completion queue and the
// SQE array, all mapped from the kernel.
//
// A Ring is not goroutine-safe: one goroutine uses it. With SINGLE_ISSUER (the
// default when the kernel has it) that goroutine must also stay on the OS thread
// that called New (runtime.LockOSThread before New); entering from another
// thread fails with ErrWrongThread. Close may be called from any goroutine once
// the owner has stopped using the ring.
type Ring struct {
	fd        int
	enterFd   int     // what io_uring_enter names: fd, or the registered slot
	enterFlag uintptr // enterRegisteredRng when enterFd is a slot
	regSlot   int     // the registered slot, or -1
	regTid    int     // the thread that registered it
	setup     uint32  // setup flags in effect
	kfeatures uint32
	deferTR   bool
	closed    bool

	sqMem, cqMem, sqeMem unsafe.Pointer
	sqSize, cqSize       uintptr
	sqeSize              uintptr

	sqHead, sqTail, sqFlags *uint32
	sqMask, sqEntries       uint32
	sqes                    []SQE
	sqeTail                 uint32 // next SQE to hand out (ours; published at flush)

	cqHead, cqTail, cqOverflow *uint32
	cqMask, cqEntries          uint32
	cqes                       []CQE

	features Features
	eintr    uint64 // io_uring_enter calls interrupted (retried); for tests
	stats    Stats

	// Wait arguments live here so the kernel reads heap memory that stays put.
	arg geteventsArg
	ts  unix.Timespec
}

// New sets up a ring. A failure to create the ring at all returns an error that
// matches ErrUnavailable and wraps the syscall.Errno. Call it on the goroutine
// (and locked OS thread) that will use the ring.
func New(opts Options) (*Ring, error) {
	entries := opts.Entries
	if entries == 0 {
		entries = 256
	}
	cq := opts.CQEntries
	if cq == 0 {
		cq = 4 * entries
	}
	if cq < entries {
		cq = entries
	}
	modes := []SetupMode{SetupDeferTaskrun, SetupCoopTaskrun, SetupPlain}
	if opts.Setup != SetupAuto {
		modes = []SetupMode{opts.Setup}
	}
	var (
		fd   int
		p    params
		err  error
		mode SetupMode
	)
	noSQArray := !opts.KeepSQArray
	for i, m := range modes {
		mode = m
		for {
			p = params{Flags: setupModeFlags[m] | setupCQSize | setupClamp, CQEntries: cq}
			if noSQArray {
				p.Flags |= setupNoSQArray
			}
			fd, err = setup(entries, &p, opts)
			if err == nil || !noSQArray || !errors.Is(err, unix.EINVAL) {
				break
			}
			noSQArray = false // before 6.6 (or a mode the kernel lacks): keep the array
		}
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EINVAL) || i == len(modes)-1 {
			return nil, setupError(err)
		}
	}
	if p.Features&featExtArg == 0 {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("%w: kernel lacks IORING_FEAT_EXT_ARG (needs 5.11+): %w", ErrUnavailable, unix.EINVAL)
	}
	r := &Ring{fd: fd, enterFd: fd, regSlot: -1, setup: p.Flags, kfeatures: p.Features, deferTR: p.Flags&setupDeferTaskrun != 0}
	if err := r.mapRings(&p); err != nil {
		r.unmap()
		_ = unix.Close(fd)
		return nil, setupError(err)
	}
	r.features.Setup = mode.String()
	r.features.SetupFlags = p.Flags
	r.features.KernelFeatures = p.Features
	r.features.NoDrop = p.Features&featNoDrop != 0
	r.features.NoSQArray = p.Flags&setupNoSQArray != 0
	r.features.CQESkip = p.Features&featCQESkip != 0
	r.features.SQEntries, r.features.CQEntries = p.SQEntries, p.CQEntries
	if err := r.probe(&r.features.Probe); err != nil {
		_ = r.Close()
		return nil, err
	}
	r.features.fromProbe()
	if opts.RegisterRing {
		r.features.RegisteredRingNote = r.registerRing(opts.regRingErr)
		r.features.RegisteredRing = r.regSlot >= 0
	} else {
		r.features.RegisteredRingNote = "not asked (Options.RegisterRing)"
	}
	if !opts.SkipDetect {
		if err := r.detect(); err != nil {
			_ = r.Close()
			return nil, err
		}
	}
	return r, nil
}

func setup(entries uint32, p *params, opts Options) (int, error) {
	if opts.setupErr != 0 {
		return -1, opts.setupErr
	}
	if p.Flags&opts.rejectSetup != 0 {
		return -1, unix.EINVAL
	}
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

func setupError(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case unix.EPERM, unix.ENOSYS, unix.ENOMEM, unix.EINVAL, unix.EACCES:
			return fmt.Errorf("%w: io_uring_setup: %w", ErrUnavailable, errno)
		}
	}
	return fmt.Errorf("uring: io_uring_setup: %w", err)
}

func (r *Ring) mapRings(p *params) error {
	noArray := p.Flags&setupNoSQArray != 0
	if noArray {
		// No index array (the kernel then reports no offset for it): the
		// SQ ring ends after its last header field.
		o := &p.SQOff
		r.sqSize = uintptr(max(o.Head, o.Tail, o.RingMask, o.RingEntries, o.Flags, o.Dropped)) + 4
	} else {
		r.sqSize = uintptr(p.SQOff.Array) + uintptr(p.SQEntries)*4
	}
	r.cqSize = uintptr(p.CQOff.Cqes) + uintptr(p.CQEntries)*sizeofCQE
	single := p.Features&featSingleMMap != 0
	if single {
		r.sqSize = max(r.sqSize, r.cqSize)
	}
	const prot, flags = unix.PROT_READ | unix.PROT_WRITE, unix.MAP_SHARED | unix.MAP_POPULATE
	var err error
	if r.sqMem, err = unix.MmapPtr(r.fd, offSQRing, nil, r.sqSize, prot, flags); err != nil {
		r.sqMem = nil
		return err
	}
	if single {
		r.cqMem = r.sqMem
	} else if r.cqMem, err = unix.MmapPtr(r.fd, offCQRing, nil, r.cqSize, prot, flags); err != nil {
		r.cqMem = nil
		return err
	}
	r.sqeSize = uintptr(p.SQEntries) * sizeofSQE
	if r.sqeMem, err = unix.MmapPtr(r.fd, offSQEs, nil, r.sqeSize, prot, flags); err != nil {
		r.sqeMem = nil
		return err
	}
	u32 := func(base unsafe.Pointer, off uint32) *uint32 { return (*uint32)(unsafe.Add(base, off)) }
	r.sqHead, r.sqTail, r.sqFlags = u32(r.sqMem, p.SQOff.Head), u32(r.sqMem, p.SQOff.Tail), u32(r.sqMem, p.SQOff.Flags)
	r.sqMask, r.sqEntries = *u32(r.sqMem, p.SQOff.RingMask), *u32(r.sqMem, p.SQOff.RingEntries)
	r.sqes = unsafe.Slice((*SQE)(r.sqeMem), r.sqEntries)
	if !noArray {
		// Identity-map the SQ index array once: SQE i is always slot i,
		// which is what the kernel does by itself without the array.
		array := unsafe.Slice(u32(r.sqMem, p.SQOff.Array), r.sqEntries)
		for i := range array {
			array[i] = uint32(i)
		}
	}
	r.sqeTail = atomic.LoadUint32(r.sqTail)
	r.cqHead, r.cqTail, r.cqOverflow = u32(r.cqMem, p.CQOff.Head), u32(r.cqMem, p.CQOff.Tail), u32(r.cqMem, p.CQOff.Overflow)
	r.cqMask, r.cqEntries = *u32(r.cqMem, p.CQOff.RingMask), *u32(r.cqMem, p.CQOff.RingEntries)
	r.cqes = unsafe.Slice((*CQE)(unsafe.Add(r.cqMem, p.CQOff.Cqes)), r.cqEntries)
	return nil
}

func (r *Ring) unmap() {
	if r.sqeMem != nil {
		_ = unix.MunmapPtr(r.sqeMem, r.sqeSize)
		r.sqeMem = nil
	}
	if r.cqMem != nil && r.cqMem != r.sqMem {
		_ = unix.MunmapPtr(r.cqMem, r.cqSize)
	}
	r.cqMem = nil
	if r.sqMem != nil {
		_ = unix.MunmapPtr(r.sqMem, r.sqSize)
		r.sqMem = nil
	}
	r.sqes, r.cqes = nil, nil
}

// Close unmaps the rings and closes the ring descriptor; the kernel then
// cancels whatever is still in flight, in the background. Close does not wait
// for that: cancel requests and reap their final completions first, since
// memory a request names must stay valid until its final CQE. Close is
// idempotent; afterwards every method returns ErrClosed (or nil/0).
//
// With a registered ring descriptor (Options.RegisterRing), Close must run on
// the thread that called New: it then unregisters the slot. From another
// thread it cannot (the registration lives in the owner thread's table), so
// the kernel keeps the ring alive until that thread exits and the slot is
// never reused; Close still closes the descriptor and returns an error
// matching ErrWrongThread.
func (r *Ring) Close() error {
	if r.closed {
		return nil
	}
	r.stats.Overflow = r.Overflowed()
	var regErr error
	if r.regSlot >= 0 {
		regErr = r.unregisterRing()
	}
	r.closed = true
	r.unmap()
	return errors.Join(regErr, unix.Close(r.fd))
}

// Fd is the ring's file descriptor (for PrepMsgRing from another ring).
func (r *Ring) Fd() int { return r.fd }

// Features reports what the kernel and this ring can do. The value is fixed at
// New. Goroutine-safe.
func (r *Ring) Features() Features { return r.features }

// SQEntries is the submission queue size the kernel granted.
func (r *Ring) SQEntries() uint32 { return r.sqEntries }

// CQEntries is the completion queue size the kernel granted.
func (r *Ring) CQEntries() uint32 { return r.cqEntries }

// GetSQE returns the next free submission queue entry, or nil when the queue
// is full (Submit, then retry; see AcquireSQE). The entry is valid until it is
// submitted; fill it with a Prep method before the next Submit.
func (r *Ring) GetSQE() *SQE {
	if r.closed {
		return nil
	}
	head := atomic.LoadUint32(r.sqHead) // acquire: the kernel's consumption
	if r.sqeTail-head >= r.sqEntries {
		return nil
	}
	s := &r.sqes[r.sqeTail&r.sqMask]
	r.sqeTail++
	return s
}

// AcquireSQE is GetSQE that, when the queue is full, submits what is queued and
// tries once more. It fails with ErrSQFull if the kernel took nothing (reap
// completions, then retry) and with the Submit error if submitting failed.
func (r *Ring) AcquireSQE() (*SQE, error) {
	if s := r.GetSQE(); s != nil {
		return s, nil
	}
	if r.closed {
		return nil, ErrClosed
	}
	if _, err := r.Submit(); err != nil {
		return nil, err
	}
	if s := r.GetSQE(); s != nil {
		return s, nil
	}
	return nil, ErrSQFull
}

// Pending is the number of SQEs handed out and not yet taken by the kernel.
func (r *Ring) Pending() uint32 {
	if r.closed {
		return 0
	}
	return r.sqeTail - atomic.LoadUint32(r.sqHead)
}

// flushSQ publishes our tail and returns how many SQEs the kernel has not taken.
func (r *Ring) flushSQ() uint32 {
	atomic.StoreUint32(r.sqTail, r.sqeTail) // release: SQE contents before tail
	return r.sqeTail - atomic.LoadUint32(r.sqHead)
}

// NeedsEnter reports whether completions may be waiting inside the kernel:
// overflowed CQEs to flush, or deferred task work to run. A caller that polls
// the CQ without waiting calls Submit (which then enters with GETEVENTS) when
// this is true. Always true with DEFER_TASKRUN.
func (r *Ring) NeedsEnter() bool {
	if r.closed {
		return false
	}
	return r.deferTR || atomic.LoadUint32(r.sqFlags)&(sqCQOverflow|sqTaskrun) != 0
}

// Submit hands queued SQEs to the kernel without waiting, and flushes
// completions the kernel holds back (CQ overflow, deferred task work). It
// returns the number of SQEs the kernel took.
func (r *Ring) Submit() (int, error) { return r.SubmitAndWait(0, 0) }

// SubmitAndWait submits queued SQEs and waits until at least waitNr completions
// are ready or timeout passes (timeout < 0: no limit; waitNr 0 or timeout 0: no
// waiting). It retries EINTR with the remaining time; an expired timeout is not
// an error. It returns before the timeout with nothing ready only when the
// kernel had nothing to post but woke the caller (a signal it retried would
// not do that: only a completion, a timeout or the timeout's end does). If the
// kernel reports EBUSY/EAGAIN (completion queue overflowed or out of
// resources) while completions are ready, it returns without error so the
// caller reaps them and submits again. Returns the number of SQEs taken.
func (r *Ring) SubmitAndWait(waitNr uint32, timeout time.Duration) (int, error) {
	return r.SubmitAndWaitMin(waitNr, 0, timeout)
}

// FeatMinTimeout is IORING_FEAT_MIN_TIMEOUT (6.12): enter honours a minimum
// wait time (SubmitAndWaitMin).
const FeatMinTimeout = 1 << 15

// noLimit is the timeout handed to the kernel for "no limit" when a min-wait
// needs an overall timeout beside it (about 73 years: far from any clock's
// overflow once the kernel adds the current time).
const noLimit = time.Duration(1 << 61)

// SubmitAndWaitMin is SubmitAndWait with a batching window: it waits for
// waitNr completions, but once minWait has passed it returns as soon as at
// least one is ready (the overall limit is still timeout; timeout < 0: none).
// A min-wait that ends with nothing ready does not end the wait: it goes on
// for the first completion (or the timeout). This lets a busy loop take
// several completions per wake-up while an idle one sleeps until something
// happens. Without FeatMinTimeout, or with waitNr ≤ 1, minWait is ignored and
// waitNr is reduced to 1, so a caller never waits longer than with
// SubmitAndWait(1, timeout).
//
// The kernel (io_uring/wait.c, 6.12+) ends a min-wait that has no overall
// timeout with -ETIME; this method gives the kernel a far-off timeout in that
// case, and if -ETIME still arrives before the caller's limit with nothing
// ready, it waits again for a single completion without a min-wait.
func (r *Ring) SubmitAndWaitMin(waitNr uint32, minWait, timeout time.Duration) (int, error) {
	if r.closed {
		return 0, ErrClosed
	}
	if timeout == 0 {
		waitNr = 0
	}
	if minWait > 0 && (r.features.KernelFeatures&FeatMinTimeout == 0 || waitNr <= 1) {
		minWait = 0
		waitNr = min(waitNr, 1)
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	submitted := 0
	for {
		toSubmit := r.flushSQ()
		wait := waitNr
		if wait > 0 && r.CQReady() >= wait {
			wait = 0
		}
		var flags uintptr
		if wait > 0 || r.NeedsEnter() {
			flags |= enterGetEvents
		}
		if toSubmit == 0 && flags == 0 {
			return submitted, nil
		}
		var argp, argsz uintptr
		if wait > 0 && (timeout > 0 || minWait > 0) {
			r.arg = geteventsArg{}
			left := noLimit
			if timeout > 0 {
				left = max(time.Until(deadline), 0)
			}
			r.ts = unix.NsecToTimespec(int64(left))
			r.arg.Ts = ptr(&r.ts)
			if minWait > 0 {
				r.arg.MinWaitUsec = uint32(max(minWait/time.Microsecond, 1))
			}
			flags |= enterExtArg
			argp, argsz = uintptr(unsafe.Pointer(&r.arg)), sizeofGeteventsArg
		}
		if wait > 0 {
			r.stats.Waits++
		} else {
			r.stats.Polls++
		}
		n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.enterFd), uintptr(toSubmit), uintptr(wait), flags|r.enterFlag, argp, argsz)
		if errno == 0 || errno == unix.ETIME {
			if errno == 0 {
				submitted += int(n)
			}
			if wait == 0 || r.CQReady() > 0 {
				return submitted, nil
			}
			// Nothing to reap: the min-wait ran out (ETIME), or the wait
			// ended for completions the kernel kept (task work). Unless the
			// caller's time is up, wait on for the first completion.
			if timeout > 0 && !time.Now().Before(deadline) {
				return submitted, nil
			}
			minWait, waitNr = 0, 1
			continue
		}
		switch errno {
		case unix.EINTR:
			r.eintr++
			if timeout > 0 && !time.Now().Before(deadline) {
				return submitted, nil
			}
			continue
		case unix.EBUSY, unix.EAGAIN:
			if r.CQReady() > 0 {
				return submitted, nil
			}
			return submitted, fmt.Errorf("uring: io_uring_enter: %w", errno)
		case unix.EEXIST:
			return submitted, fmt.Errorf("%w: %w", ErrWrongThread, errno)
		case unix.EBADF, unix.EINVAL:
			if r.regSlot >= 0 && unix.Gettid() != r.regTid {
				// The slot is empty in this thread's table (slots are
				// unique in the process: it names no other ring).
				return submitted, fmt.Errorf("%w: registered ring entered from thread %d, registered on %d: %w",
					ErrWrongThread, unix.Gettid(), r.regTid, errno)
			}
			return submitted, fmt.Errorf("uring: io_uring_enter: %w", errno)
		default:
			return submitted, fmt.Errorf("uring: io_uring_enter: %w", errno)
		}
	}
}

// Stats counts a ring's kernel entries since New.
type Stats struct {
	// Waits is the number of io_uring_enter calls that asked to wait for
	// completions (GETEVENTS with a wait count): each may put the thread to
	// sleep once.
	Waits uint64
	// Polls is the number of io_uring_enter calls that only submitted or
	// flushed completions, without waiting.
	Polls uint64
	// Overflow is the kernel's count of completions dropped because the
	// completion queue was full (see Overflowed).
	Overflow uint32
}

// Stats returns the ring's counters. Same goroutine as the ring's other
// methods.
func (r *Ring) Stats() Stats {
	s := r.stats
	if !r.closed {
		s.Overflow = r.Overflowed()
	}
	return s
}

// CQReady is the number of completions ready to reap in the CQ ring. With
// DEFER_TASKRUN completions appear only after a Submit/SubmitAndWait.
func (r *Ring) CQReady() uint32 {
	if r.closed {
		return 0
	}
	return atomic.LoadUint32(r.cqTail) - *r.cqHead
}

// PeekBatch copies up to len(out) ready completions into out without consuming
// them and returns how many; follow with CQAdvance. It never enters the kernel.
func (r *Ring) PeekBatch(out []CQE) int {
	if r.closed {
		return 0
	}
	head := *r.cqHead                           // only we write it
	ready := atomic.LoadUint32(r.cqTail) - head // acquire: CQE contents after tail
	n := min(uint32(len(out)), ready)
	for i := uint32(0); i < n; i++ {
		out[i] = r.cqes[(head+i)&r.cqMask]
	}
	return int(n)
}

// CQAdvance marks n completions as consumed, giving their slots back to the
// kernel.
func (r *Ring) CQAdvance(n uint32) {
	if r.closed || n == 0 {
		return
	}
	atomic.StoreUint32(r.cqHead, *r.cqHead+n) // release: done reading the entries
}

// Reap copies up to len(out) ready completions into out, consumes them and
// returns how many (PeekBatch + CQAdvance).
func (r *Ring) Reap(out []CQE) int {
	n := r.PeekBatch(out)
	r.CQAdvance(uint32(n))
	return n
}

// Overflowed is the kernel's count of CQEs dropped because the CQ was full
// (only without IORING_FEAT_NODROP, or on memory exhaustion).
func (r *Ring) Overflowed() uint32 {
	if r.closed {
		return 0
	}
	return atomic.LoadUint32(r.cqOverflow)
}

func (r *Ring) register(op uint32, arg unsafe.Pointer, nr uint32) error {
	if r.closed {
		return ErrClosed
	}
	for {
		_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), uintptr(op), uintptr(arg), uintptr(nr), 0, 0)
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		case unix.EEXIST:
			if r.setup&setupSingleIssuer != 0 && op == registerProbe {
				return fmt.Errorf("%w: %w", ErrWrongThread, errno)
			}
		}
		return errno
	}
}
