package basic_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/protocols/basic"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

func TestNetstringRoundTrip(t *testing.T) {
	strs := []string{"hello", "", "a,b:c", strings.Repeat("x", 100), "0:,", "\x00\xff"}
	sender := &basic.NetstringReceiver{}
	out := transporttest.NewStringTransport(nil)
	transporttest.Connect(sender, out)
	for _, s := range strs {
		require.NoError(t, sender.SendString([]byte(s)))
	}
	require.True(t, strings.HasPrefix(out.String(), "5:hello,0:,5:a,b:c,100:"))
	var got []string
	eachChunking(t, out.Value(), func() transports.Protocol {
		got = nil
		return &basic.NetstringReceiver{OnString: func(s []byte) { got = append(got, string(s)) }}
	}, func(t *testing.T, size int, p transports.Protocol, tr *transporttest.StringTransport) {
		require.Equal(t, strs, got, "size %d", size)
		require.NoError(t, p.(*basic.NetstringReceiver).Err())
		require.False(t, tr.Disconnecting())
	})
}

func TestNetstringBroken(t *testing.T) {
	cases := []struct {
		in      string
		good    []string
		wantErr error
	}{
		{"3:abc,x", []string{"abc"}, basic.ErrBadNetstring},
		{":abc,", nil, basic.ErrBadNetstring},
		{"01:a,", nil, basic.ErrBadNetstring},
		{"00:,", nil, basic.ErrBadNetstring},
		{"3:abcd", nil, basic.ErrBadNetstring},
		{"-1:a,", nil, basic.ErrBadNetstring},
		{"1:a,2 :ab,", []string{"a"}, basic.ErrBadNetstring},
		{"100000:", nil, basic.ErrFrameTooLarge},
		{"9999999999999999999999999:", nil, basic.ErrFrameTooLarge},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%q", tc.in), func(t *testing.T) {
			var got []string
			eachChunking(t, []byte(tc.in), func() transports.Protocol {
				got = nil
				return &basic.NetstringReceiver{OnString: func(s []byte) { got = append(got, string(s)) }}
			}, func(t *testing.T, size int, p transports.Protocol, tr *transporttest.StringTransport) {
				require.Equal(t, tc.good, got, "size %d", size)
				require.ErrorIs(t, p.(*basic.NetstringReceiver).Err(), tc.wantErr, "size %d", size)
				require.True(t, tr.Disconnecting(), "size %d", size)
			})
		})
	}
}

func TestNetstringTooLongCaughtBeforePayload(t *testing.T) {
	r := &basic.NetstringReceiver{MaxLength: 10, OnString: func([]byte) {}}
	tr := transporttest.NewStringTransport(nil)
	transporttest.Connect(r, tr)
	r.DataReceived([]byte("10:0123456789,"))
	require.NoError(t, r.Err())
	r.DataReceived([]byte("11"))
	require.ErrorIs(t, r.Err(), basic.ErrFrameTooLarge)
	require.ErrorIs(t, r.Err(), transports.ErrFrameTooLarge)
	require.True(t, tr.Disconnecting())
}

func TestNetstringIncompleteIsNotAnError(t *testing.T) {
	for _, in := range []string{"0", "12", "12:", "3:ab", "3:abc"} {
		r := &basic.NetstringReceiver{OnString: func([]byte) { t.Fatal("string") }}
		tr := transporttest.NewStringTransport(nil)
		transporttest.Connect(r, tr)
		r.DataReceived([]byte(in))
		require.NoError(t, r.Err(), in)
		require.False(t, tr.Disconnecting(), in)
	}
}

func TestNetstringPauseResume(t *testing.T) {
	var got []string
	r := &basic.NetstringReceiver{}
	r.OnString = func(s []byte) {
		got = append(got, string(s))
		r.PauseProducing()
	}
	tr := transporttest.NewStringTransport(nil)
	transporttest.Connect(r, tr)
	r.DataReceived([]byte("1:a,1:b,1:c,"))
	require.Equal(t, []string{"a"}, got)
	r.ResumeProducing()
	require.Equal(t, []string{"a", "b"}, got)
	r.ResumeProducing()
	r.ResumeProducing()
	require.Equal(t, []string{"a", "b", "c"}, got)
	require.ErrorIs(t, (&basic.NetstringReceiver{}).SendString(nil), transports.ErrNotConnected)
}

func ExampleNetstringReceiver() {
	tr := transporttest.NewStringTransport(nil)
	r := &basic.NetstringReceiver{}
	r.OnString = func(s []byte) { _ = r.SendString([]byte("got " + string(s))) }
	transporttest.Connect(r, tr)
	r.DataReceived([]byte("5:hello,3:a"))
	r.DataReceived([]byte("bc,"))
	fmt.Println(tr.String())
	// Output: 9:got hello,7:got abc,
}
