// Package opindex finds in-flight ops by token, for the backends under
// reactor/backend: a slice indexed by the token's slot (the loop's op-table
// index, so small and dense), with a map for slots beyond maxSlot and for a
// slot already taken by another op. Not goroutine-safe: the loop goroutine
// only.
package opindex

import "github.com/gyre-io/gyre/reactor/backend"

// maxSlot bounds the slice part; larger slots go to the map.
const maxSlot = 1 << 20

// Index maps tokens to ops. The zero value is empty and ready to use.
type Index struct {
	slots    []*backend.Op
	overflow map[backend.Token]*backend.Op
}

// Add records op under op.Token. An op must be removed (Remove) before its
// token is added again.
func (x *Index) Add(op *backend.Op) {
	s := op.Token.Slot()
	if s < maxSlot {
		if int(s) >= len(x.slots) {
			n := max(2*len(x.slots), int(s)+64)
			grown := make([]*backend.Op, min(n, maxSlot))
			copy(grown, x.slots)
			x.slots = grown
		}
		if x.slots[s] == nil {
			x.slots[s] = op
			return
		}
	}
	if x.overflow == nil {
		x.overflow = make(map[backend.Token]*backend.Op)
	}
	x.overflow[op.Token] = op
}

// Remove forgets op if it is recorded.
func (x *Index) Remove(op *backend.Op) {
	s := op.Token.Slot()
	if int(s) < len(x.slots) && x.slots[s] == op {
		x.slots[s] = nil
		return
	}
	if x.overflow != nil && x.overflow[op.Token] == op {
		delete(x.overflow, op.Token)
	}
}

// Lookup returns the op recorded under tok, or nil.
func (x *Index) Lookup(tok backend.Token) *backend.Op {
	s := tok.Slot()
	if int(s) < len(x.slots) {
		if op := x.slots[s]; op != nil && op.Token == tok {
			return op
		}
	}
	if x.overflow == nil {
		return nil
	}
	return x.overflow[tok]
}

// Each calls f for every recorded op (order unspecified); f must not Add.
func (x *Index) Each(f func(op *backend.Op)) {
	for _, op := range x.slots {
		if op != nil {
			f(op)
		}
	}
	for _, op := range x.overflow {
		f(op)
	}
}

// Reset forgets every op, keeping the slice's memory.
func (x *Index) Reset() {
	clear(x.slots)
	x.overflow = nil
}
