package epoll

import (
	"github.com/gyre-io/gyre/reactor/backend"
)

// Op.Sys.State bits: where an in-flight op is and what it is doing.
const (
	stParkRd     uint32 = 1 << iota // on its descriptor's read wait list
	stParkWr                        // on its descriptor's write wait list
	stParkPoll                      // on its descriptor's poll list
	stTimer                         // in the timer heap
	stConnecting                    // connect returned EINPROGRESS
	stSync                          // descriptor cannot be polled: use blocking I/O
	stParked     = stParkRd | stParkWr | stParkPoll
	// stInFlight: submitted, final completion not yet posted (the shared bit
	// backend.Validate checks).
	stInFlight = backend.StateInFlight
)

// opList is a FIFO of parked ops linked through Op.Sys.Next.
type opList struct {
	head, tail *backend.Op
}

func (l *opList) push(op *backend.Op) {
	op.Sys.Next = nil
	if l.tail == nil {
		l.head = op
	} else {
		l.tail.Sys.Next = op
	}
	l.tail = op
}

// remove unlinks op; it reports whether op was on the list.
func (l *opList) remove(op *backend.Op) bool {
	var prev *backend.Op
	for cur := l.head; cur != nil; prev, cur = cur, cur.Sys.Next {
		if cur != op {
			continue
		}
		if prev == nil {
			l.head = cur.Sys.Next
		} else {
			prev.Sys.Next = cur.Sys.Next
		}
		if l.tail == cur {
			l.tail = prev
		}
		cur.Sys.Next = nil
		return true
	}
	return false
}

// fdState is what the backend knows of one descriptor: whether it is in the
// epoll set, which ops wait on it, and whether it is on the ready list.
type fdState struct {
	gen        int32 // goes into the epoll event; bumped when the fd is forgotten
	registered bool
	noNowait   bool // preadv2/pwritev2 RWF_NOWAIT unsupported: plain read/write
	ready      bool // on the ready list: readable, not yet drained to EAGAIN
	// sock says whether a short read drains the socket (see shortReadDrains);
	// sockUnknown until a multishot recv first needs it.
	sock sockKind
	// edgy: an event reported end of stream, hang-up, error or urgent data.
	// A short read may then leave something (an EOF, an error, bytes behind
	// the urgent mark) that no new edge will announce, so reads go on to
	// EAGAIN. Sticky until the descriptor is forgotten or re-registered.
	edgy bool
	// urgent: an event reported urgent data (EPOLLPRI); an EAGAIN from a read
	// may then be false (see readRetry). Sticky like edgy.
	urgent bool
	// wide: the last read pass ended on a read of more than one buffer's
	// worth, so the next one starts reading into several at once.
	wide      bool
	rd, wr    opList
	poll      opList
	nextReady *fdState // ready list link
}

// sockKind classifies a descriptor for the short-read rule.
type sockKind uint8

const (
	sockUnknown sockKind = iota
	sockStream           // TCP or AF_UNIX SOCK_STREAM: a byte stream
	sockOther            // datagrams, records, pipes, anything else
)

// reset forgets what was learnt about the open file behind the number (it was
// closed, or may have been replaced).
func (s *fdState) reset() {
	s.registered = false
	s.noNowait = false
	s.sock = sockUnknown
	s.edgy = false
	s.urgent = false
	s.wide = false
}

func (s *fdState) empty() bool { return s.rd.head == nil && s.wr.head == nil && s.poll.head == nil }

// readyList is the FIFO of descriptors whose read side had an edge that has
// not yet been drained to EAGAIN, linked through fdState.nextReady. It is
// served round-robin, one bounded pass per descriptor at a time.
type readyList struct {
	head, tail *fdState
}

// push appends st unless it is already listed.
func (l *readyList) push(st *fdState) {
	if st.ready {
		return
	}
	st.ready = true
	st.nextReady = nil
	if l.tail == nil {
		l.head = st
	} else {
		l.tail.nextReady = st
	}
	l.tail = st
}

// pop removes and returns the first descriptor, or nil.
func (l *readyList) pop() *fdState {
	st := l.head
	if st == nil {
		return nil
	}
	l.head = st.nextReady
	if l.head == nil {
		l.tail = nil
	}
	st.ready = false
	st.nextReady = nil
	return st
}

// fdState returns the state of fd, creating it on first use.
func (b *Backend) fdState(fd int32) *fdState {
	if int(fd) >= len(b.fds) {
		n := len(b.fds) * 2
		if n <= int(fd) {
			n = int(fd) + 64
		}
		grown := make([]*fdState, n)
		copy(grown, b.fds)
		b.fds = grown
	}
	st := b.fds[fd]
	if st == nil {
		st = &fdState{}
		b.fds[fd] = st
	}
	return st
}

// lookupFd returns the state of fd or nil.
func (b *Backend) lookupFd(fd int32) *fdState {
	if fd < 0 || int(fd) >= len(b.fds) {
		return nil
	}
	return b.fds[fd]
}

// timer is one KindTimeout op in the heap.
type timer struct {
	when int64 // nanoseconds since b.start
	op   *backend.Op
}

func (b *Backend) timerLess(i, j int) bool { return b.timers[i].when < b.timers[j].when }

func (b *Backend) timerPush(t timer) {
	b.timers = append(b.timers, t)
	for i := len(b.timers) - 1; i > 0; {
		p := (i - 1) / 2
		if !b.timerLess(i, p) {
			break
		}
		b.timers[i], b.timers[p] = b.timers[p], b.timers[i]
		i = p
	}
}

// timerRemove removes entry i and restores the heap.
func (b *Backend) timerRemove(i int) {
	last := len(b.timers) - 1
	b.timers[i] = b.timers[last]
	b.timers[last] = timer{}
	b.timers = b.timers[:last]
	if i == last {
		return
	}
	// Down, then up.
	j := i
	for {
		l := 2*j + 1
		if l >= len(b.timers) {
			break
		}
		m := l
		if r := l + 1; r < len(b.timers) && b.timerLess(r, l) {
			m = r
		}
		if !b.timerLess(m, j) {
			break
		}
		b.timers[j], b.timers[m] = b.timers[m], b.timers[j]
		j = m
	}
	for j > 0 {
		p := (j - 1) / 2
		if !b.timerLess(j, p) {
			break
		}
		b.timers[j], b.timers[p] = b.timers[p], b.timers[j]
		j = p
	}
}
