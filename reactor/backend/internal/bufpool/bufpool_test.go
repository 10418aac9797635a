package bufpool

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor/backend"
)

func TestPool(t *testing.T) {
	for _, bad := range [][2]int{{0, 64}, {3, 64}, {1 << 16, 64}, {4, 0}, {4, 1 << 30}} {
		_, err := New(bad[0], bad[1])
		require.ErrorIs(t, err, backend.ErrUnsupported, "%v", bad)
	}
	p, err := New(4, 16)
	require.NoError(t, err)
	defer p.Close()
	var got []uint16
	for {
		id, ok := p.Get()
		if !ok {
			break
		}
		require.Len(t, p.Buf(id), 16)
		got = append(got, id)
	}
	require.Equal(t, []uint16{0, 1, 2, 3}, got)
	p.Put(2)
	p.Put(2)  // twice: ignored
	p.Put(99) // out of range: ignored
	id, ok := p.Get()
	require.True(t, ok)
	require.Equal(t, uint16(2), id)
	_, ok = p.Get()
	require.False(t, ok)
	require.NoError(t, p.Close())
	require.NoError(t, p.Close())
}
