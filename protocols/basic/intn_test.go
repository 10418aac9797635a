package basic_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/protocols/basic"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

func TestIntNRoundTrip(t *testing.T) {
	for _, pl := range []int{1, 2, 4} {
		t.Run(fmt.Sprint(pl), func(t *testing.T) {
			strs := []string{"hello", "", "x", string(bytes.Repeat([]byte{0xAB}, 200))}
			sender := &basic.IntNReceiver{PrefixLength: pl}
			out := transporttest.NewStringTransport(nil)
			transporttest.Connect(sender, out)
			for _, s := range strs {
				require.NoError(t, sender.SendString([]byte(s)))
			}
			require.Equal(t, append(make([]byte, pl-1), 5), out.Value()[:pl], "big-endian prefix")
			var got []string
			eachChunking(t, out.Value(), func() transports.Protocol {
				got = nil
				return &basic.IntNReceiver{PrefixLength: pl, OnString: func(s []byte) { got = append(got, string(s)) }}
			}, func(t *testing.T, size int, _ transports.Protocol, tr *transporttest.StringTransport) {
				require.Equal(t, strs, got, "size %d", size)
				require.False(t, tr.Disconnecting())
			})
		})
	}
}

func TestIntNConstructors(t *testing.T) {
	for _, c := range []struct {
		r    *basic.IntNReceiver
		want []byte
	}{
		{basic.NewInt8Receiver(nil), []byte{2, 'h', 'i'}},
		{basic.NewInt16Receiver(nil), []byte{0, 2, 'h', 'i'}},
		{basic.NewInt32Receiver(nil), []byte{0, 0, 0, 2, 'h', 'i'}},
		{&basic.IntNReceiver{}, []byte{0, 0, 0, 2, 'h', 'i'}},
		{&basic.IntNReceiver{PrefixLength: 3}, []byte{0, 0, 0, 2, 'h', 'i'}},
	} {
		tr := transporttest.NewStringTransport(nil)
		transporttest.Connect(c.r, tr)
		require.NoError(t, c.r.SendString([]byte("hi")))
		require.Equal(t, c.want, tr.Value())
	}
}

func TestIntNSendStringTooLong(t *testing.T) {
	for _, c := range []struct {
		pl, ok int
	}{{1, 255}, {2, 65535}} {
		r := &basic.IntNReceiver{PrefixLength: c.pl}
		tr := transporttest.NewStringTransport(nil)
		transporttest.Connect(r, tr)
		require.NoError(t, r.SendString(make([]byte, c.ok)))
		err := r.SendString(make([]byte, c.ok+1))
		require.ErrorIs(t, err, basic.ErrFrameTooLarge)
		require.ErrorIs(t, err, transports.ErrFrameTooLarge)
		require.Equal(t, c.pl+c.ok, len(tr.Value()), "nothing written for the failed send")
	}
}

func TestIntNLengthLimitExceeded(t *testing.T) {
	in := []byte{0, 3, 'a', 'b', 'c', 0, 4, 'w', 'x', 'y', 'z', 0, 1, 'q'}
	var got []string
	var exceeded []int
	eachChunking(t, in, func() transports.Protocol {
		got, exceeded = nil, nil
		return &basic.IntNReceiver{
			PrefixLength:          2,
			MaxLength:             3,
			OnString:              func(s []byte) { got = append(got, string(s)) },
			OnLengthLimitExceeded: func(n int) { exceeded = append(exceeded, n) },
		}
	}, func(t *testing.T, size int, p transports.Protocol, tr *transporttest.StringTransport) {
		require.Equal(t, []string{"abc"}, got, "size %d", size)
		require.Equal(t, []int{4}, exceeded, "size %d: reported once, later input ignored", size)
		require.False(t, tr.Disconnecting(), "the hook replaced the default")
	})

	// Default: lose the connection.
	r := basic.NewInt16Receiver(func([]byte) { t.Fatal("string") })
	r.MaxLength = 100
	tr := transporttest.NewStringTransport(nil)
	transporttest.Connect(r, tr)
	r.DataReceived([]byte{0xff, 0xff})
	require.True(t, tr.Disconnecting())
}

func TestIntNPauseResumeAndReentrant(t *testing.T) {
	var got []string
	r := basic.NewInt8Receiver(nil)
	r.OnString = func(s []byte) {
		got = append(got, string(s))
		switch string(s) {
		case "p":
			r.PauseProducing()
		case "r":
			r.DataReceived([]byte{1, 'z'})
		}
	}
	tr := transporttest.NewStringTransport(nil)
	transporttest.Connect(r, tr)
	r.DataReceived([]byte{1, 'p', 1, 'r', 1, 's'})
	require.Equal(t, []string{"p"}, got)
	require.True(t, tr.ReadingPaused())
	r.ResumeProducing()
	// Bytes fed from a callback queue behind everything already received.
	require.Equal(t, []string{"p", "r", "s", "z"}, got)
	r.DataReceived([]byte{1, 'x'})
	require.Equal(t, []string{"p", "r", "s", "z", "x"}, got)
	r.StopProducing()
	require.True(t, tr.Disconnecting())
}

func ExampleIntNReceiver() {
	tr := transporttest.NewStringTransport(nil)
	r := basic.NewInt16Receiver(nil)
	r.MaxLength = 1 << 16
	r.OnString = func(s []byte) { fmt.Printf("%q\n", s) }
	transporttest.Connect(r, tr)
	r.DataReceived([]byte{0, 5, 'h', 'e'})
	r.DataReceived([]byte{'l', 'l', 'o', 0, 0})
	_ = r.SendString([]byte("ok"))
	fmt.Printf("% x\n", tr.Value())
	// Output:
	// "hello"
	// ""
	// 00 02 6f 6b
}
