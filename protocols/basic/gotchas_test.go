package basic_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/protocols/basic"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// panicErr runs f and returns the error it panicked with (nil if none).
func panicErr(t *testing.T, f func()) (err error) {
	t.Helper()
	defer func() {
		if v := recover(); v != nil {
			var ok bool
			err, ok = v.(error)
			require.True(t, ok, "panic value %v is not an error", v)
		}
	}()
	f()
	return nil
}

// TestNilCallbackFails: a complete frame for a nil callback is a clear
// failure naming the field (ErrNoHandler), never a silent drop; bytes that do
// not complete a frame are no failure.
func TestNilCallbackFails(t *testing.T) {
	cases := []struct {
		name, field string
		p           transports.Protocol
		partial     []byte
		frame       []byte
	}{
		{"LineReceiver", "LineReceiver.OnLine", &basic.LineReceiver{}, []byte("abc"), []byte("\r\n")},
		{"LineOnlyReceiver", "LineOnlyReceiver.OnLine", &basic.LineOnlyReceiver{}, []byte("abc\r"), []byte("\n")},
		{"NetstringReceiver", "NetstringReceiver.OnString", &basic.NetstringReceiver{}, []byte("3:ab"), []byte("c,")},
		{"IntNReceiver", "IntNReceiver.OnString", basic.NewInt8Receiver(nil), []byte{2, 'a'}, []byte{'b'}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			transporttest.Connect(tc.p, transporttest.NewStringTransport(nil))
			require.NoError(t, panicErr(t, func() { tc.p.DataReceived(tc.partial) }))
			err := panicErr(t, func() { tc.p.DataReceived(tc.frame) })
			require.ErrorIs(t, err, basic.ErrNoHandler)
			require.Contains(t, err.Error(), tc.field)
		})
	}

	t.Run("RawMode", func(t *testing.T) {
		r := &basic.LineReceiver{OnLine: func([]byte) {}}
		transporttest.Connect(r, transporttest.NewStringTransport(nil))
		r.DataReceived([]byte("line\r\n"))
		r.SetRawMode()
		err := panicErr(t, func() { r.DataReceived([]byte("raw")) })
		require.ErrorIs(t, err, basic.ErrNoHandler)
		require.Contains(t, err.Error(), "LineReceiver.OnRawData")
	})
}

// forgetful embeds a LineReceiver and defines ConnectionMade without calling
// the embedded one.
type forgetful struct {
	basic.LineReceiver
	sendErr error
}

func (f *forgetful) ConnectionMade(transports.Transport) { f.sendErr = f.SendLine([]byte("hi")) }

// TestSendWithoutConnectionMadeSaysWhy: a send before the framer's
// ConnectionMade ran returns an error matching ErrNotConnected whose text
// names the forgotten call; after ConnectionLost it is the plain sentinel.
func TestSendWithoutConnectionMadeSaysWhy(t *testing.T) {
	f := &forgetful{}
	f.OnLine = func([]byte) {}
	tr := transporttest.NewStringTransport(nil)
	transporttest.Connect(f, tr)
	require.ErrorIs(t, f.sendErr, transports.ErrNotConnected)
	require.Contains(t, f.sendErr.Error(), "did you forget to call LineReceiver.ConnectionMade from your ConnectionMade?")

	for name, send := range map[string]func() error{
		"LineOnlyReceiver":  func() error { return (&basic.LineOnlyReceiver{}).SendLine(nil) },
		"NetstringReceiver": func() error { return (&basic.NetstringReceiver{}).SendString(nil) },
		"IntNReceiver":      func() error { return basic.NewInt32Receiver(nil).SendString(nil) },
	} {
		err := send()
		require.ErrorIs(t, err, transports.ErrNotConnected, name)
		require.Contains(t, err.Error(), "did you forget to call "+name+".ConnectionMade", name)
	}

	r := &basic.LineReceiver{OnLine: func([]byte) {}}
	transporttest.Connect(r, transporttest.NewStringTransport(nil))
	require.NoError(t, r.SendLine([]byte("x")))
	r.ConnectionLost(transports.ErrConnectionDone)
	err := r.SendLine([]byte("x"))
	require.True(t, errors.Is(err, transports.ErrNotConnected))
	require.NotContains(t, err.Error(), "forget")
}
