package opindex

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor/backend"
)

func TestIndex(t *testing.T) {
	var x Index
	a := &backend.Op{Token: backend.MakeToken(3, 1)}
	b := &backend.Op{Token: backend.MakeToken(3, 2)}         // same slot, other generation
	c := &backend.Op{Token: backend.MakeToken(maxSlot+5, 1)} // beyond the slice
	for _, op := range []*backend.Op{a, b, c} {
		x.Add(op)
	}
	for _, op := range []*backend.Op{a, b, c} {
		require.Same(t, op, x.Lookup(op.Token))
	}
	require.Nil(t, x.Lookup(backend.MakeToken(3, 3)))
	require.Nil(t, x.Lookup(backend.MakeToken(4, 1)))
	n := 0
	x.Each(func(*backend.Op) { n++ })
	require.Equal(t, 3, n)
	x.Remove(a)
	require.Nil(t, x.Lookup(a.Token))
	require.Same(t, b, x.Lookup(b.Token))
	x.Remove(a) // twice: nothing
	x.Remove(c)
	require.Nil(t, x.Lookup(c.Token))
	x.Reset()
	require.Nil(t, x.Lookup(b.Token))
}

func BenchmarkAddRemove(b *testing.B) {
	var x Index
	ops := make([]backend.Op, 1024)
	for i := range ops {
		ops[i].Token = backend.MakeToken(uint32(i), 1)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		op := &ops[i&1023]
		x.Add(op)
		if x.Lookup(op.Token) != op {
			b.Fatal("lost")
		}
		x.Remove(op)
	}
}
