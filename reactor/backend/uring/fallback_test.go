package uring_test

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
	uringbe "github.com/gyre-io/gyre/reactor/backend/uring"
	ring "github.com/gyre-io/gyre/uring"
)

// open builds a backend for a direct test, locked to the test's OS thread,
// closed (and checked drained) at cleanup.
func open(t testing.TB, cfg backend.Config, o uringbe.Options) *uringbe.Backend {
	t.Helper()
	runtime.LockOSThread()
	before := countFds(t)
	b, err := uringbe.NewWithOptions(cfg, o)
	if errors.Is(err, ring.ErrUnavailable) {
		runtime.UnlockOSThread()
		t.Skipf("io_uring unavailable: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { // runs after the cleanups of descriptors opened later
		_ = b.Close() // ErrClosed if the test closed it
		runtime.UnlockOSThread()
		if !t.Failed() {
			require.Equal(t, before, countFds(t), "descriptor leak")
		}
	})
	return b
}

func countFds(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// collect waits until pred says done, gathering completions by token.
type collector struct {
	t   *testing.T
	b   *uringbe.Backend
	out []backend.Completion
	got map[backend.Token][]backend.Completion
}

func newCollector(t *testing.T, b *uringbe.Backend, outLen int) *collector {
	return &collector{t: t, b: b, out: make([]backend.Completion, outLen), got: map[backend.Token][]backend.Completion{}}
}

func (c *collector) until(done func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !done() {
		require.True(c.t, time.Now().Before(deadline), "timed out")
		n, err := c.b.Wait(c.out, 100*time.Millisecond)
		require.NoError(c.t, err)
		for _, comp := range c.out[:n] {
			list := c.got[comp.Token]
			if len(list) > 0 {
				require.True(c.t, list[len(list)-1].More(), "completion after the final one")
			}
			if comp.Flags&backend.FlagBuffer != 0 {
				comp.Buf = append([]byte(nil), comp.Buf...)
				c.b.ReleaseBuffer(comp.BufID)
			}
			c.got[comp.Token] = append(list, comp)
		}
	}
}

func (c *collector) final(tok backend.Token) (backend.Completion, bool) {
	list := c.got[tok]
	if len(list) == 0 || list[len(list)-1].More() {
		return backend.Completion{}, false
	}
	return list[len(list)-1], true
}

func (c *collector) finals(toks ...backend.Token) func() bool {
	return func() bool {
		for _, tok := range toks {
			if _, ok := c.final(tok); !ok {
				return false
			}
		}
		return true
	}
}

func socketpair(t *testing.T) (int, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// A zero-copy send on a socket that cannot do it (AF_UNIX: EOPNOTSUPP) is
// redone as a copying send with a synthetic notification, like the emulation.
func TestSendZCOnUnixSocketFallsBack(t *testing.T) {
	b := open(t, backend.Config{}, uringbe.Options{})
	if !b.Features().SendZC {
		t.Skip("kernel lacks send_zc")
	}
	a, p := socketpair(t)
	c := newCollector(t, b, 8)
	data := []byte("zero copy over a unix socket")
	op := &backend.Op{Kind: backend.KindSendZC, Token: backend.MakeToken(1, 1), Fd: int32(a), Buf: data}
	require.NoError(t, b.Submit(op))
	c.until(c.finals(op.Token))
	list := c.got[op.Token]
	require.Len(t, list, 2)
	require.Equal(t, int32(len(data)), list[0].Res)
	require.True(t, list[0].More())
	require.NotZero(t, list[1].Flags&backend.FlagNotif)
	buf := make([]byte, 64)
	n, err := unix.Read(p, buf)
	require.NoError(t, err)
	require.Equal(t, data, buf[:n])
	require.Zero(t, b.Tracked())
}

// A ring far smaller than the burst: Submit hands full queues to the kernel
// and parks the rest; nothing is lost, and a completion queue that overflows
// loses nothing either.
func TestTinyRingBurst(t *testing.T) {
	b := open(t, backend.Config{Entries: 4, CQEntries: 8}, uringbe.Options{})
	c := newCollector(t, b, 3)
	const n = 2000
	ops := make([]backend.Op, n)
	toks := make([]backend.Token, n)
	for i := range ops {
		ops[i] = backend.Op{Kind: backend.KindNop, Token: backend.MakeToken(uint32(i), 7)}
		require.NoError(t, b.Submit(&ops[i]))
		toks[i] = ops[i].Token
	}
	c.until(c.finals(toks...))
	for _, tok := range toks {
		require.Len(t, c.got[tok], 1)
	}
	require.Zero(t, b.Inflight())
}

// Cancelling an emulated multishot accept while connections keep arriving
// ends it: the re-arm never outlives the cancel.
func TestEmulatedMultishotCancelRace(t *testing.T) {
	b := open(t, backend.Config{}, uringbe.Options{NoMultishot: true})
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(ln)
	require.NoError(t, unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, unix.Listen(ln, 128))
	sa, err := unix.Getsockname(ln)
	require.NoError(t, err)
	var clients []int
	defer func() {
		for _, fd := range clients {
			unix.Close(fd)
		}
	}()
	for i := 0; i < 20; i++ {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		clients = append(clients, fd)
		err = unix.Connect(fd, sa)
		if err != nil {
			require.ErrorIs(t, err, unix.EINPROGRESS)
		}
	}
	c := newCollector(t, b, 64)
	acc := &backend.Op{Kind: backend.KindAccept, Token: backend.MakeToken(1, 1), Fd: int32(ln), Multishot: true}
	cancel := &backend.Op{Kind: backend.KindCancel, Token: backend.MakeToken(2, 1), Target: acc.Token}
	require.NoError(t, b.Submit(acc))
	n, err := b.Wait(c.out[:1], time.Second) // some accepts done, re-armed
	require.NoError(t, err)
	require.Equal(t, 1, n)
	c.got[acc.Token] = append(c.got[acc.Token], c.out[0])
	require.NoError(t, b.Submit(cancel))
	c.until(c.finals(acc.Token, cancel.Token))
	for _, comp := range c.got[acc.Token] {
		if comp.Res >= 0 {
			unix.Close(int(comp.Res))
		}
	}
	require.Zero(t, b.Inflight())
	require.Zero(t, b.Tracked())
}

// Wake from many goroutines while the owner waits: every Wait returns, no
// wake-up is lost, and Wake after Close reports ErrClosed.
func TestWakeConcurrent(t *testing.T) {
	b := open(t, backend.Config{}, uringbe.Options{})
	out := make([]backend.Completion, 4)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := b.Wake(); err != nil {
					t.Errorf("Wake: %v", err)
					return
				}
				runtime.Gosched()
			}
		}()
	}
	for i := 0; i < 500; i++ {
		_, err := b.Wait(out, 5*time.Second)
		require.NoError(t, err)
	}
	close(stop)
	wg.Wait()
	// A final Wake from another goroutine unblocks an unbounded Wait, and one
	// with a timeout too large for deadline arithmetic.
	for _, timeout := range []time.Duration{-1, math.MaxInt64} {
		go func() { _ = b.Wake() }()
		_, err := b.Wait(out, timeout)
		require.NoError(t, err)
	}
	require.NoError(t, b.Close())
	require.ErrorIs(t, b.Wake(), backend.ErrClosed)
}

func TestSubmitRejects(t *testing.T) {
	b := open(t, backend.Config{}, uringbe.Options{})
	for _, op := range []*backend.Op{
		{Kind: backend.KindNop, Token: backend.MakeToken(0xffffffff, 0)},
		{Kind: backend.KindCancel, Token: backend.MakeToken(1, 1), Target: backend.MakeToken(0xfffffffe, 0)},
		{Kind: backend.KindSend, Token: backend.MakeToken(1, 1), Multishot: true},
		{Kind: backend.KindRecv, Token: backend.MakeToken(1, 1), Multishot: true},
		{Kind: backend.KindConnect, Token: backend.MakeToken(1, 1)},
		{Kind: backend.Kind(99), Token: backend.MakeToken(1, 1)},
	} {
		require.ErrorIs(t, b.Submit(op), backend.ErrUnsupported, "%v", op.Kind)
	}
	require.ErrorIs(t, b.Submit(nil), backend.ErrUnsupported)
	require.Zero(t, b.Inflight())
	// Generation 0 with an ordinary slot is the loop's business, not reserved.
	ok := &backend.Op{Kind: backend.KindNop, Token: backend.MakeToken(3, 0)}
	require.NoError(t, b.Submit(ok))
	c := newCollector(t, b, 4)
	c.until(c.finals(ok.Token))
}

func TestConfigErrors(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_, err := uringbe.New(backend.Config{BufferCount: 3})
	require.ErrorIs(t, err, backend.ErrUnsupported)
	_, err = uringbe.New(backend.Config{BufferCount: 65536})
	require.ErrorIs(t, err, backend.ErrUnsupported)
}

// Close with a parked pool-mode recv and buffers held drains everything.
func TestCloseDrains(t *testing.T) {
	for _, o := range []uringbe.Options{{}, {NoMultishot: true, NoBufRing: true, NoSendZC: true}} {
		b := open(t, backend.Config{BufferCount: 4, BufferSize: 64}, o)
		_, p := socketpair(t)
		var pipe [2]int
		require.NoError(t, unix.Pipe2(pipe[:], unix.O_CLOEXEC)) // blocking: the read runs in io-wq
		t.Cleanup(func() { unix.Close(pipe[0]); unix.Close(pipe[1]) })
		ops := []*backend.Op{
			{Kind: backend.KindRecv, Token: backend.MakeToken(1, 1), Fd: int32(p), BufferSelect: true, Multishot: true},
			{Kind: backend.KindRecv, Token: backend.MakeToken(2, 1), Fd: int32(p), BufferSelect: true},
			{Kind: backend.KindTimeout, Token: backend.MakeToken(3, 1), Timeout: time.Hour},
			{Kind: backend.KindRead, Token: backend.MakeToken(4, 1), Fd: int32(pipe[0]), Buf: make([]byte, 8)},
		}
		for _, op := range ops {
			require.NoError(t, b.Submit(op))
		}
		n, err := b.Wait(make([]backend.Completion, 4), 0)
		require.NoError(t, err)
		require.Zero(t, n)
		start := time.Now()
		require.NoError(t, b.Close())
		t.Logf("Close with %d ops in flight: %v", len(ops), time.Since(start))
		require.Zero(t, b.Inflight(), "Close gave up before every op ended")
		require.ErrorIs(t, b.Close(), backend.ErrClosed)
	}
}

// In pool mode idle receives hold no buffer: more parked multishot receives
// than buffers neither fail nor starve, and data reaches the right one.
func TestPoolIdleReceivesHoldNoBuffer(t *testing.T) {
	b := open(t, backend.Config{BufferCount: 2, BufferSize: 64}, uringbe.Options{NoMultishot: true, NoBufRing: true})
	require.False(t, b.Features().ProvidedBuffers)
	const n = 6
	var writers [n]int
	ops := make([]backend.Op, n)
	for i := range ops {
		w, r := socketpair(t)
		writers[i] = w
		ops[i] = backend.Op{Kind: backend.KindRecv, Token: backend.MakeToken(uint32(i), 1), Fd: int32(r), BufferSelect: true, Multishot: true}
		require.NoError(t, b.Submit(&ops[i]))
	}
	c := newCollector(t, b, 8)
	got, err := b.Wait(c.out, 0)
	require.NoError(t, err)
	require.Zero(t, got, "idle receives completed (ENOBUFS?)")
	for round := 0; round < 3; round++ {
		for i := range writers { // one at a time: two in one batch may find the pool empty
			_, err := unix.Write(writers[i], []byte{byte('a' + i), byte(round)})
			require.NoError(t, err)
			c.until(func() bool { return len(c.got[ops[i].Token]) > round })
		}
	}
	for i := range ops {
		list := c.got[ops[i].Token]
		require.Len(t, list, 3, "op %d", i)
		for round, comp := range list {
			require.True(t, comp.More())
			require.Equal(t, []byte{byte('a' + i), byte(round)}, comp.Buf)
		}
	}
}

// Releasing a buffer twice must not hand it to the kernel twice: the second
// release is ignored, so two receives never share a buffer.
func TestDoubleReleaseIgnored(t *testing.T) {
	for _, o := range []uringbe.Options{{NoBufInc: true}, {NoBufRing: true, NoMultishot: true}} {
		b := open(t, backend.Config{BufferCount: 2, BufferSize: 64}, o)
		w, r := socketpair(t)
		c := newCollector(t, b, 8)
		recv := func(slot uint32, msg string) backend.Completion {
			_, err := unix.Write(w, []byte(msg))
			require.NoError(t, err)
			op := &backend.Op{Kind: backend.KindRecv, Token: backend.MakeToken(slot, 1), Fd: int32(r), BufferSelect: true}
			require.NoError(t, b.Submit(op))
			deadline := time.Now().Add(10 * time.Second)
			for {
				n, err := b.Wait(c.out, 100*time.Millisecond)
				require.NoError(t, err)
				if n > 0 {
					require.Equal(t, 1, n)
					return c.out[0]
				}
				require.True(t, time.Now().Before(deadline))
			}
		}
		first := recv(1, "one")
		require.NotZero(t, first.Flags&backend.FlagBuffer)
		b.ReleaseBuffer(first.BufID)
		b.ReleaseBuffer(first.BufID) // mistake: ignored
		second := recv(2, "two")
		third := recv(3, "three")
		require.NotEqual(t, second.BufID, third.BufID, "one buffer handed out twice")
		require.Equal(t, "two", string(second.Buf))
		require.Equal(t, "three", string(third.Buf))
		fourth := recv(4, "four")
		require.Equal(t, -int32(unix.ENOBUFS), fourth.Res, "two buffers held: the pool is empty")
		b.ReleaseBuffer(second.BufID)
		b.ReleaseBuffer(third.BufID)
		_, err := unix.Read(r, make([]byte, 16))
		require.NoError(t, err)
	}
}

// Many multishot receives on a completion queue far too small for them: the
// kernel's overflow handling (and any multishot it ends early) loses no byte
// and reorders nothing.
func TestTinyCQMultishotFlood(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			b := open(t, backend.Config{Entries: 4, CQEntries: 8, BufferCount: 256, BufferSize: 64}, v.opts)
			const streams, msgs = 8, 50
			type stream struct {
				w, r int
				op   backend.Op
				got  []byte
				want []byte
				eof  bool
			}
			ss := make([]*stream, streams)
			byTok := map[backend.Token]*stream{}
			gen := uint32(0)
			arm := func(s *stream, i int) {
				gen++
				s.op = backend.Op{Kind: backend.KindRecv, Token: backend.MakeToken(uint32(i), gen), Fd: int32(s.r), BufferSelect: true, Multishot: true}
				require.NoError(t, b.Submit(&s.op))
				byTok[s.op.Token] = s
			}
			for i := range ss {
				w, r := socketpair(t)
				ss[i] = &stream{w: w, r: r}
				arm(ss[i], i)
			}
			for m := 0; m < msgs; m++ {
				for i, s := range ss {
					msg := []byte(fmt.Sprintf("<%d:%d>", i, m))
					s.want = append(s.want, msg...)
					_, err := unix.Write(s.w, msg)
					require.NoError(t, err)
				}
			}
			for _, s := range ss {
				require.NoError(t, unix.Shutdown(s.w, unix.SHUT_WR))
			}
			out := make([]backend.Completion, 2)
			deadline := time.Now().Add(20 * time.Second)
			done := 0
			for done < streams {
				require.True(t, time.Now().Before(deadline), "flood stalled")
				n, err := b.Wait(out, 100*time.Millisecond)
				require.NoError(t, err)
				for _, c := range out[:n] {
					s := byTok[c.Token]
					require.NotNil(t, s)
					if c.Flags&backend.FlagBuffer != 0 {
						s.got = append(s.got, c.Buf...)
						b.ReleaseBuffer(c.BufID)
					}
					if c.More() {
						continue
					}
					delete(byTok, c.Token)
					switch {
					case c.Res == 0 && c.Flags&backend.FlagBuffer == 0:
						s.eof = true
						done++
					case c.Res >= 0 || c.Res == -int32(unix.ENOBUFS):
						arm(s, int(c.Token.Slot()))
					default:
						t.Fatalf("recv: %v", c.Err())
					}
				}
			}
			for i, s := range ss {
				require.Equal(t, string(s.want), string(s.got), "stream %d", i)
			}
			require.Zero(t, b.Inflight())
		})
	}
}

// The batch a blocking Wait asks the kernel for counts the ops the last
// batch came from, not its CQEs: one multishot recv's burst over many
// buffers (a 4 KiB write into 256-byte buffers: 16 CQEs from one kernel
// pass) must not make the next Wait hold out for 16 completions through
// the whole BatchWait window (what made a 64 KiB ping-pong 2-3× slower).
func TestBatchCountsOpsNotCQEs(t *testing.T) {
	b := open(t, backend.Config{BufferCount: 64, BufferSize: 256}, uringbe.Options{})
	a, peer := socketpair(t)
	_, err := unix.Write(peer, make([]byte, 4096))
	require.NoError(t, err)
	recv := &backend.Op{Kind: backend.KindRecv, Token: backend.MakeToken(1, 1), Fd: int32(a), Multishot: true, BufferSelect: true}
	nop := &backend.Op{Kind: backend.KindNop, Token: backend.MakeToken(2, 1)}
	require.NoError(t, b.Submit(recv))
	require.NoError(t, b.Submit(nop))
	out := make([]backend.Completion, 64)
	got, toks := 0, map[backend.Token]bool{}
	for got < 4096 {
		n, err := b.Wait(out, time.Second)
		require.NoError(t, err)
		require.NotZero(t, n, "timed out")
		for _, c := range out[:n] {
			toks[c.Token] = true
			if c.Flags&backend.FlagBuffer != 0 {
				got += len(c.Buf)
				b.ReleaseBuffer(c.BufID)
			}
		}
		if got == 4096 {
			require.Greater(t, n, 2, "the burst came in one batch")
			require.Equal(t, uint32(len(toks)), uringbe.LastBatch(b), "batch of %d completions from %d ops", n, len(toks))
		}
		clear(toks)
	}
	cancel := &backend.Op{Kind: backend.KindCancel, Token: backend.MakeToken(3, 1), Target: recv.Token}
	require.NoError(t, b.Submit(cancel))
	c := newCollector(t, b, 16)
	c.until(c.finals(recv.Token, cancel.Token))
}

// With an incrementally consumed ring, small receives share a buffer (two
// 64-byte buffers hold five small messages at once, where whole-buffer
// consumption runs dry at the third), every completion still has a BufID of
// its own, a buffer goes back to the kernel only when all its completions
// are released, and a second release of one BufID is ignored.
func TestIncrementalBuffers(t *testing.T) {
	b := open(t, backend.Config{BufferCount: 2, BufferSize: 64}, uringbe.Options{})
	if !uringbe.Incremental(b) {
		t.Skip("no incrementally consumed buffer rings (Linux 6.12+)")
	}
	w, r := socketpair(t)
	c := newCollector(t, b, 8)
	slot := uint32(0)
	recv := func(msg string) backend.Completion {
		_, err := unix.Write(w, []byte(msg))
		require.NoError(t, err)
		slot++
		op := &backend.Op{Kind: backend.KindRecv, Token: backend.MakeToken(slot, 1), Fd: int32(r), BufferSelect: true}
		require.NoError(t, b.Submit(op))
		deadline := time.Now().Add(10 * time.Second)
		for {
			n, err := b.Wait(c.out, 100*time.Millisecond)
			require.NoError(t, err)
			if n > 0 {
				require.Equal(t, 1, n)
				return c.out[0]
			}
			require.True(t, time.Now().Before(deadline))
		}
	}
	var held []backend.Completion
	ids := map[uint16]bool{}
	for _, m := range []string{"one", "two", "three", "four", "five"} {
		comp := recv(m)
		require.Equal(t, int32(len(m)), comp.Res, "%s: %v", m, comp.Err())
		require.NotZero(t, comp.Flags&backend.FlagBuffer)
		require.False(t, ids[comp.BufID], "BufID %#x handed out twice", comp.BufID)
		ids[comp.BufID] = true
		held = append(held, comp)
	}
	// Release all but "two", "one" twice; fill buffer 0's rest (64-19 bytes).
	b.ReleaseBuffer(held[0].BufID)
	b.ReleaseBuffer(held[0].BufID)
	for _, h := range held[2:] {
		b.ReleaseBuffer(h.BufID)
	}
	rest := recv(strings.Repeat("r", 64-19))
	require.Equal(t, int32(64-19), rest.Res)
	b.ReleaseBuffer(rest.BufID)
	// Buffer 0 is still held by "two": buffer 1 takes 64 bytes, then the ring is dry.
	full := recv(strings.Repeat("f", 64))
	require.Equal(t, int32(64), full.Res)
	dry := recv("x")
	require.Equal(t, -int32(unix.ENOBUFS), dry.Res, "buffer 0 went back to the kernel while still held")
	require.Equal(t, "two", string(held[1].Buf), "a held buffer was overwritten")
	b.ReleaseBuffer(held[1].BufID)
	b.ReleaseBuffer(full.BufID)
	again := recv("")
	require.Equal(t, int32(1), again.Res, "the released buffers serve again: %v", again.Err())
	require.Equal(t, "x", string(again.Buf))
	b.ReleaseBuffer(again.BufID)
}

// With an incrementally consumed ring, the classic ring (recvmsg's) is
// mapped only when the first recvmsg with BufferSelect is submitted: a loop
// serving streams maps its receive memory once, not twice.
func TestClassicRingOnlyForRecvmsg(t *testing.T) {
	b := open(t, backend.Config{BufferCount: 8, BufferSize: 256}, uringbe.Options{})
	if !uringbe.Incremental(b) {
		t.Skip("no incrementally consumed buffer rings (Linux 6.12+)")
	}
	require.False(t, uringbe.ClassicRing(b))
	a, peer := socketpair(t)
	recv := &backend.Op{Kind: backend.KindRecv, Token: backend.MakeToken(1, 1), Fd: int32(a), Multishot: true, BufferSelect: true}
	require.NoError(t, b.Submit(recv))
	require.False(t, uringbe.ClassicRing(b), "a stream recv mapped the classic ring")
	x, y := socketpair(t)
	rm := &backend.Op{Kind: backend.KindRecvMsg, Token: backend.MakeToken(2, 1), Fd: int32(x), BufferSelect: true}
	require.NoError(t, b.Submit(rm))
	require.True(t, uringbe.ClassicRing(b))
	_, err := unix.Write(peer, []byte("stream"))
	require.NoError(t, err)
	_, err = unix.Write(y, []byte("msg"))
	require.NoError(t, err)
	c := newCollector(t, b, 8)
	c.until(func() bool { return len(c.got[recv.Token]) > 0 && len(c.got[rm.Token]) > 0 })
	require.Equal(t, "stream", string(c.got[recv.Token][0].Buf))
	got, ok := c.final(rm.Token)
	require.True(t, ok)
	require.Equal(t, "msg", string(got.Buf))
	cancel := &backend.Op{Kind: backend.KindCancel, Token: backend.MakeToken(3, 1), Target: recv.Token}
	require.NoError(t, b.Submit(cancel))
	c.until(c.finals(recv.Token, cancel.Token))
}
