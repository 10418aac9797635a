package basic_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/protocols/basic"
	"github.com/gyre-io/gyre/transports/transporttest"
)

func TestSetLineModeExtraGoesBeforeReentrantBytes(t *testing.T) {
	var got []string
	need := 0
	r := &basic.LineReceiver{}
	r.OnLine = func(l []byte) {
		got = append(got, string(l))
		if string(l) == "raw" {
			need = 2
			r.SetRawMode()
		}
	}
	r.OnRawData = func(d []byte) {
		k := min(need, len(d))
		need -= k
		got = append(got, "raw:"+string(d[:k]))
		if need == 0 {
			r.DataReceived([]byte("later\r\n")) // arrives "after" d
			r.SetLineMode(d[k:])                // the unused tail of d comes first
		}
	}
	transporttest.Connect(r, transporttest.NewStringTransport(nil))
	r.DataReceived([]byte("raw\r\nRRfirst\r\nsecond\r\n"))
	require.Equal(t, []string{"raw", "raw:RR", "first", "second", "later"}, got)
	require.Zero(t, r.Buffered())
}

func TestConnectionLostInsideCallback(t *testing.T) {
	var got []string
	tr := transporttest.NewStringTransport(nil)
	r := &basic.LineReceiver{}
	r.OnLine = func(l []byte) {
		got = append(got, string(l))
		tr.EndConnection(nil) // a transport that reports the loss synchronously
	}
	transporttest.Connect(r, tr)
	r.DataReceived([]byte("a\r\nb\r\nc"))
	require.Equal(t, []string{"a"}, got)
	require.Zero(t, r.Buffered())
	r.DataReceived([]byte("\r\n"))
	require.Equal(t, []string{"a"}, got)
}

func TestPanickingCallbackDoesNotWedge(t *testing.T) {
	var got []string
	r := &basic.LineReceiver{}
	r.OnLine = func(l []byte) {
		if string(l) == "boom" {
			panic("boom")
		}
		got = append(got, string(l))
	}
	transporttest.Connect(r, transporttest.NewStringTransport(nil))
	require.Panics(t, func() { r.DataReceived([]byte("a\r\nboom\r\nlost\r\n")) })
	r.ClearLineBuffer()
	r.DataReceived([]byte("b\r\n"))
	require.Equal(t, []string{"a", "b"}, got)
}

func TestLargeFrameBufferIsReleased(t *testing.T) {
	r := basic.NewInt32Receiver(nil)
	r.MaxLength = 4 << 20
	var sizes []int
	r.OnString = func(s []byte) {
		sizes = append(sizes, len(s))
		require.Equal(t, byte(len(sizes)), s[len(s)-1])
	}
	transporttest.Connect(r, transporttest.NewStringTransport(nil))
	frame := func(n int, tag byte) []byte {
		b := make([]byte, 4+n)
		b[0], b[1], b[2], b[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		b[len(b)-1] = tag
		return b
	}
	in := append(frame(3<<20, 1), frame(10, 2)...)
	for off := 0; off < len(in); off += 64 << 10 {
		r.DataReceived(in[off:min(off+64<<10, len(in))])
	}
	require.Equal(t, []int{3 << 20, 10}, sizes)
	require.Zero(t, r.Buffered())
	// The steady state after a big frame is allocation free again.
	small := frame(100, 3)
	r.OnString = func([]byte) {}
	require.Zero(t, testing.AllocsPerRun(10, func() { r.DataReceived(small) }))
}

func TestLineOnlyReceiverTooLong(t *testing.T) {
	var tooLong [][]byte
	r := &basic.LineOnlyReceiver{MaxLength: 3, Delimiter: []byte("\n")}
	var got []string
	r.OnLine = func(l []byte) { got = append(got, string(l)) }
	r.OnLineTooLong = func(l []byte) { tooLong = append(tooLong, bytes.Clone(l)) }
	tr := transporttest.NewStringTransport(nil)
	transporttest.Connect(r, tr)
	r.DataReceived([]byte("abc\nabcd\nok\n"))
	require.Equal(t, []string{"abc"}, got)
	require.Equal(t, [][]byte{[]byte("abcd\nok\n")}, tooLong)
	r.DataReceived([]byte("x\n"))
	require.Equal(t, []string{"abc", "x"}, got)
	require.NoError(t, r.SendLine([]byte("hi")))
	require.Equal(t, "hi\n", tr.String())
	require.NoError(t, r.LoseConnection())
	require.True(t, tr.Disconnecting())
	r.DataReceived([]byte("y\n"))
	require.Equal(t, []string{"abc", "x"}, got)
	tr.EndConnection(nil)
	require.Nil(t, r.Transport())
}
