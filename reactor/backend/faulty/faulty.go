// Package faulty is a fault-injecting backend for tests: it wraps a real
// backend (io_uring or epoll) and, driven by a seed, injects the faults the
// kernel could produce for each op kind, without ever breaking the backend
// contract (package backend): every op still reaches exactly one final
// completion, FlagMore and FlagNotif keep their meaning, provided buffers are
// given back exactly once, and cancellation answers as documented.
//
// Install it on a loop with reactor.Config.WrapBackend:
//
//	cfg.WrapBackend = func(be backend.Backend) backend.Backend {
//		return faulty.New(be, faulty.Config{Seed: seed})
//	}
//
// # What is injected
//
// Every op the caller submits is copied into a shadow op the wrapper owns and
// submits to the wrapped backend under its own token; completions are mapped
// back. On that path it may, per op, from the seed:
//
//   - fail the op before it runs (it is never submitted; its one final
//     completion carries the errno): accept with ECONNABORTED, EPROTO, EMFILE,
//     ENFILE, EINTR or ECANCELED; connect with ECONNREFUSED or ETIMEDOUT; recv
//     and recvmsg with EAGAIN, EINTR, ECONNRESET, ECANCELED (and ENOBUFS with
//     BufferSelect); read with EAGAIN or EINTR; send, sendv, send_zc, sendmsg
//     and write with EAGAIN, EINTR, ECONNRESET or EPIPE (write: no
//     ECONNRESET; send_zc also ENOBUFS). Received bytes are never dropped: a
//     recv fails only before it runs.
//   - shorten a send, send_zc, write, plain recv or read (one with its own
//     buffer): the shadow op carries a shorter prefix of Buf, so the kernel
//     really transfers fewer bytes and the caller must resume the rest. Not
//     for sendmsg, recvmsg or sendv, which may carry datagrams.
//   - turn an accepted connection into ECONNABORTED: the new descriptor is
//     closed and the caller gets the error as the op's final completion; a
//     multishot accept that goes on in the kernel is cancelled, and whatever
//     it still yields is closed unseen.
//   - hold a completion for up to MaxDelay backend waits;
//   - reorder the completions returned by one Wait across different ops
//     (never the completions of one op, so a multishot op's final stays
//     last and a zero-copy notification stays after its result).
//
// Nothing is injected into nop, poll, timeout, cancel, cancel_fd, close or
// shutdown ops, and completions of a multishot recvmsg without a provided
// buffer (an empty datagram, whose Name and Control live only until the next
// Wait) are never held.
//
// # Determinism
//
// The decisions for the k-th op submitted are drawn from a PCG generator
// seeded with (Seed, k), and the reordering of the j-th Wait from (Seed, j):
// the same seed gives the same fault for the same op sequence. With real
// sockets the op sequence itself depends on timing (how bytes are split
// across recvs, which completions one Wait collects, when a peer's reset
// arrives), so a seed replays exactly only as far as the run takes the same
// path; in practice a failing seed reproduces the same kind of failure, and
// Stats says what was injected.
//
// Loop goroutine only, like the wrapped backend; Wake is goroutine-safe.
package faulty

import (
	"math/rand/v2"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
)

// Config sets what is injected. Rates are probabilities in [0, 1]; a zero
// rate takes the default, a negative one turns that fault off.
type Config struct {
	// Seed chooses the fault sequence.
	Seed uint64
	// FaultRate is the probability that an op is failed before it runs (or
	// an accepted connection is aborted); default 0.03.
	FaultRate float64
	// ShortRate is the probability that a send or plain receive is
	// shortened; default 0.3.
	ShortRate float64
	// DelayRate is the probability that a completion is held; default 0.1.
	DelayRate float64
	// MaxDelay is the most backend waits a completion is held for; default 3.
	MaxDelay int
	// ReorderRate is the probability that one Wait's completions are
	// shuffled across ops; default 0.5.
	ReorderRate float64
}

func rate(r, def float64) float64 {
	switch {
	case r == 0:
		return def
	case r < 0:
		return 0
	}
	return r
}

func (c Config) withDefaults() Config {
	c.FaultRate = rate(c.FaultRate, 0.03)
	c.ShortRate = rate(c.ShortRate, 0.3)
	c.DelayRate = rate(c.DelayRate, 0.1)
	c.ReorderRate = rate(c.ReorderRate, 0.5)
	if c.MaxDelay <= 0 {
		c.MaxDelay = 3
	}
	return c
}

// Stats counts what was injected, and contract violations seen from the
// caller (which a correct loop never commits).
type Stats struct {
	Ops          uint64 // ops submitted by the caller
	Failed       uint64 // ops failed before they ran
	Shortened    uint64 // sends and receives shortened
	Aborted      uint64 // accepted connections turned into ECONNABORTED
	Delayed      uint64 // completions held
	Reordered    uint64 // Waits whose completions were shuffled
	BadReleases  uint64 // ReleaseBuffer of a buffer not lent to the caller
	BuffersOut   int    // provided buffers lent to the caller and not yet released
	OpsInFlight  int    // caller ops without their final completion
	ShadowsAlive int    // wrapper's own ops still in the wrapped backend
}

// Backend is the fault-injecting wrapper; see the package doc.
type Backend struct {
	inner  backend.Backend
	cfg    Config
	closed bool

	recs   []*rec
	free   []uint32
	byTok  map[backend.Token]uint32 // caller token → rec, until its final is queued
	seq    uint64
	waits  uint64
	queue  []pending
	inbuf  []backend.Completion
	bufOut map[uint16]bool

	stats Stats
}

type rec struct {
	gen       uint32
	op        *backend.Op // the caller's op; nil once its final was delivered (or for internal ops)
	sh        backend.Op  // the shadow op given to the wrapped backend
	rng       rand.PCG
	submitted bool // sh is in the wrapped backend
	innerDone bool // sh reached its final completion
	internal  bool // a cancel of the wrapper's own
}

type pending struct {
	c     backend.Completion
	hold  int
	rec   uint32
	final bool
}

var _ backend.Backend = (*Backend)(nil)

// New wraps inner. The wrapper owns inner from now on: Close closes it.
func New(inner backend.Backend, cfg Config) *Backend {
	return &Backend{
		inner:  inner,
		cfg:    cfg.withDefaults(),
		byTok:  make(map[backend.Token]uint32),
		inbuf:  make([]backend.Completion, 256),
		bufOut: make(map[uint16]bool),
	}
}

// Name is the wrapped backend's name.
func (b *Backend) Name() string { return b.inner.Name() }

// Features are the wrapped backend's.
func (b *Backend) Features() backend.Features { return b.inner.Features() }

// Stats are the wrapped backend's counters.
func (b *Backend) Stats() backend.Stats { return b.inner.Stats() }

// Injected returns what was injected so far and the accounting of ops and
// buffers. Loop goroutine only (or after the loop stopped).
func (b *Backend) Injected() Stats {
	s := b.stats
	s.BuffersOut = len(b.bufOut)
	s.OpsInFlight, s.ShadowsAlive = 0, 0
	for _, r := range b.recs {
		if r.op != nil && !r.internal {
			s.OpsInFlight++
		}
		if r.submitted && !r.innerDone {
			s.ShadowsAlive++
		}
	}
	return s
}

// Wake wakes the wrapped backend. Goroutine-safe.
func (b *Backend) Wake() error { return b.inner.Wake() }

// stream is the generator of the n-th draw point of seed: PCG over
// splitmix64-scrambled inputs, so neighbouring n give unrelated streams.
func stream(seed, n uint64) rand.PCG {
	return *rand.NewPCG(splitmix(seed), splitmix(seed^splitmix(n)))
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func (r *rec) chance(p float64) bool {
	return p > 0 && float64(r.rng.Uint64()>>11)/(1<<53) < p
}

func (r *rec) intn(n int) int { return int(r.rng.Uint64() % uint64(n)) }

func (b *Backend) newRec() uint32 {
	var idx uint32
	if n := len(b.free); n > 0 {
		idx = b.free[n-1]
		b.free = b.free[:n-1]
	} else {
		b.recs = append(b.recs, &rec{gen: 0})
		idx = uint32(len(b.recs) - 1)
	}
	r := b.recs[idx]
	r.gen++
	if r.gen == 0 {
		r.gen = 1
	}
	b.seq++
	*r = rec{gen: r.gen}
	r.rng = stream(b.cfg.Seed, b.seq)
	return idx
}

func (b *Backend) freeRec(idx uint32) {
	r := b.recs[idx]
	gen := r.gen
	*r = rec{gen: gen}
	b.free = append(b.free, idx)
}

// errnos are the faults a kernel could answer per op kind before it runs.
func errnos(op *backend.Op) []syscall.Errno {
	switch op.Kind {
	case backend.KindAccept:
		return []syscall.Errno{unix.ECONNABORTED, unix.EPROTO, unix.EMFILE, unix.ENFILE, unix.EINTR, unix.ECANCELED}
	case backend.KindConnect:
		return []syscall.Errno{unix.ECONNREFUSED, unix.ETIMEDOUT}
	case backend.KindRecv, backend.KindRecvMsg:
		if op.BufferSelect {
			return []syscall.Errno{unix.EAGAIN, unix.EINTR, unix.ECONNRESET, unix.ECANCELED, unix.ENOBUFS}
		}
		return []syscall.Errno{unix.EAGAIN, unix.EINTR, unix.ECONNRESET, unix.ECANCELED}
	case backend.KindRead:
		return []syscall.Errno{unix.EAGAIN, unix.EINTR}
	case backend.KindSend, backend.KindSendv, backend.KindSendMsg:
		return []syscall.Errno{unix.EAGAIN, unix.EINTR, unix.ECONNRESET, unix.EPIPE}
	case backend.KindSendZC:
		return []syscall.Errno{unix.EAGAIN, unix.EINTR, unix.ECONNRESET, unix.EPIPE, unix.ENOBUFS}
	case backend.KindWrite:
		return []syscall.Errno{unix.EAGAIN, unix.EINTR, unix.EPIPE}
	}
	return nil
}

func shortenable(op *backend.Op) bool {
	switch op.Kind {
	case backend.KindSend, backend.KindSendZC, backend.KindWrite, backend.KindRead:
		return len(op.Buf) > 1
	case backend.KindRecv:
		return !op.BufferSelect && len(op.Buf) > 1
	}
	return false
}

// Submit validates op as every backend does, then fails it, or submits its
// shadow (possibly shortened) to the wrapped backend. Loop goroutine only.
func (b *Backend) Submit(op *backend.Op) error {
	if b.closed {
		return backend.ErrClosed
	}
	if err := backend.Validate(op); err != nil {
		return err
	}
	idx := b.newRec()
	r := b.recs[idx]
	r.op = op
	b.stats.Ops++
	if op.Kind == backend.KindCancel {
		return b.submitCancel(idx, op)
	}
	if errs := errnos(op); errs != nil && r.chance(b.cfg.FaultRate) {
		b.stats.Failed++
		op.Sys.State |= backend.StateInFlight
		b.push(idx, backend.Completion{Token: op.Token, Res: -int32(errs[r.intn(len(errs))])})
		return nil
	}
	r.sh = *op
	r.sh.Sys = backend.Sys{}
	r.sh.Token = backend.MakeToken(idx, r.gen)
	if shortenable(op) && r.chance(b.cfg.ShortRate) {
		b.stats.Shortened++
		r.sh.Buf = r.sh.Buf[:1+r.intn(len(r.sh.Buf)-1)]
	}
	if err := b.inner.Submit(&r.sh); err != nil {
		b.freeRec(idx)
		return err
	}
	r.submitted = true
	op.Sys.State |= backend.StateInFlight
	b.byTok[op.Token] = idx
	return nil
}

func (b *Backend) submitCancel(idx uint32, op *backend.Op) error {
	r := b.recs[idx]
	t, ok := b.byTok[op.Target]
	if !ok {
		// Finished (its final completion is queued or delivered), never
		// submitted, or failed before it ran: the kernel's answer.
		op.Sys.State |= backend.StateInFlight
		b.push(idx, backend.Completion{Token: op.Token, Res: -int32(unix.ENOENT)})
		return nil
	}
	r.sh = backend.Op{Kind: backend.KindCancel, Token: backend.MakeToken(idx, r.gen), Target: b.recs[t].sh.Token}
	if err := b.inner.Submit(&r.sh); err != nil {
		b.freeRec(idx)
		return err
	}
	r.submitted = true
	op.Sys.State |= backend.StateInFlight
	return nil
}

// cancelInternal cancels rec t's shadow for the wrapper's own reasons (its
// caller op already has its final completion); the cancel's result is
// dropped.
func (b *Backend) cancelInternal(t uint32) {
	idx := b.newRec()
	r := b.recs[idx]
	r.internal = true
	r.sh = backend.Op{Kind: backend.KindCancel, Token: backend.MakeToken(idx, r.gen), Target: b.recs[t].sh.Token}
	if err := b.inner.Submit(&r.sh); err != nil {
		b.freeRec(idx)
		return
	}
	r.submitted = true
}

// push queues a completion for the caller, maybe held.
func (b *Backend) push(idx uint32, c backend.Completion) {
	r := b.recs[idx]
	p := pending{c: c, rec: idx, final: !c.More()}
	holdable := !(r.op != nil && r.op.Kind == backend.KindRecvMsg && r.op.Multishot && c.Flags&backend.FlagBuffer == 0)
	if holdable && r.chance(b.cfg.DelayRate) {
		p.hold = 1 + r.intn(b.cfg.MaxDelay)
		b.stats.Delayed++
	}
	if p.final && r.op != nil {
		delete(b.byTok, r.op.Token)
	}
	b.queue = append(b.queue, p)
}

// absorb maps the wrapped backend's completions onto the caller's ops.
func (b *Backend) absorb(cs []backend.Completion) {
	for i := range cs {
		c := cs[i]
		cs[i] = backend.Completion{}
		idx := c.Token.Slot()
		if int(idx) >= len(b.recs) || b.recs[idx].gen != c.Token.Gen() || !b.recs[idx].submitted {
			continue // cannot happen with a correct wrapped backend
		}
		r := b.recs[idx]
		final := !c.More()
		if final {
			r.innerDone = true
		}
		if r.op == nil || r.internal || b.detached(idx) {
			// The caller's op already has its final completion: swallow.
			b.swallow(r, &c)
			if final && (r.op == nil || r.internal) {
				b.freeRec(idx)
			}
			continue
		}
		if r.op.Kind == backend.KindAccept && c.Res >= 0 && r.chance(b.cfg.FaultRate) {
			b.stats.Aborted++
			_ = unix.Close(int(c.Res))
			c.Res, c.Flags = -int32(unix.ECONNABORTED), 0
			if !final {
				b.cancelInternal(idx)
			}
		}
		if r.op.Kind == backend.KindRecvMsg || r.op.Kind == backend.KindAccept {
			r.op.AddrLen = r.sh.AddrLen
		}
		c.Token = r.op.Token
		b.push(idx, c)
	}
}

// detached reports whether rec idx's caller final is already queued while
// its shadow still runs (an aborted multishot accept).
func (b *Backend) detached(idx uint32) bool {
	r := b.recs[idx]
	if r.op == nil {
		return true
	}
	_, live := b.byTok[r.op.Token]
	return !live && r.op.Kind != backend.KindCancel
}

func (b *Backend) swallow(r *rec, c *backend.Completion) {
	if r.sh.Kind == backend.KindAccept && c.Res >= 0 {
		_ = unix.Close(int(c.Res))
	}
	if c.Flags&backend.FlagBuffer != 0 {
		b.inner.ReleaseBuffer(c.BufID)
	}
}

// Wait collects the wrapped backend's completions, then hands the caller
// those no longer held, possibly reordered across ops. While completions are
// held it polls the wrapped backend, so a held completion is released within
// MaxDelay waits. Loop goroutine only.
func (b *Backend) Wait(out []backend.Completion, timeout time.Duration) (int, error) {
	if b.closed {
		return 0, backend.ErrClosed
	}
	for {
		t := timeout
		if len(b.queue) > 0 {
			t = 0
		}
		n, err := b.inner.Wait(b.inbuf, t)
		if err != nil {
			return 0, err
		}
		b.absorb(b.inbuf[:n])
		k := b.emit(out)
		switch {
		case k > 0:
			return k, nil
		case len(b.queue) > 0:
			// Everything is held: poll again, the holds tick down.
		case n == 0 || timeout == 0:
			return 0, nil // timed out, woken, or only polling
		}
		// Only swallowed completions: wait on.
	}
}

// emit moves releasable completions into out: each op's completions in
// their order, an op blocked behind its own held completion. Holds tick down
// once per call.
func (b *Backend) emit(out []backend.Completion) int {
	b.waits++
	var ready []pending
	keep := b.queue[:0]
	blocked := map[uint32]bool{}
	for _, p := range b.queue {
		if p.hold > 0 || blocked[p.rec] || len(ready) == len(out) {
			if p.hold > 0 {
				p.hold--
			}
			blocked[p.rec] = true
			keep = append(keep, p)
			continue
		}
		ready = append(ready, p)
	}
	for i := len(keep); i < len(b.queue); i++ {
		b.queue[i] = pending{}
	}
	b.queue = keep
	if len(ready) > 1 {
		rng := rec{rng: stream(^b.cfg.Seed, b.waits)}
		if rng.chance(b.cfg.ReorderRate) {
			b.stats.Reordered++
			ready = interleave(ready, &rng)
		}
	}
	for i, p := range ready {
		out[i] = p.c
		r := b.recs[p.rec]
		if p.c.Flags&backend.FlagBuffer != 0 {
			b.bufOut[p.c.BufID] = true
		}
		if p.final {
			r.op.Sys.State &^= backend.StateInFlight
			r.op = nil
			if !r.submitted || r.innerDone {
				b.freeRec(p.rec)
			}
		}
	}
	return len(ready)
}

// interleave shuffles ps across ops while keeping each op's completions in
// their order: positions are permuted, then each op's completions refill the
// positions its own ones landed on, in order.
func interleave(ps []pending, rng *rec) []pending {
	n := len(ps)
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := rng.intn(i + 1)
		perm[i], perm[j] = perm[j], perm[i]
	}
	byRec := map[uint32][]pending{}
	for _, p := range ps {
		byRec[p.rec] = append(byRec[p.rec], p)
	}
	out := make([]pending, n)
	for i, k := range perm {
		q := byRec[ps[k].rec]
		out[i] = q[0]
		byRec[ps[k].rec] = q[1:]
	}
	return out
}

// ReleaseBuffer gives a provided buffer back to the wrapped backend's pool.
// A buffer not lent to the caller is counted in Stats.BadReleases and not
// passed on. Loop goroutine only.
func (b *Backend) ReleaseBuffer(id uint16) {
	if b.closed {
		return
	}
	if !b.bufOut[id] {
		b.stats.BadReleases++
		return
	}
	delete(b.bufOut, id)
	b.inner.ReleaseBuffer(id)
}

// Close closes the wrapped backend (which cancels and drains its ops),
// then discards the completions still queued, closing descriptors of
// accepts among them. Loop goroutine only.
func (b *Backend) Close() error {
	if b.closed {
		return backend.ErrClosed
	}
	b.closed = true
	err := b.inner.Close()
	for _, p := range b.queue {
		r := b.recs[p.rec]
		if r.op == nil {
			continue
		}
		switch {
		case r.op.Kind == backend.KindAccept && p.c.Res >= 0:
			_ = unix.Close(int(p.c.Res))
		case r.op.Kind == backend.KindRecvMsg && len(p.c.Control) > 0:
			closeRights(p.c.Control)
		}
	}
	b.queue = nil
	return err
}

// closeRights closes the descriptors of the SCM_RIGHTS messages in ctl (a
// discarded recvmsg's, as the contract requires of Close).
func closeRights(ctl []byte) {
	msgs, err := unix.ParseSocketControlMessage(ctl)
	if err != nil {
		return
	}
	for i := range msgs {
		fds, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			continue
		}
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	}
}
