package echo_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

func TestEchoEveryChunking(t *testing.T) {
	in := []byte("hello\r\n\x00\xffworld, echo me back")
	for size := 1; size <= len(in); size++ {
		p := echo.Factory{}.BuildProtocol(nil)
		tr := transporttest.NewStringTransport(nil)
		transporttest.Connect(p, tr)
		transporttest.FeedChunks(p, in, size)
		require.Equal(t, in, tr.Value(), "size %d", size)
		tr.EndConnection(nil)
		p.DataReceived([]byte("after")) // ignored, no panic
		require.Equal(t, in, tr.Value())
	}
}

func TestEchoWriteErrorAborts(t *testing.T) {
	p := &echo.Echo{}
	tr := transporttest.NewStringTransport(nil)
	tr.WriteErr = errors.New("boom")
	transporttest.Connect(p, tr)
	p.DataReceived([]byte("x"))
	require.True(t, tr.Aborted())
}

func TestEchoAllocs(t *testing.T) {
	p := &echo.Echo{}
	p.ConnectionMade(nopTransport{})
	data := make([]byte, 512)
	require.Zero(t, testing.AllocsPerRun(100, func() { p.DataReceived(data) }))
}

type nopTransport struct{ transports.Transport }

func (nopTransport) Write([]byte) error { return nil }

func BenchmarkEcho(b *testing.B) {
	p := &echo.Echo{}
	p.ConnectionMade(nopTransport{})
	data := make([]byte, 512)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		p.DataReceived(data)
	}
}

func Example() {
	tr := transporttest.NewStringTransport(nil)
	p := echo.Factory{}.BuildProtocol(tr.RemoteAddr())
	transporttest.Connect(p, tr)
	p.DataReceived([]byte("ping"))
	fmt.Println(tr.String())
	// Output: ping
}
