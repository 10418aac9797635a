package epoll

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/backend/internal/bufpool"
	"github.com/gyre-io/gyre/reactor/backend/internal/msghdr"
	"github.com/gyre-io/gyre/reactor/backend/internal/opindex"
	"github.com/gyre-io/gyre/reactor/backend/internal/waker"
)

// Backend is the epoll implementation of backend.Backend. Create it with New
// on the loop's goroutine; see the backend package for the contract. Only Wake
// is goroutine-safe.
type Backend struct {
	epfd int
	wk   *waker.Waker // Wake's eventfd, in the epoll set

	cfg   backend.Config
	start time.Time // timer clock origin (monotonic)

	events []unix.EpollEvent
	fds    []*fdState // by descriptor number

	sq     []*backend.Op        // submitted, not yet started
	cq     []backend.Completion // ready completions; cq[cqHead:] not yet returned
	cqHead int

	index  opindex.Index // waiting (parked or timer) ops by token, for KindCancel
	timers []timer

	// Provided buffers: pool holds BufferSize buffers (datagrams, recvmsg;
	// everything when spool is nil); spool, when Config.LargeRecv regroups
	// the same memory, holds the large buffers stream receives (KindRecv)
	// take, named by BufIDs with spoolBit set. With spool, pool is mapped at
	// its first use.
	pool  *bufpool.Pool
	spool *bufpool.Pool

	// Fairness: read-side readiness is served from ready, one bounded pass
	// (passBufs completions, passBytes bytes) per descriptor in turn, and only
	// while fewer than budget (len(out) of the current Wait) completions are
	// queued. passLeft and bytesLeft count down the current pass; yielded says
	// the last exec stopped because the pass ran out, not at EAGAIN.
	ready     readyList
	budget    int
	passLeft  int
	bytesLeft int
	yielded   bool

	// Scratch for synchronous system calls (never held across calls).
	msg  unix.Msghdr
	iov  []unix.Iovec
	pfd  [1]unix.PollFd
	ts   unix.Timespec
	peek [1]byte
	iov1 unix.Iovec // multishot recvmsg
	// A wide read (execRecvPool): the pool buffers it spans, and their iovecs.
	wideIDs [passBufs + 1]uint16
	wideIov [passBufs + 1]unix.Iovec

	// Descriptors whose multishot recvmsg paused after an empty datagram:
	// back on the ready list at the next Wait (see execRecvmsgMulti).
	deferred []int32
	ev       unix.EpollEvent
	evb      [8]byte

	// System call counts the tests read (export_test.go).
	calls struct{ recv, recvAgain uint64 }

	noPwait2    bool
	skippedLook bool // the last Wait returned without calling epoll_wait
	closed      bool
	stats       backend.Stats

	wokeInner bool // this Wait saw the eventfd
}

var _ backend.Backend = (*Backend)(nil)

// New creates an epoll backend sized by cfg (zero fields take the defaults of
// backend.Config.WithDefaults). Entries sizes the epoll event batch; CQEntries
// is ignored; BufferCount×BufferSize bytes are mapped for provided buffers.
// Call it on the goroutine that will use the backend.
func New(cfg backend.Config) (*Backend, error) {
	cfg = cfg.WithDefaults()
	var p, sp *bufpool.Pool
	var err error
	if n, ok := cfg.LargeRecv(); ok {
		sp, err = bufpool.New(n, backend.LargeRecvSize)
	} else {
		p, err = bufpool.New(cfg.BufferCount, cfg.BufferSize)
	}
	if err != nil {
		return nil, err
	}
	b := &Backend{
		cfg:    cfg,
		start:  time.Now(),
		events: make([]unix.EpollEvent, cfg.Entries),
		pool:   p,
		spool:  sp,
		sq:     make([]*backend.Op, 0, cfg.Entries),
		cq:     make([]backend.Completion, 0, cfg.CQEntries),
		iov:    make([]unix.Iovec, 0, 16),
		epfd:   -1,
		budget: int(cfg.Entries),
	}
	fail := func(what string, err error) (*Backend, error) {
		b.release()
		return nil, fmt.Errorf("epoll: %s: %w", what, err)
	}
	if b.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fail("epoll_create1", err)
	}
	if b.wk, err = waker.New(); err != nil {
		return fail("waker", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(b.wk.Fd()), Pad: -1}
	if err = unix.EpollCtl(b.epfd, unix.EPOLL_CTL_ADD, b.wk.Fd(), &ev); err != nil {
		return fail("register eventfd", err)
	}
	return b, nil
}

// release frees the kernel objects and the pool.
func (b *Backend) release() {
	if b.epfd >= 0 {
		_ = unix.Close(b.epfd)
		b.epfd = -1
	}
	if b.wk != nil {
		b.wk.Close()
	}
	if b.pool != nil {
		_ = b.pool.Close()
	}
	if b.spool != nil {
		_ = b.spool.Close()
	}
}

// spoolBit marks the BufIDs of spool's buffers.
const spoolBit = 0x8000

// streamPool is the pool stream receives (KindRecv) take buffers from, and
// the bit their BufIDs carry.
func (b *Backend) streamPool() (*bufpool.Pool, uint16, error) {
	if b.spool != nil {
		return b.spool, spoolBit, nil
	}
	p, err := b.smallPool()
	return p, 0, err
}

// smallPool is the pool of BufferSize buffers, mapped now if need be (only
// with spool: a loop that never receives datagrams maps its memory once).
func (b *Backend) smallPool() (*bufpool.Pool, error) {
	if b.pool == nil {
		p, err := bufpool.New(b.cfg.BufferCount, b.cfg.BufferSize)
		if err != nil {
			return nil, err
		}
		b.pool = p
	}
	return b.pool, nil
}

// bufOf is the memory of the buffer a BufID names.
func (b *Backend) bufOf(id uint16) []byte {
	if id&spoolBit != 0 && b.spool != nil {
		return b.spool.Buf(id &^ spoolBit)
	}
	return b.pool.Buf(id)
}

// Name returns "epoll". Goroutine-safe.
func (b *Backend) Name() string { return "epoll" }

// Stats returns the backend's counters (CQOverflow and CloseLeaks are always
// 0: epoll has no completion queue and no memory shared with the kernel).
// Loop goroutine only; also after Close.
func (b *Backend) Stats() backend.Stats { return b.stats }

// Features reports native capabilities: none; multishot, provided buffers and
// zero-copy sends are all emulated. RecvBuffers and RecvBufferSize give the
// large buffers stream receives take when Config.LargeRecv regroups the
// pool. Goroutine-safe.
func (b *Backend) Features() backend.Features {
	if b.spool == nil {
		return backend.Features{}
	}
	return backend.Features{RecvBuffers: b.spool.Count(), RecvBufferSize: b.spool.Size()}
}

// Submit queues op; it starts at the next Wait. Loop goroutine only; never
// blocks and never delivers completions. It fails (and op gets no completion)
// for a closed backend, a nil op, an op already in flight, or a kind or flag
// combination the contract does not allow.
func (b *Backend) Submit(op *backend.Op) error {
	if b.closed {
		return backend.ErrClosed
	}
	if err := backend.Validate(op); err != nil {
		return fmt.Errorf("epoll: submit: %w", err)
	}
	if err := backend.ValidateRoom(op, b.cfg.BufferSize); err != nil {
		return fmt.Errorf("epoll: submit: %w", err)
	}
	op.Sys.State = stInFlight
	op.Sys.Next = nil
	b.sq = append(b.sq, op)
	return nil
}

// Limits of one read pass over a ready descriptor (see Backend.ready): a
// multishot recv or accept posts at most this many completions (and a recv
// reads at most about passBytes) before the next ready descriptor has its turn.
const (
	passBufs  = 16
	passBytes = 64 << 10
)

// Wait starts queued ops, then waits for completions as the contract says and
// copies them into out. Loop goroutine only. A completion's Buf (FlagBuffer)
// stays valid until ReleaseBuffer of its BufID.
//
// Completions are produced lazily, about len(out) per call: while a batch is
// already queued Wait does not read any socket, and readable descriptors are
// served round-robin in bounded passes, so one busy connection cannot fill the
// queue (and empty the buffer pool) ahead of the others.
func (b *Backend) Wait(out []backend.Completion, timeout time.Duration) (int, error) {
	if b.closed {
		return 0, backend.ErrClosed
	}
	b.budget = max(len(out), 1)
	if len(b.deferred) > 0 && b.queued() == 0 {
		// Multishot recvmsg ops that delivered an empty datagram (whose
		// name sits in the op's memory) go on once it has been returned.
		for _, fd := range b.deferred {
			if st := b.lookupFd(fd); st != nil && st.registered && st.rd.head != nil {
				b.ready.push(st)
			}
		}
		b.deferred = b.deferred[:0]
	}
	b.flush()
	var deadline int64
	if timeout > 0 {
		deadline = b.now() + int64(timeout)
	}
	b.wokeInner = false
	for {
		// The clock is read only when a timer or a timeout needs it.
		var now int64
		if len(b.timers) > 0 || timeout > 0 {
			now = b.now()
			b.fireTimers(now)
		}
		if b.queued() > 0 && b.ready.head == nil && !b.skippedLook {
			// Completions are ready and no descriptor is known to be: return
			// them without a zero-timeout epoll_wait that would most likely
			// find nothing. The next Wait looks, so a stream of completions
			// made synchronously at flush cannot starve readiness.
			b.skippedLook = true
			break
		}
		b.skippedLook = false
		if b.queued() < b.budget {
			block := timeout
			switch {
			case b.queued() > 0 || b.wokeInner || b.ready.head != nil:
				block = 0
			case timeout > 0:
				block = max(time.Duration(deadline-now), 0)
			}
			if len(b.timers) > 0 && block != 0 {
				if d := time.Duration(b.timers[0].when - now); block < 0 || d < block {
					block = max(d, 0)
				}
			}
			n, errno := b.sysEpollWait(block)
			switch errno {
			case 0:
			case unix.EINTR:
				n = 0
			default:
				return 0, fmt.Errorf("epoll: epoll_wait: %w", errno)
			}
			for i := 0; i < n; i++ {
				b.event(&b.events[i])
			}
			b.runReady()
			if len(b.timers) > 0 || timeout > 0 {
				now = b.now()
				b.fireTimers(now)
			}
		}
		if b.queued() > 0 || b.wokeInner || timeout == 0 || (timeout > 0 && now >= deadline) {
			break
		}
	}
	return b.drainCQ(out), nil
}

// queued is the number of completions waiting to be returned.
func (b *Backend) queued() int { return len(b.cq) - b.cqHead }

// runReady serves the ready list round-robin, one bounded pass per
// descriptor, until it is empty or a batch of completions is queued. A
// descriptor whose pass ended before EAGAIN goes back to the tail: with
// edge-triggered epoll no new event would bring it back.
func (b *Backend) runReady() {
	for b.ready.head != nil && b.queued() < b.budget {
		if b.spool != nil && b.spool.Free() == 0 && b.queued() > 0 {
			// The large buffers are all out, some in completions not yet
			// delivered: deliver them (the consumer releases them) rather
			// than end a receive with ENOBUFS. A budget of len(out)
			// completions can exceed the pool's 64 KiB buffers.
			break
		}
		st := b.ready.pop()
		if b.drainRd(st) {
			b.ready.push(st)
		}
	}
}

// newPass starts the allowance of one read pass.
func (b *Backend) newPass() {
	b.passLeft, b.bytesLeft, b.yielded = passBufs, passBytes, false
}

// spend charges one completion of n bytes to the current pass; it reports
// whether the pass is used up (and records that in yielded).
func (b *Backend) spend(n int) bool {
	b.passLeft--
	b.bytesLeft -= n
	if b.passLeft <= 0 || b.bytesLeft <= 0 {
		b.yielded = true
	}
	return b.yielded
}

// drainRd runs one pass over st's parked read-side ops in FIFO order: until
// one would block (the edge is used up) or the pass allowance is spent. It
// reports whether st may still be readable, i.e. must stay on the ready list.
func (b *Backend) drainRd(st *fdState) bool {
	if !st.registered {
		return false // forgotten (closed) since it became ready
	}
	l := &st.rd
	b.newPass()
	for op := l.head; op != nil; op = l.head {
		if b.exec(op) {
			return b.yielded
		}
		l.head = op.Sys.Next
		if l.head == nil {
			l.tail = nil
		}
		b.retire(op)
		if b.spend(0) {
			return l.head != nil
		}
	}
	return false
}

// drainCQ copies ready completions into out.
func (b *Backend) drainCQ(out []backend.Completion) int {
	n := copy(out, b.cq[b.cqHead:])
	b.cqHead += n
	if b.cqHead == len(b.cq) {
		clear(b.cq) // drop buffer views
		b.cq = b.cq[:0]
		b.cqHead = 0
	} else if b.cqHead > len(b.cq)/2 {
		m := copy(b.cq, b.cq[b.cqHead:])
		clear(b.cq[m:])
		b.cq = b.cq[:m]
		b.cqHead = 0
	}
	return n
}

func (b *Backend) now() int64 { return int64(time.Since(b.start)) }

// flush starts every queued op in submission order.
func (b *Backend) flush() {
	for i := 0; i < len(b.sq); i++ { // start may not append to sq, but be safe
		op := b.sq[i]
		b.sq[i] = nil
		b.start1(op)
	}
	b.sq = b.sq[:0]
}

// event handles one epoll event.
func (b *Backend) event(ev *unix.EpollEvent) {
	if ev.Pad == -1 && int(ev.Fd) == b.wk.Fd() {
		for {
			_, e := sysRW(false, ev.Fd, b.evb[:])
			if e != unix.EINTR {
				break
			}
		}
		b.wk.Consumed()
		b.wokeInner = true
		return
	}
	st := b.lookupFd(ev.Fd)
	if st == nil || st.gen != ev.Pad || !st.registered {
		return // stale: the descriptor was forgotten since
	}
	e := ev.Events
	if e&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR|unix.EPOLLPRI) != 0 {
		st.edgy = true // reads go on to EAGAIN from now on
		st.urgent = st.urgent || e&unix.EPOLLPRI != 0
	}
	if e&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 && st.rd.head != nil {
		b.ready.push(st) // served by runReady, in turn with the others
	}
	if e&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		b.drain(&st.wr)
	}
	if st.poll.head != nil {
		b.firePolls(st, e)
	}
}

// drain retries the parked ops of the write direction in FIFO order until one
// would block again (edge-triggered: the next edge retries it).
func (b *Backend) drain(l *opList) {
	for op := l.head; op != nil; op = l.head {
		if b.exec(op) {
			return
		}
		l.head = op.Sys.Next
		if l.head == nil {
			l.tail = nil
		}
		b.retire(op)
	}
}

// firePolls completes the poll ops on st whose events fired.
func (b *Backend) firePolls(st *fdState, events uint32) {
	var next *backend.Op
	for op := st.poll.head; op != nil; op = next {
		next = op.Sys.Next
		m := events & (op.Events | unix.POLLERR | unix.POLLHUP)
		if m == 0 {
			continue
		}
		if op.Multishot {
			b.post(op, int32(m), backend.FlagMore)
			continue
		}
		st.poll.remove(op)
		b.post(op, int32(m), 0)
		b.retire(op)
	}
}

// fireTimers completes every timeout due at now.
func (b *Backend) fireTimers(now int64) {
	for len(b.timers) > 0 && b.timers[0].when <= now {
		op := b.timers[0].op
		b.timerRemove(0)
		b.post(op, -int32(unix.ETIME), 0)
		b.retire(op)
	}
}

// post queues a completion for op.
func (b *Backend) post(op *backend.Op, res int32, flags backend.Flag) {
	b.cq = append(b.cq, backend.Completion{Token: op.Token, Res: res, Flags: flags})
}

// postBuf queues a completion carrying provided buffer id with n bytes.
func (b *Backend) postBuf(op *backend.Op, n int, flags backend.Flag, id uint16) {
	b.cq = append(b.cq, backend.Completion{
		Token: op.Token, Res: int32(n), Flags: flags | backend.FlagBuffer,
		BufID: id, Buf: b.bufOf(id)[:n],
	})
}

// retire forgets an op whose final completion was posted (and which is no
// longer on any list): it leaves the token index and its state is cleared.
func (b *Backend) retire(op *backend.Op) {
	if op.Sys.State&(stParked|stTimer) != 0 {
		b.index.Remove(op)
	}
	op.Sys.State = 0
	op.Sys.Next = nil
}

// Wake makes a concurrent Wait return, or the next one if none is running.
// Goroutine-safe; Wakes before the Wait that consumes them coalesce. After
// Close it returns ErrClosed.
func (b *Backend) Wake() error {
	if b.wk == nil {
		return backend.ErrClosed
	}
	err := b.wk.Wake()
	if err != nil && !errors.Is(err, backend.ErrClosed) {
		err = fmt.Errorf("epoll: %w", err)
	}
	return err
}

// ReleaseBuffer returns provided buffer id to the pool; its Buf views become
// invalid. Loop goroutine only. Releasing a buffer not handed out, or after
// Close, does nothing.
func (b *Backend) ReleaseBuffer(id uint16) {
	if b.closed {
		return
	}
	switch {
	case id&spoolBit != 0 && b.spool != nil:
		b.spool.Put(id &^ spoolBit)
	case b.pool != nil:
		b.pool.Put(id)
	}
}

// Close ends every op still in flight (their completions are discarded), then
// closes the epoll and event descriptors and unmaps the buffer pool. It never
// closes caller descriptors. Buf views of buffers not yet released become
// invalid (the pool is unmapped). Loop goroutine only; afterwards every method
// returns ErrClosed (ReleaseBuffer does nothing).
func (b *Backend) Close() error {
	if b.closed {
		return backend.ErrClosed
	}
	b.closed = true
	for _, op := range b.sq {
		op.Sys.State, op.Sys.Next = 0, nil
	}
	b.sq = nil
	for fd, st := range b.fds {
		if st == nil {
			continue
		}
		for _, l := range []*opList{&st.rd, &st.wr, &st.poll} {
			for op := l.head; op != nil; {
				next := op.Sys.Next
				op.Sys.State, op.Sys.Next = 0, nil
				op = next
			}
		}
		b.fds[fd] = nil
	}
	for _, t := range b.timers {
		t.op.Sys.State, t.op.Sys.Next = 0, nil
	}
	for i := b.cqHead; i < len(b.cq); i++ {
		if b.cq[i].Control != nil {
			msghdr.CloseRights(b.cq[i].Control) // descriptors received for nobody
		}
	}
	b.timers, b.cq, b.cqHead = nil, nil, 0
	b.index = opindex.Index{}
	b.ready = readyList{}
	b.release()
	return nil
}
