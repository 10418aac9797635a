package reactor

import (
	"errors"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/reactor/backend"
)

// scriptBE is a backend whose completions the test scripts: Submit logs the
// op, Wait hands out the queued completions, ReleaseBuffer counts.
type scriptBE struct {
	queue    []backend.Completion
	log      []*backend.Op // ops accepted by Submit since the test last looked
	failNext bool
	released map[uint16]int
}

var errScriptSubmit = errors.New("script: submit refused")

func (b *scriptBE) Name() string               { return "script" }
func (b *scriptBE) Features() backend.Features { return backend.Features{} }
func (b *scriptBE) Stats() backend.Stats       { return backend.Stats{} }
func (b *scriptBE) Wake() error                { return nil }
func (b *scriptBE) Close() error               { return nil }
func (b *scriptBE) ReleaseBuffer(id uint16)    { b.released[id]++ }
func (b *scriptBE) Submit(op *backend.Op) error {
	if b.failNext {
		b.failNext = false
		return errScriptSubmit
	}
	b.log = append(b.log, op)
	return nil
}
func (b *scriptBE) Wait(out []backend.Completion, _ time.Duration) (int, error) {
	n := copy(out, b.queue)
	b.queue = b.queue[n:]
	return n, nil
}

// fop is the model's view of one submitted op.
type fop struct {
	id     int
	op     *backend.Op
	tok    backend.Token
	live   bool
	cancel bool // a KindCancel the loop submitted for Loop.Cancel
}

// delivery is what a handler saw for the completion numbered k (its Res).
type delivery struct {
	id        int
	submitted []*backend.Op // ops the handler submitted while handling it
}

type fuzzHandler struct {
	id  int
	op  *backend.Op
	run *dispatchRun
}

// dispatchRun is one fuzz input's loop, backend and model.
type dispatchRun struct {
	t         *testing.T
	l         *Loop
	be        *scriptBE
	ops       []*fop
	byTok     map[backend.Token]*fop // live ops
	delivered map[int32]*delivery
	panics    int
	reported  int
	prog      []byte
}

func (r *dispatchRun) next() int {
	if len(r.prog) == 0 {
		return 0
	}
	b := r.prog[0]
	r.prog = r.prog[1:]
	return int(b)
}

func (h *fuzzHandler) Complete(op *backend.Op, c *backend.Completion) {
	r := h.run
	if op != h.op || c.Token != op.Token {
		r.t.Fatalf("handler of op %d got op %p (token %x) for completion token %x", h.id, op, op.Token, c.Token)
	}
	if _, dup := r.delivered[c.Res]; dup {
		r.t.Fatalf("completion %d delivered twice", c.Res)
	}
	d := &delivery{id: h.id}
	r.delivered[c.Res] = d
	switch c.Res % 5 {
	case 1: // submit a new op from the handler: after a final, it reuses the slot
		mark := len(r.be.log)
		r.submit()
		d.submitted = append(d.submitted, r.be.log[mark:]...)
	case 3:
		r.panics++
		panic("fuzz: handler panics")
	}
}

// submit submits a fresh op through the loop (the backend logs it).
func (r *dispatchRun) submit() {
	op := &backend.Op{Kind: backend.KindNop}
	id := len(r.ops)
	h := &fuzzHandler{id: id, op: op, run: r}
	r.ops = append(r.ops, &fop{id: id, op: op}) // live once the log shows it
	if err := r.l.Submit(op, h); err != nil && !errors.Is(err, errScriptSubmit) {
		r.t.Fatalf("Submit: %v", err)
	}
}

// adopt adds the ops the backend logged to the model as live.
func (r *dispatchRun) adopt(logged []*backend.Op) {
	for _, op := range logged {
		f := &fop{op: op, tok: op.Token, live: true, cancel: op.Kind == backend.KindCancel, id: -1}
		for _, o := range r.ops {
			if o.op == op {
				f = o
				f.tok, f.live = op.Token, true
			}
		}
		if f.id < 0 {
			f.id = len(r.ops)
			r.ops = append(r.ops, f)
		}
		if old := r.byTok[f.tok]; old != nil {
			r.t.Fatalf("token %x handed out twice (ops %d and %d)", f.tok, old.id, f.id)
		}
		r.byTok[f.tok] = f
	}
}

func (r *dispatchRun) adoptLog() {
	logged := r.be.log
	r.be.log = nil
	r.adopt(logged)
}

// pick returns some op ever submitted (live or not), or nil.
func (r *dispatchRun) pick() *fop {
	var known []*fop
	for _, o := range r.ops {
		if o.tok != 0 {
			known = append(known, o)
		}
	}
	if len(known) == 0 {
		return nil
	}
	return known[r.next()%len(known)]
}

func (r *dispatchRun) pickLive() *fop {
	var live []*fop
	for _, o := range r.ops {
		if o.live {
			live = append(live, o)
		}
	}
	if len(live) == 0 {
		return nil
	}
	return live[r.next()%len(live)]
}

// turn runs one loop turn over the queued completions (at most a batch) and
// replays the batch in the model, in order, checking every delivery.
func (r *dispatchRun) turn() {
	batch := append([]backend.Completion(nil), r.be.queue[:min(len(r.be.queue), len(r.l.comps))]...)
	clear(r.be.released)
	r.delivered = map[int32]*delivery{}
	if err := r.l.turn(0); err != nil {
		r.t.Fatalf("turn: %v", err)
	}
	for _, c := range batch {
		d := r.delivered[c.Res]
		target := r.byTok[c.Token]
		switch {
		case target == nil:
			if d != nil {
				r.t.Fatalf("completion %d (token %x) matches no live op but reached op %d", c.Res, c.Token, d.id)
			}
		case target.cancel:
			if d != nil {
				r.t.Fatalf("completion %d of a cancel op reached op %d", c.Res, d.id)
			}
		default:
			if d == nil || d.id != target.id {
				r.t.Fatalf("completion %d for live op %d (token %x) delivered to %v", c.Res, target.id, c.Token, d)
			}
		}
		if target != nil && c.Flags&backend.FlagMore == 0 {
			target.live = false
			delete(r.byTok, c.Token)
		}
		if d != nil {
			r.adopt(d.submitted)
			delete(r.delivered, c.Res)
		}
		if c.Flags&backend.FlagBuffer != 0 {
			if n := r.be.released[c.BufID]; n != 1 {
				r.t.Fatalf("completion %d: buffer %d released %d times", c.Res, c.BufID, n)
			}
		}
	}
	if len(r.delivered) != 0 {
		r.t.Fatalf("deliveries of completions not in the batch: %v", r.delivered)
	}
	r.be.log = nil // handler submissions were adopted in order above
	r.check()
}

// check compares the loop's op table with the model.
func (r *dispatchRun) check() {
	l := r.l
	if l.inflight != len(r.byTok) {
		r.t.Fatalf("inflight %d, model %d", l.inflight, len(r.byTok))
	}
	if used := len(l.slots) - len(l.freeSlot); used != len(r.byTok) {
		r.t.Fatalf("%d slots in use, model %d live ops", used, len(r.byTok))
	}
	for tok, f := range r.byTok {
		s := l.slots[tok.Slot()]
		if s.gen != tok.Gen() || s.op != f.op {
			r.t.Fatalf("live op %d: slot %d holds gen %d op %p", f.id, tok.Slot(), s.gen, s.op)
		}
	}
	if r.reported != r.panics {
		r.t.Fatalf("%d handler panics, %d reported", r.panics, r.reported)
	}
}

// FuzzDispatch feeds the loop's completion dispatcher fuzzer-chosen
// completion sequences from a scripted backend: completions for live ops
// (intermediate ones with FlagMore and finals, in any order across ops),
// duplicate finals and completions carrying stale or made-up tokens, some
// with provided buffers; handlers that submit a new op from a final (so the
// slot is reused while a stale completion for it may still be in the same
// batch) or panic; Loop.Cancel of live and finished ops; refused
// submissions; and slot generations about to wrap. After every turn, in
// batch order against a model: each completion reached the handler of the
// live op its token names, and only that one, at most once; stale and
// duplicate completions reached nobody; every provided buffer was released
// exactly once; inflight and the slot table match the live ops; every
// handler panic was reported.
func FuzzDispatch(f *testing.F) {
	f.Add([]byte{0, 0, 2, 0, 2, 1, 5, 3, 0, 5})
	f.Add([]byte{0, 1, 0, 9, 2, 0, 3, 0, 5, 4, 3, 7, 5, 0, 6, 0, 5, 2, 0, 5})
	f.Add([]byte{0, 0, 0, 7, 8, 0, 0, 2, 1, 2, 0, 3, 1, 4, 0, 0, 5, 1, 2, 1, 5})
	f.Add([]byte{0, 0, 6, 0, 6, 0, 2, 0, 2, 1, 2, 2, 5, 3, 1, 5, 2, 0, 5})
	f.Fuzz(func(t *testing.T, prog []byte) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		be := &scriptBE{released: map[uint16]int{}}
		r := &dispatchRun{t: t, be: be, byTok: map[backend.Token]*fop{}, prog: prog}
		l := &Loop{
			be:    be,
			log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
			comps: make([]backend.Completion, 8),
			tid:   gettid(),
		}
		l.onError = func(err error) {
			var pe *PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("unexpected error reported: %v", err)
			}
			r.reported++
		}
		l.cancelH.l = l
		l.timers = clock.NewTimers(nil)
		r.l = l
		serial := int32(0)
		var bufID uint16
		enqueue := func(tok backend.Token, more bool) {
			serial++
			c := backend.Completion{Token: tok, Res: serial}
			if more {
				c.Flags |= backend.FlagMore
			}
			if r.next()%2 == 1 {
				bufID++
				c.Flags |= backend.FlagBuffer
				c.BufID = bufID
			}
			be.queue = append(be.queue, c)
		}
		for steps := 0; len(r.prog) > 0 && steps < 300; steps++ {
			switch r.next() % 9 {
			case 0: // submit
				r.submit()
				r.adoptLog()
			case 1: // an intermediate completion for a live op
				if o := r.pickLive(); o != nil {
					enqueue(o.tok, true)
				}
			case 2: // a final completion for a live op (any order across ops)
				if o := r.pickLive(); o != nil {
					enqueue(o.tok, false)
				}
			case 3: // a duplicate or late completion for any op ever submitted
				if o := r.pick(); o != nil {
					enqueue(o.tok, r.next()%2 == 0)
				}
			case 4: // a made-up token: a slot near the table, a nearby generation
				slot := uint32(r.next() % (len(l.slots) + 2))
				gen := uint32(r.next() % 4)
				if int(slot) < len(l.slots) {
					gen += l.slots[slot].gen - 2
				}
				enqueue(backend.MakeToken(slot, gen), r.next()%2 == 0)
			case 5: // a loop turn
				r.turn()
			case 6: // Loop.Cancel of some op, live or finished
				if o := r.pick(); o != nil {
					l.Cancel(o.tok)
					r.adoptLog()
				}
			case 7: // the backend refuses the next submission
				be.failNext = true
				r.submit()
				r.adoptLog()
				be.failNext = false
			case 8: // free slots at the end of their generations
				for _, idx := range l.freeSlot {
					l.slots[idx].gen = ^uint32(0) - uint32(r.next()%2)
				}
			}
			r.check()
		}
		for len(be.queue) > 0 {
			r.turn()
		}
	})
}
