package http

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/protocols/internal/flowtest"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

var kib = []byte(strings.Repeat("x", 1024))

func kibHandler(w ResponseWriter, r *Request) { _, _ = w.Write(kib) }

const pipeReq = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"

// replyLen is the length of kibHandler's answer to pipeReq.
func replyLen(t testing.TB) int {
	tr, _, p := dial(t, HandlerFunc(kibHandler), Options{})
	p.DataReceived([]byte(pipeReq))
	return len(tr.Value())
}

// TestNonReadingClientPair: a client that pipelines requests answered with
// 1 KiB each and reads nothing cannot grow the server's write queue past the
// high watermark plus one output flush.
func TestNonReadingClientPair(t *testing.T) {
	wm := transports.Watermarks{High: 64 << 10, Low: 16 << 10}
	data := flowtest.Stream([]byte(pipeReq), 1<<20)
	n := len(data) / len(pipeReq)
	data = data[:n*len(pipeReq)]
	p := NewFactory(HandlerFunc(kibHandler), Options{}).BuildProtocol(nil)
	r := flowtest.Pair(t, p, wm, data, 64<<10)
	require.True(t, r.PausedAtStall)
	require.Less(t, r.Read, len(data))
	require.LessOrEqual(t, r.MaxQueued, wm.High+outFlush+2048)
	require.Equal(t, n*replyLen(t), r.Replies)
}

// TestNonReadingClientTCP: the same over loopback TCP on each backend.
func TestNonReadingClientTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("long pipeline over loopback")
	}
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		wm := transports.Watermarks{High: 64 << 10, Low: 16 << 10}
		data := flowtest.Stream([]byte(pipeReq), 2<<20)
		n := len(data) / len(pipeReq)
		data = data[:n*len(pipeReq)]
		r := flowtest.Socket(t, kind, NewFactory(HandlerFunc(kibHandler), Options{}), wm, data)
		t.Logf("read before stall %d of %d, max queued %d, pauses %d", r.Read, len(data), r.MaxQueued, r.Pauses)
		require.True(t, r.PausedAtStall, "reading paused while the client does not read")
		// Requests already read wait while the queue is full, so whatever
		// the transport hands over, one batch adds at most one flush.
		require.LessOrEqual(t, r.MaxQueued, wm.High+outFlush+2048)
		require.Equal(t, n*replyLen(t), r.Replies)
	})
}

// TestCloseWhilePausedReadsOn: a response that both fills the queue and
// closes the connection leaves reading on, so the lingering close drains what
// the client still sends instead of leaving it to a reset.
func TestCloseWhilePausedReadsOn(t *testing.T) {
	tr := transporttest.NewStringTransport(clock.NewFake())
	tr.CountWrites = true
	tr.Watermarks = transports.Watermarks{High: 100, Low: 10}
	flushing := func(w ResponseWriter, r *Request) {
		_, _ = w.Write(kib)
		_ = w.(Flusher).Flush()
	}
	p := NewFactory(HandlerFunc(flushing), Options{}).BuildProtocol(nil)
	transporttest.Connect(p, tr)
	tr.Receive([]byte(pipeReq + "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + pipeReq))
	require.True(t, tr.ReadingPaused())
	require.False(t, tr.WriteClosed())
	tr.SetPending(0)
	require.True(t, tr.WriteClosed(), "second response closes")
	require.False(t, tr.ReadingPaused(), "lingering reads on")
	prod, _ := tr.Producer()
	require.Nil(t, prod)
	require.Equal(t, 2, strings.Count(tr.String(), "HTTP/1.1 200 OK"))
}
