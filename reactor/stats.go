package reactor

import (
	"errors"
	"expvar"
	"fmt"
	"sync/atomic"
)

// Stats is a snapshot of one loop's counters, for dashboards and alerts (see
// Loop.Stats and PublishExpvar). Counters only grow; the fields marked
// "gauge" go up and down. Counts, never times: rates are the caller's
// differences between two snapshots.
type Stats struct {
	// Backend is "uring" or "epoll".
	Backend string
	// Fallback is 1 if the loop asked for Auto and got epoll because io_uring
	// could not be set up (the one line Auto logs), else 0.
	Fallback uint64

	// ConnsOpen (gauge) is the number of stream connections started on the
	// loop and not yet lost; ConnsTotal the number ever started.
	ConnsOpen  int64
	ConnsTotal uint64
	// BytesIn is the bytes handed to protocols (DataReceived) by the
	// loop's stream connections; BytesOut the bytes the kernel accepted
	// from their sends. Bytes of other transports (datagrams) are not counted.
	BytesIn  uint64
	BytesOut uint64

	// OpsInFlight (gauge) is the number of backend ops submitted and not
	// yet finally completed (Loop.InFlight).
	OpsInFlight int64
	// Completions is the number of completions the loop dispatched;
	// Completions / (Waits + Polls) is the mean batch per kernel call.
	// MaxBatch is the most completions one wait returned.
	Completions uint64
	MaxBatch    uint64
	// Turns is the number of loop iterations: each runs the queued calls
	// and due timers, then makes one call to the backend's Wait and
	// dispatches what it returned. Turns counts those Wait calls, not
	// kernel calls: one Wait makes zero, one or several kernel calls
	// (Waits + Polls), so neither counter tracks Turns. A Wait makes none
	// when completions are already at hand — posted in io_uring's
	// completion ring, or, on epoll, made synchronously (a send done at
	// once) and returned without a look at readiness, which the next turn
	// takes: a request/response epoll loop can count one Wait per two
	// Turns. A Wait that must submit and then sleep, or sleeps again after
	// a batching window (backend.Config.BatchWait) or a wake-up that
	// brought nothing, makes two or more: an io_uring loop can count more
	// Waits than Turns.
	Turns uint64
	// Waits, Polls, CQOverflow and CloseLeaks are the backend's counters
	// (backend.Stats). Waits: kernel calls that could put the loop's thread
	// to sleep (io_uring_enter waiting for a completion, epoll_wait with a
	// non-zero timeout); an idle loop adds one per wake-up. Polls: kernel
	// calls that could not (io_uring_enter that only submits or reaps,
	// epoll_wait with a zero timeout). CQOverflow: completions the kernel
	// dropped (any non-zero value is a bug). CloseLeaks: memory regions
	// Close left mapped.
	Waits      uint64
	Polls      uint64
	CQOverflow uint64
	CloseLeaks uint64

	// BufferExhaustions is the number of reads that found the provided-buffer
	// pool empty (-ENOBUFS) and were re-armed: a sustained rate means
	// backend.Config.BufferCount is too small for the load.
	BufferExhaustions uint64
	// Panics is the number of callback panics the loop and its transports
	// recovered (each also went to Config.OnError, by default logged).
	Panics uint64
}

// counters are a loop's counters: written on the loop goroutine as plain
// fields (the hot path pays an add), published to pub with atomic stores
// once per turn, just before the loop waits, and once more after the backend
// closes.
type counters struct {
	connsOpen             int64
	connsTotal            uint64
	bytesIn, bytesOut     uint64
	completions, maxBatch uint64
	bufExhausted          uint64
}

// published is what Stats reads from any goroutine.
type published struct {
	connsOpen, inflight                  atomic.Int64
	connsTotal, bytesIn, bytesOut        atomic.Uint64
	completions, maxBatch, turns         atomic.Uint64
	waits, polls, cqOverflow, closeLeaks atomic.Uint64
	bufExhausted, panics, fallback       atomic.Uint64
}

// publish stores the loop's counters for Stats. Loop goroutine only. It runs
// once per turn: a store is a locked instruction, a load a plain one, so
// only the counters that moved are stored.
func (l *Loop) publish() {
	c, p := &l.ctr, &l.pub
	store64(&p.connsTotal, c.connsTotal)
	storeI64(&p.connsOpen, c.connsOpen)
	store64(&p.bytesIn, c.bytesIn)
	store64(&p.bytesOut, c.bytesOut)
	storeI64(&p.inflight, int64(l.inflight))
	store64(&p.completions, c.completions)
	store64(&p.maxBatch, c.maxBatch)
	store64(&p.turns, l.turns)
	store64(&p.bufExhausted, c.bufExhausted)
	bs := l.be.Stats()
	store64(&p.waits, bs.Waits)
	store64(&p.polls, bs.Polls)
	store64(&p.cqOverflow, bs.CQOverflow)
	store64(&p.closeLeaks, bs.CloseLeaks)
}

func store64(a *atomic.Uint64, v uint64) {
	if a.Load() != v {
		a.Store(v)
	}
}

func storeI64(a *atomic.Int64, v int64) {
	if a.Load() != v {
		a.Store(v)
	}
}

// Stats returns the loop's counters as of the end of its last turn (the
// loop publishes them just before each wait, so a sleeping loop's figures
// are current; after Done they are final). Goroutine-safe; it allocates
// nothing. The fields are read one by one, so a snapshot taken while the
// loop runs may mix two adjacent turns.
func (l *Loop) Stats() Stats {
	p := &l.pub
	return Stats{
		Backend:           l.be.Name(),
		Fallback:          p.fallback.Load(),
		ConnsOpen:         p.connsOpen.Load(),
		ConnsTotal:        p.connsTotal.Load(),
		BytesIn:           p.bytesIn.Load(),
		BytesOut:          p.bytesOut.Load(),
		OpsInFlight:       p.inflight.Load(),
		Completions:       p.completions.Load(),
		MaxBatch:          p.maxBatch.Load(),
		Turns:             p.turns.Load(),
		Waits:             p.waits.Load(),
		Polls:             p.polls.Load(),
		CQOverflow:        p.cqOverflow.Load(),
		CloseLeaks:        p.closeLeaks.Load(),
		BufferExhaustions: p.bufExhausted.Load(),
		Panics:            p.panics.Load(),
	}
}

// Add returns the sum of s and o, field by field (MaxBatch: the larger;
// Backend: kept if equal, else "mixed"), for a total over several loops.
func (s Stats) Add(o Stats) Stats {
	if s.Backend != o.Backend {
		if s.Backend == "" {
			s.Backend = o.Backend
		} else if o.Backend != "" {
			s.Backend = "mixed"
		}
	}
	s.Fallback += o.Fallback
	s.ConnsOpen += o.ConnsOpen
	s.ConnsTotal += o.ConnsTotal
	s.BytesIn += o.BytesIn
	s.BytesOut += o.BytesOut
	s.OpsInFlight += o.OpsInFlight
	s.Completions += o.Completions
	s.MaxBatch = max(s.MaxBatch, o.MaxBatch)
	s.Turns += o.Turns
	s.Waits += o.Waits
	s.Polls += o.Polls
	s.CQOverflow += o.CQOverflow
	s.CloseLeaks += o.CloseLeaks
	s.BufferExhaustions += o.BufferExhaustions
	s.Panics += o.Panics
	return s
}

// The counting hooks below are for transports (transports/stream counts
// every stream connection; a transport built on stream.Conn needs none of
// them). Loop goroutine only; each is a plain add.

// CountConnOpened records a connection started on the loop.
func (l *Loop) CountConnOpened() { l.ctr.connsOpen++; l.ctr.connsTotal++ }

// CountConnClosed records the end of a connection CountConnOpened recorded.
func (l *Loop) CountConnClosed() { l.ctr.connsOpen-- }

// CountBytesIn records n bytes received and handed to a protocol.
func (l *Loop) CountBytesIn(n int) { l.ctr.bytesIn += uint64(n) }

// CountBytesOut records n bytes the kernel accepted from a send.
func (l *Loop) CountBytesOut(n int) { l.ctr.bytesOut += uint64(n) }

// CountBufferExhausted records a read that found the provided-buffer pool
// empty (-ENOBUFS) and was re-armed.
func (l *Loop) CountBufferExhausted() { l.ctr.bufExhausted++ }

// ExpvarFunc returns an expvar.Func reporting the loops' Stats as JSON:
// {"total": Stats, "loops": [Stats, …]} (total is the sum, see Stats.Add).
// Register it yourself (expvar.Publish(name, f)) or use PublishExpvar.
// The function is goroutine-safe and may be called after the loops stopped.
func ExpvarFunc(loops ...*Loop) expvar.Func {
	loops = append([]*Loop(nil), loops...)
	return func() any {
		out := struct {
			Total Stats   `json:"total"`
			Loops []Stats `json:"loops"`
		}{Loops: make([]Stats, 0, len(loops))}
		for _, l := range loops {
			s := l.Stats()
			out.Loops = append(out.Loops, s)
			out.Total = out.Total.Add(s)
		}
		return out
	}
}

// ErrExpvarName: PublishExpvar was given a name expvar already has.
var ErrExpvarName = errors.New("gyre/reactor: expvar name already published")

// PublishExpvar publishes the loops' Stats under name in the process's
// expvar registry (served at /debug/vars by expvar's handler), as
// ExpvarFunc. expvar names live for the whole process: publish once per
// name; a name already taken returns an error matching ErrExpvarName
// (expvar itself would panic). gyre publishes nothing unless this is called.
// Goroutine-safe, but two concurrent calls with the same name race inside
// expvar.
func PublishExpvar(name string, loops ...*Loop) error {
	if expvar.Get(name) != nil {
		return fmt.Errorf("%w: %q", ErrExpvarName, name)
	}
	expvar.Publish(name, ExpvarFunc(loops...))
	return nil
}
