package resp

import (
	"math"
	"sync"
	"time"
)

// Store is the in-memory keyspace the RESP server works on: string keys to
// string values, each with an optional expiry.
//
// A Store made by NewStore belongs to one loop: every connection using it must
// run on the same loop goroutine, and it takes no locks. For a server running
// several loops, either give each loop its own Store (a sharded keyspace: a
// client sees only the keys of the loop its connection landed on) or share one
// Store made by NewSharedStore, which serializes access with a mutex (each
// batch of pipelined requests runs under one lock acquisition, so a batch is
// atomic with respect to other connections).
//
// Deadlines have millisecond resolution, and a key expires once the time is
// past its deadline (at the deadline itself it still exists with PTTL 0), as in
// Redis. Expiry is lazy — a key is removed when it is touched after its deadline —
// plus a bounded sweep that samples keys with a deadline at most every
// sweepEvery, piggybacked on requests (so an idle server runs no timers). Times
// come from each connection's transport Clock.
type Store struct {
	mu     sync.Mutex
	shared bool

	m        map[string]*entry
	volatile []*entry // entries with a deadline, for the sweep

	base      time.Time // time origin of deadlines; set on first use
	baseSet   bool
	lastSweep int64
	rng       uint64
}

// entry is one key. Its fields are owned by the Store's goroutine (or lock).
type entry struct {
	key  string
	val  []byte
	exp  int64 // deadline in ms since Store.base; 0: none
	vidx int   // index in Store.volatile; -1 when exp == 0
}

// sweepEvery is the minimum interval between two expiry sweeps.
const sweepEvery = 100 * time.Millisecond

// NewStore returns an empty store for connections on one loop. It is not
// goroutine-safe.
func NewStore() *Store {
	return &Store{m: make(map[string]*entry), rng: 0x9e3779b97f4a7c15}
}

// NewSharedStore returns an empty store that several loops may share: access
// is serialized by a mutex.
func NewSharedStore() *Store {
	s := NewStore()
	s.shared = true
	return s
}

func (s *Store) lock() {
	if s.shared {
		s.mu.Lock()
	}
}

func (s *Store) unlock() {
	if s.shared {
		s.mu.Unlock()
	}
}

// Len returns the number of keys, counting keys that expired but were not yet
// removed (as Redis's DBSIZE does). Goroutine-safe for a shared store only.
func (s *Store) Len() int {
	s.lock()
	defer s.unlock()
	return len(s.m)
}

// rel converts t to milliseconds since the store's time origin (Redis keeps
// deadlines in milliseconds too).
func (s *Store) rel(t time.Time) int64 {
	if !s.baseSet {
		// One hour before the first time seen, so no deadline or "now" is ever
		// 0 (0 means "no deadline") and absolute times slightly in the past
		// still compare correctly.
		s.base = t.Add(-time.Hour)
		s.baseSet = true
	}
	return t.Sub(s.base).Milliseconds()
}

// relUnixMilli converts an absolute Unix time in milliseconds to the store's
// scale, saturating.
func (s *Store) relUnixMilli(ms int64) int64 {
	b := s.base.UnixMilli()
	if b < 0 && ms > math.MaxInt64+b {
		return math.MaxInt64
	}
	if b > 0 && ms < math.MinInt64+b {
		return math.MinInt64
	}
	return ms - b
}

// setVal copies val into e, reusing e's storage unless it is far too big.
func (e *entry) setVal(val []byte) {
	if c := cap(e.val); c >= len(val) && c <= 2*len(val)+64 {
		e.val = append(e.val[:0], val...)
		return
	}
	e.val = append(make([]byte, 0, len(val)), val...)
}

// expireAt sets e's deadline (ms since base, > 0).
func (s *Store) expireAt(e *entry, at int64) {
	e.exp = at
	if e.vidx < 0 {
		e.vidx = len(s.volatile)
		s.volatile = append(s.volatile, e)
	}
}

// persist clears e's deadline; it reports whether it had one.
func (s *Store) persist(e *entry) bool {
	if e.exp == 0 {
		return false
	}
	e.exp = 0
	s.unvolatile(e)
	return true
}

func (s *Store) unvolatile(e *entry) {
	i := e.vidx
	if i < 0 {
		return
	}
	last := len(s.volatile) - 1
	if i != last {
		m := s.volatile[last]
		s.volatile[i] = m
		m.vidx = i
	}
	s.volatile[last] = nil
	s.volatile = s.volatile[:last]
	e.vidx = -1
}

// remove deletes e.
func (s *Store) remove(e *entry) {
	s.unvolatile(e)
	delete(s.m, e.key)
}

// flush deletes every key.
func (s *Store) flush() {
	s.m = make(map[string]*entry)
	clear(s.volatile)
	s.volatile = s.volatile[:0]
}

// sweep removes expired keys by sampling (Redis's active expiry, bounded):
// rounds of up to 20 random keys with a deadline, repeated while more than a
// quarter of a round had expired, at most 16 rounds. It runs at most every
// sweepEvery.
func (s *Store) sweep(now int64) {
	if len(s.volatile) == 0 || now-s.lastSweep < sweepEvery.Milliseconds() {
		return
	}
	s.lastSweep = now
	for round := 0; round < 16 && len(s.volatile) > 0; round++ {
		expired := 0
		n := min(20, len(s.volatile))
		for range n {
			if len(s.volatile) == 0 {
				break
			}
			e := s.volatile[s.rand(len(s.volatile))]
			if now > e.exp {
				s.remove(e)
				expired++
			}
		}
		if expired*4 <= n {
			return
		}
	}
}

// rand returns a pseudo-random int in [0, n) (xorshift64).
func (s *Store) rand(n int) int {
	x := s.rng
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	s.rng = x
	return int(x % uint64(n))
}
