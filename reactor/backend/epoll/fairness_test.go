package epoll_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/backend/epoll"
)

// streamPair returns a non-blocking AF_UNIX stream pair (writer, reader),
// closed at the end of the test.
func streamPair(t *testing.T) (w, r int) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = unix.Close(fds[0]); _ = unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// fill writes up to max bytes to the non-blocking fd and returns how many
// went in before it would block.
func fill(t *testing.T, fd, max int) int {
	chunk := make([]byte, 16<<10)
	n := 0
	for n < max {
		k, err := unix.Write(fd, chunk[:min(len(chunk), max-n)])
		if err == unix.EAGAIN {
			break
		}
		require.NoError(t, err)
		n += k
	}
	return n
}

// A socket with far more data pending than the pool holds must not drain the
// pool into the backend's queue: with a consumer that releases every buffer
// as soon as Wait returns it, the backend produces only about a batch of
// completions at a time, so neither the hot recv nor one armed later on a
// quiet socket ever ends with ENOBUFS, and the quiet socket's data arrives
// while the hot one still has plenty left.
func TestHotSocketDoesNotDrainPool(t *testing.T) {
	const pool = 64
	b, err := epoll.New(backend.Config{BufferCount: pool, BufferSize: 1024})
	require.NoError(t, err)
	defer b.Close()
	hotW, hotR := streamPair(t)
	quietW, quietR := streamPair(t)
	pending := fill(t, hotW, 192<<10)
	require.Greater(t, pending, 4*pool*1024/2, "socket buffers too small for the test")

	hot := backend.Op{Kind: backend.KindRecv, Token: backend.MakeToken(1, 1), Fd: int32(hotR), BufferSelect: true, Multishot: true}
	quiet := backend.Op{Kind: backend.KindRecv, Token: backend.MakeToken(2, 1), Fd: int32(quietR), BufferSelect: true, Multishot: true}
	require.NoError(t, b.Submit(&hot))
	out := make([]backend.Completion, 8)
	hotGot, quietGot, waits := 0, 0, 0
	wait := func() {
		n, err := b.Wait(out, time.Second)
		require.NoError(t, err)
		require.NotZero(t, n, "no completion within a second")
		waits++
		for _, c := range out[:n] {
			require.True(t, c.More(), "token %d: multishot recv ended: res %d (%v)", c.Token.Slot(), c.Res, c.Err())
			require.NotZero(t, c.Flags&backend.FlagBuffer)
			b.ReleaseBuffer(c.BufID)
			if c.Token == hot.Token {
				hotGot += int(c.Res)
			} else {
				quietGot += int(c.Res)
			}
		}
	}
	wait()
	_, err = unix.Write(quietW, []byte("hello"))
	require.NoError(t, err)
	require.NoError(t, b.Submit(&quiet))
	for quietGot < 5 {
		require.Less(t, waits, 1000, "quiet socket starved")
		wait()
	}
	require.Less(t, hotGot, pending/2, "the quiet socket waited for half of the hot one's data")
	t.Logf("quiet socket served at wait %d, after %d of the hot socket's %d bytes", waits, hotGot, pending)
	for hotGot < pending {
		require.Less(t, waits, 1000, "hot socket stalled at %d of %d bytes", hotGot, pending)
		wait()
	}
}

// Round-robin service of several busy sockets allocates nothing in the steady
// state: passes that stop before EAGAIN, the ready list, lazy production.
func TestBusySocketsSteadyStateAllocs(t *testing.T) {
	b, err := epoll.New(backend.Config{BufferCount: 256, BufferSize: 1024})
	require.NoError(t, err)
	defer b.Close()
	const socks = 3
	var ws [socks]int
	ops := make([]backend.Op, socks)
	for i := range ops {
		w, r := streamPair(t)
		ws[i] = w
		ops[i] = backend.Op{Kind: backend.KindRecv, Token: backend.MakeToken(uint32(i+1), 1), Fd: int32(r), BufferSelect: true, Multishot: true}
		require.NoError(t, b.Submit(&ops[i]))
	}
	chunk := make([]byte, 32<<10)
	out := make([]backend.Completion, 8)
	round := func() {
		for _, w := range ws { // keep every socket well ahead of the reader
			_, _ = unix.Write(w, chunk)
		}
		n, err := b.Wait(out, time.Second)
		if err != nil || n == 0 {
			t.Fatalf("wait: %d %v", n, err)
		}
		for _, c := range out[:n] {
			if !c.More() || c.Flags&backend.FlagBuffer == 0 {
				t.Fatalf("unexpected completion %+v", c)
			}
			b.ReleaseBuffer(c.BufID)
		}
	}
	for i := 0; i < 100; i++ {
		round()
	}
	require.Zero(t, testing.AllocsPerRun(300, round))
}
