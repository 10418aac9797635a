package unix_test

import (
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	gunix "github.com/gyre-io/gyre/transports/unix"
)

// pipe returns a pipe's ends, closed when the test ends.
func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(); _ = w.Close() })
	return r, w
}

// Received descriptors work, come before the bytes they travelled with, in
// order with plain bytes; descriptors are counted back to the baseline.
func TestReceiveFDs(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		path := sockPath(t)
		r1, w1 := pipe(t)
		r2, w2 := pipe(t)
		base := reactortest.FDCount()
		var srv *fdRecorder
		p, err := gunix.Listen(h.Loop, path, transports.FactoryFunc(func(net.Addr) transports.Protocol {
			srv = &fdRecorder{}
			return srv
		}), gunix.ListenOptions{})
		require.NoError(t, err)
		c := dial(t, path)
		_, err = c.Write([]byte("a"))
		require.NoError(t, err)
		time.Sleep(10 * time.Millisecond) // let "a" arrive alone
		_, _, err = c.WriteMsgUnix([]byte("b"), unix.UnixRights(int(w1.Fd())), nil)
		require.NoError(t, err)
		_, _, err = c.WriteMsgUnix([]byte("cd"), unix.UnixRights(int(w2.Fd()), int(w1.Fd())), nil)
		require.NoError(t, err)
		require.True(t, h.Eventually(5*time.Second, func() bool { return srv != nil && srv.data.Len() == 4 && len(srv.fds) == 2 }))
		h.Do(func() {
			require.Equal(t, "abcd", srv.data.String())
			srv.deliveredWith(t, 0, 1)
			srv.deliveredWith(t, 1, 2)
			require.Len(t, srv.fds[0], 1)
			require.Len(t, srv.fds[1], 2)
			// The received descriptors work; the protocol owns and closes them.
			_, err := unix.Write(srv.fds[0][0], []byte("1"))
			require.NoError(t, err)
			_, err = unix.Write(srv.fds[1][0], []byte("2"))
			require.NoError(t, err)
			for _, fds := range srv.fds {
				for _, fd := range fds {
					flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
					require.NoError(t, err)
					require.NotZero(t, flags&unix.FD_CLOEXEC)
					require.NoError(t, unix.Close(fd))
				}
			}
		})
		b := make([]byte, 1)
		_, err = io.ReadFull(r1, b)
		require.NoError(t, err)
		require.Equal(t, "1", string(b))
		_, err = io.ReadFull(r2, b)
		require.NoError(t, err)
		require.Equal(t, "2", string(b))
		require.NoError(t, c.Close())
		require.True(t, h.Eventually(5*time.Second, func() bool { return srv.lost == 1 }))
		h.Do(func() { _ = p.Close() })
		<-p.Done()
		require.True(t, reactortest.WaitUntil(5*time.Second, func() bool { return reactortest.FDCount() <= base }),
			"fds %d, baseline %d", reactortest.FDCount(), base)
	})
}

// A protocol that does not receive descriptors reads with multishot recv;
// the kernel closes what a peer passes, and nothing leaks.
func TestFDsToPlainProtocolDoNotLeak(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		base := reactortest.FDCount()
		path := sockPath(t)
		p, b := listen(t, h, path, gunix.ListenOptions{}, func() *recorder { return &recorder{echo: true} })
		c := dial(t, path)
		_, w := pipe(t)
		for i := 0; i < 20; i++ {
			_, _, err := c.WriteMsgUnix([]byte("z"), unix.UnixRights(int(w.Fd())), nil)
			require.NoError(t, err)
		}
		_, err := io.ReadFull(c, make([]byte, 20))
		require.NoError(t, err)
		require.NoError(t, c.Close())
		require.True(t, h.Eventually(5*time.Second, func() bool { return len(b.list()) == 1 && b.list()[0].lost == 1 }))
		h.Do(func() { _ = p.Close() })
		<-p.Done()
		require.True(t, reactortest.WaitUntil(5*time.Second, func() bool { return reactortest.FDCount() <= base+2 }), // +2: the pipe
			"fds %d, baseline %d", reactortest.FDCount(), base)
	})
}

// Descriptors arriving after LoseConnection are closed by the transport.
func TestFDsAfterLoseConnectionClosed(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		path := sockPath(t)
		var srv *fdRecorder
		p, err := gunix.Listen(h.Loop, path, transports.FactoryFunc(func(net.Addr) transports.Protocol {
			srv = &fdRecorder{}
			srv.onData = func(r *recorder, _ []byte) { _ = r.t.LoseConnection() }
			return srv
		}), gunix.ListenOptions{})
		require.NoError(t, err)
		defer h.Do(func() { _ = p.Close() })
		c := dial(t, path)
		r, w := pipe(t)
		_, _, err = c.WriteMsgUnix([]byte("x"), unix.UnixRights(int(w.Fd())), nil)
		require.NoError(t, err)
		require.True(t, h.Eventually(5*time.Second, func() bool { return srv != nil && srv.lost == 1 }))
		h.Do(func() { require.Len(t, srv.fds, 1); require.NoError(t, unix.Close(srv.fds[0][0])) })
		// The only writer left is ours: closing it gives the reader EOF, so
		// no descriptor for w stayed open in the process.
		require.NoError(t, w.Close())
		_ = r.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := r.Read(make([]byte, 1))
		require.Equal(t, 0, n)
		require.ErrorIs(t, err, io.EOF)
	})
}

// WriteFDs sends duplicates with the first byte of p, in order with other
// writes; the transport's duplicates are closed once sent.
func TestWriteFDs(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		path := sockPath(t)
		r1, w1 := pipe(t)
		r2, w2 := pipe(t)
		base := reactortest.FDCount()
		var errs []error
		listen(t, h, path, gunix.ListenOptions{}, func() *recorder {
			return &recorder{onMade: func(r *recorder) {
				c := r.t.(*gunix.Conn)
				errs = append(errs,
					c.Write([]byte("a")),
					c.WriteFDs([]byte("bb"), []int{int(w1.Fd())}),
					c.Write([]byte("c")),
					c.WriteFDs([]byte("d"), []int{int(w2.Fd()), int(w1.Fd())}),
					c.WriteFDs(nil, []int{int(w1.Fd())}),
					c.WriteFDs([]byte("e"), []int{-1}),
					c.Write([]byte("e")),
				)
			}}
		})
		c := dial(t, path)
		var got []byte
		var fds [][]int
		var at, end []int // offset of each descriptor message, end of its read
		oob := make([]byte, unix.CmsgSpace(4*4))
		buf := make([]byte, 16)
		for len(got) < 6 {
			n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
			require.NoError(t, err)
			if oobn > 0 {
				msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
				require.NoError(t, err)
				require.Len(t, msgs, 1)
				f, err := unix.ParseUnixRights(&msgs[0])
				require.NoError(t, err)
				fds = append(fds, f)
				at = append(at, len(got))
				end = append(end, len(got)+n)
			}
			got = append(got, buf[:n]...)
		}
		require.Equal(t, "abbcde", string(got))
		// Each message came with a read holding the first byte it was sent
		// with (the read may hold bytes around it too).
		require.Len(t, at, 2)
		require.True(t, at[0] <= 1 && 1 < end[0], "first: read [%d,%d)", at[0], end[0])
		require.True(t, at[1] <= 4 && 4 < end[1], "second: read [%d,%d)", at[1], end[1])
		require.Len(t, fds[0], 1)
		require.Len(t, fds[1], 2)
		h.Do(func() {
			require.NoError(t, errs[0])
			require.NoError(t, errs[1])
			require.NoError(t, errs[2])
			require.NoError(t, errs[3])
			require.ErrorIs(t, errs[4], gunix.ErrNoData)
			require.ErrorIs(t, errs[5], syscall.EBADF)
			require.NoError(t, errs[6])
		})
		_, err := unix.Write(fds[0][0], []byte("1"))
		require.NoError(t, err)
		_, err = unix.Write(fds[1][0], []byte("2"))
		require.NoError(t, err)
		b := make([]byte, 1)
		_, err = io.ReadFull(r1, b)
		require.NoError(t, err)
		require.Equal(t, "1", string(b))
		_, err = io.ReadFull(r2, b)
		require.NoError(t, err)
		require.Equal(t, "2", string(b))
		// The transport closed its duplicates: only ours, the listener and
		// the connection's two ends are open.
		for _, f := range fds {
			for _, fd := range f {
				require.NoError(t, unix.Close(fd))
			}
		}
		require.True(t, reactortest.WaitUntil(5*time.Second, func() bool { return reactortest.FDCount() <= base+3 }),
			"fds %d, baseline %d (+3: listener and connection)", reactortest.FDCount(), base)
	})
}

// Duplicates not sent when the connection ends are closed.
func TestWriteFDsUnsentClosed(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		path := sockPath(t)
		_, w := pipe(t)
		base := reactortest.FDCount()
		p, b := listen(t, h, path, gunix.ListenOptions{}, func() *recorder {
			return &recorder{onMade: func(r *recorder) {
				c := r.t.(*gunix.Conn)
				_ = c.WriteFDs([]byte("x"), []int{int(w.Fd()), int(w.Fd()), int(w.Fd())})
				_ = c.Abort()
			}}
		})
		c := dial(t, path)
		require.True(t, h.Eventually(5*time.Second, func() bool { return len(b.list()) == 1 && b.list()[0].lost == 1 }))
		require.NoError(t, c.Close())
		h.Do(func() { _ = p.Close() })
		<-p.Done()
		require.True(t, reactortest.WaitUntil(5*time.Second, func() bool { return reactortest.FDCount() <= base }),
			"fds %d, baseline %d", reactortest.FDCount(), base)
	})
}

// Both ends gyre: a descriptor passed from client to server and back.
func TestFDsGyreToGyre(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		path := sockPath(t)
		r, w := pipe(t)
		var srv *fdRecorder
		p, err := gunix.Listen(h.Loop, path, transports.FactoryFunc(func(net.Addr) transports.Protocol {
			srv = &fdRecorder{}
			return srv
		}), gunix.ListenOptions{})
		require.NoError(t, err)
		defer h.Do(func() { _ = p.Close() })
		cli := &recorder{onMade: func(rr *recorder) {
			_ = rr.t.(*gunix.Conn).WriteFDs([]byte("take"), []int{int(w.Fd())})
			_ = rr.t.LoseConnection()
		}}
		_, err = gunix.Connect(h.Loop, path, &clientFactory{proto: cli}, gunix.ConnectOptions{})
		require.NoError(t, err)
		require.True(t, h.Eventually(5*time.Second, func() bool { return srv != nil && srv.lost == 1 && cli.lost == 1 }))
		h.Do(func() {
			require.Equal(t, "take", srv.data.String())
			require.Len(t, srv.fds, 1)
			_, err := unix.Write(srv.fds[0][0], []byte("!"))
			require.NoError(t, err)
			require.NoError(t, unix.Close(srv.fds[0][0]))
		})
		b := make([]byte, 1)
		_, err = io.ReadFull(r, b)
		require.NoError(t, err)
		require.Equal(t, "!", string(b))
	})
}
