package resp

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/protocols/internal/flowtest"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

func TestProtocolErrors(t *testing.T) {
	small := Options{MaxBulkLen: 10, MaxArgs: 3, MaxInlineLen: 16, MaxQueryBuffer: 100}
	cases := []struct {
		name string
		opts Options
		in   string
		want string
	}{
		{"bad count", Options{}, "*abc\r\n", "invalid multibulk length"},
		{"plus count", Options{}, "*+1\r\n", "invalid multibulk length"},
		{"leading zero count", Options{}, "*01\r\n", "invalid multibulk length"},
		{"count too big", Options{}, "*1048577\r\n", "invalid multibulk length"},
		{"count over option", small, "*4\r\n", "invalid multibulk length"},
		{"count overflow", Options{}, "*99999999999999999999\r\n", "invalid multibulk length"},
		{"not a bulk", Options{}, "*1\r\nPING\r\n", "expected '$', got 'P'"},
		{"CR instead of bulk", Options{}, "*1\r\n\r\n", "expected '$', got ' '"},
		{"leading zero bulk", Options{}, "*1\r\n$01\r\n", "invalid bulk length"},
		{"double zero bulk", Options{}, "*1\r\n$00\r\n", "invalid bulk length"},
		{"count line over tiny limit", Options{MaxInlineLen: 2, MaxArgs: 100}, "*10\r\n", "too big mbulk count string"},
		{"negative bulk", Options{}, "*1\r\n$-1\r\n", "invalid bulk length"},
		{"bad bulk", Options{}, "*1\r\n$x\r\n", "invalid bulk length"},
		{"empty bulk length", Options{}, "*1\r\n$\r\n", "invalid bulk length"},
		{"bulk over option", small, "*1\r\n$11\r\n", "invalid bulk length"},
		{"bulk over default", Options{}, "*1\r\n$536870913\r\n", "invalid bulk length"},
		{"inline too long", small, strings.Repeat("a", 17), "too big inline request"},
		{"count line too long", small, "*" + strings.Repeat("1", 16), "too big mbulk count string"},
		{"bulk line too long", small, "*1\r\n$" + strings.Repeat("1", 16), "too big bulk count string"},
		{"query buffer", Options{MaxQueryBuffer: 100}, "*1\r\n$200\r\n" + strings.Repeat("x", 101), "query buffer limit exceeded"},
		{"query buffer, complete request", Options{MaxQueryBuffer: 100}, "*1\r\n$120\r\n" + strings.Repeat("x", 120) + "\r\n", "query buffer limit exceeded"},
		{"query buffer, inline", Options{MaxQueryBuffer: 15}, "ECHO 0123456789\r\n", "query buffer limit exceeded"},
		{"unbalanced quotes", Options{}, "ECHO \"abc\r\n", "unbalanced quotes in request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A good request before, one after: the first is answered, the
			// error ends the connection, the last is never run.
			in := mb("PING") + tc.in + mb("SET", "after", "1")
			want := "+PONG\r\n-ERR Protocol error: " + tc.want + "\r\n"
			for size := 0; size <= len(in); size++ {
				s := newServer(tc.opts)
				got := s.send(in, size)
				require.Equal(t, want, got, "chunk size %d", size)
				require.True(t, s.tr.Disconnecting(), "chunk size %d", size)
				require.Zero(t, s.f.Store().Len())
				// Nothing more is read.
				require.Empty(t, s.send(mb("PING"), 0))
				require.Nil(t, s.c.buf)
			}
		})
	}
}

func TestLimitsAllowExactSize(t *testing.T) {
	opts := Options{MaxBulkLen: 10, MaxArgs: 3, MaxInlineLen: 16}
	runScript(t, opts, []step{
		{in: mb("SET", "k", "0123456789") + mb("GET", "k"), want: ok + bulk("0123456789")},
		{in: "ECHO 0123456789\r\n", want: bulk("0123456789")},
	})
}

func TestPipelineOneWritePerBatch(t *testing.T) {
	s := newServer(Options{})
	in := strings.Repeat(mb("PING"), 16) + strings.Repeat("PING\r\n", 16) + mb("SET", "k", "v") + mb("GET", "k")
	got := s.send(in, 0)
	require.Equal(t, strings.Repeat("+PONG\r\n", 32)+ok+bulk("v"), got)
	require.Equal(t, 1, s.tr.Writes())

	// A partial request at the end waits; its reply goes out with the next batch.
	full := mb("PING") + mb("ECHO", "hello")
	s.send(full[:len(full)-3], 0)
	require.Equal(t, 2, s.tr.Writes())
	require.Equal(t, bulk("hello"), s.send(full[len(full)-3:], 0))
	require.Equal(t, 3, s.tr.Writes())
	require.Empty(t, s.c.buf)
}

func TestLargeBatchFlushesEarly(t *testing.T) {
	s := newServer(Options{})
	val := strings.Repeat("v", 1000)
	require.Equal(t, ok, s.send(mb("SET", "k", val), 0))
	n := 200 // 200 KB of replies: more than flushAt
	got := s.send(strings.Repeat(mb("GET", "k"), n), 0)
	require.Equal(t, strings.Repeat(bulk(val), n), got)
	require.Greater(t, s.tr.Writes(), 2)
	require.LessOrEqual(t, cap(s.c.out), keepOut)
}

func TestBigValueAndBufferRelease(t *testing.T) {
	s := newServer(Options{})
	val := strings.Repeat("x", 1<<20)
	in := mb("SET", "k", val)
	// Deliver in 64 KiB pieces, as a socket would.
	transporttest.FeedChunks(s.c, []byte(in), 64<<10)
	require.Equal(t, ok, s.tr.String())
	s.tr.Clear()
	require.Nil(t, s.c.buf, "the big receive buffer is released")
	require.Equal(t, bulk(val), s.send(mb("GET", "k"), 0))
	require.Nil(t, s.c.out, "the big reply buffer is released")
}

func TestExpirySweep(t *testing.T) {
	s := newServer(Options{})
	var in strings.Builder
	for i := range 100 {
		in.WriteString(mb("SET", "t"+itoa(i), "v", "PX", "10"))
		in.WriteString(mb("SET", "p"+itoa(i), "v"))
	}
	s.send(in.String(), 0)
	require.Equal(t, 200, s.f.Store().Len())
	require.Len(t, s.f.Store().volatile, 100)
	s.clk.Advance(time.Second)
	// Any request triggers the sweep; DBSIZE counts what is left, like Redis.
	require.Equal(t, "+PONG\r\n", s.send(mb("PING"), 0))
	require.Equal(t, num(100), s.send(mb("DBSIZE"), 0))
	require.Empty(t, s.f.Store().volatile)
	require.Zero(t, s.clk.Len(), "no timers are left behind")
}

func TestVolatileBookkeeping(t *testing.T) {
	s := newServer(Options{})
	st := s.f.Store()
	s.send(mb("SET", "a", "1", "EX", "100")+mb("SET", "b", "1", "EX", "100")+mb("SET", "c", "1", "EX", "100"), 0)
	require.Len(t, st.volatile, 3)
	s.send(mb("PERSIST", "a")+mb("SET", "b", "2")+mb("DEL", "c"), 0)
	require.Empty(t, st.volatile)
	s.send(mb("SET", "a", "1", "EX", "100")+mb("EXPIRE", "a", "200")+mb("FLUSHALL"), 0)
	require.Empty(t, st.volatile)
	require.Zero(t, st.Len())
}

func TestKeysSkipsExpired(t *testing.T) {
	s := newServer(Options{})
	s.send(mb("SET", "a", "1", "PX", "5")+mb("SET", "b", "1"), 0)
	s.clk.Jump(10 * time.Millisecond)
	require.Equal(t, arr(bulk("b")), s.send(mb("KEYS", "*"), 0))
}

func TestSetReusesValueStorage(t *testing.T) {
	s := newServer(Options{})
	s.send(mb("SET", "k", "0123456789"), 0)
	e := s.f.Store().m["k"]
	p := &e.val[:1][0]
	s.send(mb("SET", "k", "abcdefghij")+mb("SET", "k", "xyz"), 0)
	require.Same(t, e, s.f.Store().m["k"])
	require.Same(t, p, &e.val[:1][0])
	require.Equal(t, "xyz", string(e.val))
	// A much smaller value does not keep a huge buffer alive.
	s.send(mb("SET", "k", strings.Repeat("x", 4096))+mb("SET", "k", "y"), 0)
	require.LessOrEqual(t, cap(s.f.Store().m["k"].val), 64)
}

// TestBackpressure: by default a connection is its transport's streaming
// producer, and reading pauses while the write queue is full.
func TestBackpressure(t *testing.T) {
	s := newServer(Options{})
	p, streaming := s.tr.Producer()
	require.NotNil(t, p)
	require.True(t, streaming)
	s.tr.SetPending(1 << 20)
	require.True(t, s.tr.ReadingPaused())
	s.tr.Receive([]byte(mb("PING")))
	require.Empty(t, s.tr.String(), "held while paused")
	s.tr.SetPending(0)
	require.False(t, s.tr.ReadingPaused())
	require.Equal(t, "+PONG\r\n", s.tr.String())

	off := newServer(Options{DisableBackpressure: true})
	p, _ = off.tr.Producer()
	require.Nil(t, p)
	off.tr.SetPending(1 << 20)
	require.False(t, off.tr.ReadingPaused())
}

// TestBackpressureMidBatch: pipelined requests already read stop at a
// request boundary once the replies fill the queue, and run when it drains:
// one batch of reads cannot queue more than the high watermark plus one
// early flush.
func TestBackpressureMidBatch(t *testing.T) {
	s := newServer(Options{})
	s.tr.CountWrites = true
	s.tr.Watermarks = transports.Watermarks{High: 10 << 10, Low: 1 << 10}
	val := strings.Repeat("v", 1000)
	s.tr.Receive([]byte(mb("SET", "k", val)))
	const n = 300
	s.tr.Receive([]byte(strings.Repeat(mb("GET", "k"), n) + mb("PING")))
	require.True(t, s.tr.ReadingPaused())
	require.LessOrEqual(t, s.tr.Pending(), 10<<10+flushAt+len(bulk(val)))
	s.tr.Receive([]byte(mb("ECHO", "late")))
	rounds := 0
	for s.tr.ReadingPaused() && rounds < 100 {
		rounds++
		s.tr.SetPending(0)
		require.LessOrEqual(t, s.tr.Pending(), 10<<10+flushAt+len(bulk(val)))
	}
	require.Greater(t, rounds, 1)
	require.Equal(t, ok+strings.Repeat(bulk(val), n)+"+PONG\r\n"+bulk("late"), s.tr.String())
}

func respNonReadingStream(total int) (data []byte, replies int) {
	val := strings.Repeat("v", 1024)
	get := []byte(mb("GET", "k"))
	n := total / len(get)
	data = append([]byte(mb("SET", "k", val)), flowtest.Stream(get, n*len(get))...)
	return data, len(ok) + n*len(bulk(val))
}

// TestNonReadingClientPair: a client that pipelines GETs of a 1 KiB value
// and reads nothing cannot grow the server's write queue past the high
// watermark plus one early flush.
func TestNonReadingClientPair(t *testing.T) {
	wm := transports.Watermarks{High: 64 << 10, Low: 16 << 10}
	data, replies := respNonReadingStream(1 << 20)
	r := flowtest.Pair(t, NewFactory(nil, Options{}).BuildProtocol(nil), wm, data, 64<<10)
	require.True(t, r.PausedAtStall)
	require.Less(t, r.Read, len(data))
	require.LessOrEqual(t, r.MaxQueued, wm.High+flushAt+2048)
	require.Equal(t, replies, r.Replies)
}

// TestNonReadingClientTCP: the same over loopback TCP on each backend.
func TestNonReadingClientTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("long pipeline over loopback")
	}
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		wm := transports.Watermarks{High: 64 << 10, Low: 16 << 10}
		data, replies := respNonReadingStream(2 << 20)
		r := flowtest.Socket(t, kind, NewFactory(nil, Options{}), wm, data)
		t.Logf("read before stall %d of %d, max queued %d, pauses %d", r.Read, len(data), r.MaxQueued, r.Pauses)
		require.True(t, r.PausedAtStall, "reading paused while the client does not read")
		// Requests already read wait while the queue is full, so whatever
		// the transport hands over, one batch adds at most an early flush.
		require.LessOrEqual(t, r.MaxQueued, wm.High+flushAt+2048)
		require.Equal(t, replies, r.Replies)
	})
}

func TestConnectionLost(t *testing.T) {
	s := newServer(Options{})
	require.Equal(t, int64(1), s.f.clients.Load())
	s.send(mb("SET", "k")[:8], 0)
	s.tr.EndConnection(nil)
	require.Equal(t, int64(0), s.f.clients.Load())
	s.c.DataReceived([]byte(mb("PING"))) // ignored, never panics
	require.Empty(t, s.tr.String())
}

func TestWriteErrorIsIgnored(t *testing.T) {
	s := newServer(Options{})
	s.tr.WriteErr = transports.ErrClosed
	require.Empty(t, s.send(mb("SET", "k", "v"), 0))
	s.tr.WriteErr = nil
	require.Equal(t, bulk("v"), s.send(mb("GET", "k"), 0))
}

func TestInfoAndCommandList(t *testing.T) {
	s := newServer(Options{})
	s.send(mb("SET", "k", "v", "EX", "10"), 0)
	info := s.send(mb("INFO"), 0)
	require.Contains(t, info, "redis_version:"+Version)
	require.Contains(t, info, "connected_clients:1")
	require.Contains(t, info, "db0:keys=1,expires=1")

	all := s.send(mb("COMMAND"), 0)
	require.True(t, strings.HasPrefix(all, "*"+itoa(len(commandNames))+"\r\n*10\r\n$6\r\nappend\r\n"), all[:40])
	require.Equal(t, all, s.send(mb("COMMAND", "INFO"), 0))
	docs := s.send(mb("COMMAND", "DOCS"), 0)
	require.True(t, strings.HasPrefix(docs, "*"+itoa(2*len(commandNames))+"\r\n$6\r\nappend\r\n*6\r\n"))
	list := s.send(mb("COMMAND", "LIST"), 0)
	require.Contains(t, list, bulk("set"))
	hello := s.send(mb("HELLO", "2", "SETNAME", "me"), 0)
	require.True(t, strings.HasPrefix(hello, "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n"))
	require.Equal(t, bulk("me"), s.send(mb("CLIENT", "GETNAME"), 0))
	require.Equal(t, arr(bulk("databases"), bulk("1")), s.send(mb("CONFIG", "GET", "databases"), 0))
}

func TestConfigOption(t *testing.T) {
	s := newServer(Options{Config: map[string]string{"maxmemory": "1gb", "extra": "x"}})
	require.Equal(t, arr(bulk("extra"), bulk("x"), bulk("maxmemory"), bulk("1gb")),
		s.send(mb("CONFIG", "GET", "maxmemory", "ex*"), 0))
}

// TestSharedStore runs two connections on two goroutines (two "loops") over
// one shared store; run with -race.
func TestSharedStore(t *testing.T) {
	st := NewSharedStore()
	const n = 500
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := NewFactory(st, Options{})
			tr := transporttest.NewStringTransport(clock.NewFake())
			c := f.BuildProtocol(nil)
			transporttest.Connect(c, tr)
			for range n {
				c.DataReceived([]byte(mb("INCR", "n") + mb("SET", "k", "v", "PX", "1")))
			}
		}()
	}
	wg.Wait()
	s := newServer(Options{})
	s.f.store = st
	s.c.s = st
	require.Equal(t, bulk(itoa(2*n)), s.send(mb("GET", "n"), 0))
	require.Equal(t, 2, st.Len())
}

func TestNilStoreAndClock(t *testing.T) {
	f := NewFactory(nil, Options{})
	require.NotNil(t, f.Store())
	tr := &nilClock{transporttest.NewStringTransport(nil)}
	c := f.BuildProtocol(nil)
	transporttest.Connect(c, tr)
	c.DataReceived([]byte(mb("SET", "k", "v", "EX", "100") + mb("TTL", "k")))
	require.Equal(t, ok+num(100), tr.String())
}

type nilClock struct{ *transporttest.StringTransport }

func (nilClock) Clock() transports.Clock { return nil }
