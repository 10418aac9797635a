package echo_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/protocols/internal/flowtest"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
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

func (nopTransport) Write([]byte) error                               { return nil }
func (nopTransport) RegisterProducer(transports.Producer, bool) error { return nil }

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

// TestEchoPausesWhileQueueFull: reading pauses while the write queue is above
// the high watermark and resumes at the low one; what arrived meanwhile is
// echoed after.
func TestEchoPausesWhileQueueFull(t *testing.T) {
	tr := transporttest.NewStringTransport(nil)
	tr.CountWrites = true
	tr.Watermarks = transports.Watermarks{High: 1000, Low: 100}
	p := transporttest.Connect(echo.Factory{}.BuildProtocol(nil), tr)
	chunk := make([]byte, 600)
	tr.Receive(chunk)
	require.False(t, tr.ReadingPaused())
	tr.Receive(chunk)
	require.True(t, tr.ReadingPaused(), "1200 queued > high 1000")
	tr.Receive([]byte("held"))
	require.Len(t, tr.Value(), 1200, "nothing read while paused")
	tr.Drain(1000) // 200 left: above low, still paused
	require.True(t, tr.ReadingPaused())
	tr.Drain(100) // at low: resumed, the held bytes are echoed
	require.False(t, tr.ReadingPaused())
	require.Equal(t, "held", string(tr.Value()[1200:]))
	tr.EndConnection(nil)
	p.DataReceived([]byte("x"))
}

// TestEchoNonReadingClientPair: a client that sends 4 MiB and reads nothing
// cannot make the server queue more than the high watermark plus a chunk.
func TestEchoNonReadingClientPair(t *testing.T) {
	wm := transports.Watermarks{High: 64 << 10, Low: 16 << 10}
	data := flowtest.Stream([]byte("0123456789abcdef"), 4<<20)
	r := flowtest.Pair(t, &echo.Echo{}, wm, data, 4096)
	require.True(t, r.PausedAtStall)
	require.LessOrEqual(t, r.MaxQueued, wm.High+4096)
	require.Less(t, r.Read, len(data))
	require.Equal(t, len(data), r.Replies, "everything is echoed once the client reads")
}

// TestEchoNonReadingClientTCP: the same over loopback TCP on each backend,
// with 64 MiB sent.
func TestEchoNonReadingClientTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB over loopback")
	}
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		wm := transports.Watermarks{High: 64 << 10, Low: 16 << 10}
		data := flowtest.Stream([]byte("0123456789abcdef"), 64<<20)
		r := flowtest.Socket(t, kind, echo.Factory{}, wm, data)
		t.Logf("read before stall %d, max queued %d, pauses %d, resumes %d", r.Read, r.MaxQueued, r.Pauses, r.Resumes)
		require.True(t, r.PausedAtStall, "reading paused while the client does not read")
		require.Less(t, r.Read, len(data))
		require.LessOrEqual(t, r.MaxQueued, wm.High+flowtest.RecvPool)
		require.GreaterOrEqual(t, r.Resumes, 1)
		require.Equal(t, len(data), r.Replies)
	})
}

// keepingTransport can keep received bytes (transports.BufferKeeper) and
// send owned buffers; it records which path each write took.
type keepingTransport struct {
	nopTransport
	canKeep       bool
	kept, owned   int
	copied        int
	releasedCount int
	dones         []func(error)
}

func (k *keepingTransport) Write(p []byte) error { k.copied += len(p); return nil }
func (k *keepingTransport) KeepReceived() (func(error), bool) {
	if !k.canKeep {
		return nil, false
	}
	k.kept++
	return func(error) { k.releasedCount++ }, true
}
func (k *keepingTransport) WriteOwned(p []byte, done func(error)) error {
	k.owned += len(p)
	k.dones = append(k.dones, done)
	return nil
}

// From ForwardMin bytes on, Echo forwards the received buffer with no copy
// where the transport can keep it, and releases it once sent; smaller
// chunks, and a transport that refuses to keep, are copied.
func TestEchoForwardsLargeChunksWithoutCopy(t *testing.T) {
	k := &keepingTransport{canKeep: true}
	p := &echo.Echo{}
	p.ConnectionMade(k)
	p.DataReceived(make([]byte, echo.ForwardMin-1))
	require.Equal(t, echo.ForwardMin-1, k.copied)
	require.Zero(t, k.kept)
	p.DataReceived(make([]byte, 64<<10))
	require.Equal(t, 1, k.kept)
	require.Equal(t, 64<<10, k.owned)
	require.Equal(t, echo.ForwardMin-1, k.copied, "not copied")
	require.Zero(t, k.releasedCount, "held until sent")
	k.dones[0](nil)
	require.Equal(t, 1, k.releasedCount)

	k.canKeep = false
	p.DataReceived(make([]byte, 64<<10))
	require.Equal(t, echo.ForwardMin-1+64<<10, k.copied, "refused: copied")
}
