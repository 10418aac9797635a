package unixgram_test

import (
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
	"github.com/gyre-io/gyre/transports/unixgram"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 10 * time.Second

type dgram struct {
	data string
	from string
}

// rec records what a UNIX datagram protocol sees; echo makes it answer.
type rec struct {
	mu                            sync.Mutex
	echo                          bool
	tr                            transports.UnixDatagramTransport
	got                           []dgram
	starts, stops, refused, trunc int
	writeErrs                     []error
}

func (r *rec) StartProtocol(t transports.UnixDatagramTransport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tr = t
	r.starts++
}

func (r *rec) DatagramReceived(p []byte, from string) {
	r.mu.Lock()
	r.got = append(r.got, dgram{string(p), from})
	echo, tr := r.echo, r.tr
	r.mu.Unlock()
	if echo {
		if err := tr.Write(p, from); err != nil {
			r.mu.Lock()
			r.writeErrs = append(r.writeErrs, err)
			r.mu.Unlock()
		}
	}
}

func (r *rec) ConnectionRefused() { r.mu.Lock(); r.refused++; r.mu.Unlock() }
func (r *rec) StopProtocol()      { r.mu.Lock(); r.stops++; r.mu.Unlock() }
func (r *rec) DatagramTruncated(fit int, from string) {
	r.mu.Lock()
	r.trunc++
	r.mu.Unlock()
}

func (r *rec) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.got) }
func (r *rec) snap() (got []dgram, refused, trunc int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]dgram{}, r.got...), r.refused, r.trunc
}

// fdRec is a rec that receives descriptors: it reads one byte from each
// (a pipe's read end) and closes it.
type fdRec struct {
	rec
	fdMu  sync.Mutex
	bytes []string
}

func (r *fdRec) FDsReceived(fds []int) {
	for _, fd := range fds {
		b := make([]byte, 16)
		n, _ := unix.Read(fd, b)
		r.fdMu.Lock()
		r.bytes = append(r.bytes, string(b[:max(n, 0)]))
		r.fdMu.Unlock()
		_ = unix.Close(fd)
	}
}

func sockPath(t testing.TB, name string) string { return filepath.Join(t.TempDir(), name) }

func abstractName(t testing.TB) string {
	return "@gyre-ugram-" + filepath.Base(t.TempDir()) + time.Now().Format("150405.000000000")
}

func exists(path string) bool { _, err := os.Lstat(path); return err == nil }

func listen(t *testing.T, h *reactortest.Loop, path string, proto transports.UnixDatagramProtocol, o unixgram.ListenOptions) *unixgram.Port {
	t.Helper()
	var p *unixgram.Port
	var err error
	h.Do(func() { p, err = unixgram.Listen(h.Loop, path, proto, o) })
	require.NoError(t, err)
	return p
}

// stop stops p and waits for its done callback: StopProtocol ran once.
func stop(t *testing.T, h *reactortest.Loop, p *unixgram.Port, r *rec) {
	t.Helper()
	done := make(chan struct{})
	var err error
	h.Do(func() { err = p.StopListening(func() { close(done) }) })
	require.NoError(t, err)
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("StopListening never completed")
	}
	r.mu.Lock()
	require.Equal(t, 1, r.starts)
	require.Equal(t, 1, r.stops)
	r.mu.Unlock()
	h.Do(func() { require.ErrorIs(t, p.StopListening(nil), transports.ErrClosed) })
}

// client is a Go net unixgram socket bound at path (replies reach it).
func client(t *testing.T, path string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func read(t *testing.T, c *net.UnixConn) (string, string) {
	t.Helper()
	buf := make([]byte, 70000)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	n, from, err := c.ReadFromUnix(buf)
	require.NoError(t, err)
	name := ""
	if from != nil {
		name = from.Name
	}
	return string(buf[:n]), name
}

// Echo on a path and on an abstract name: every datagram, an empty one
// included, comes back to its sender (a bound client), with the sender's
// address delivered as its path; the socket file is removed at stop.
func TestEcho(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		fds := reactortest.FDCount()
		h := reactortest.Start(t, kind)
		for _, srv := range []string{sockPath(t, "srv.sock"), abstractName(t)} {
			for _, cl := range []string{sockPath(t, "cl.sock"), abstractName(t) + "c"} {
				r := &rec{echo: true}
				p := listen(t, h, srv, r, unixgram.ListenOptions{})
				require.Equal(t, srv, p.LocalAddr())
				c := client(t, cl)
				for _, m := range []string{"one", "", "three"} {
					_, err := c.WriteToUnix([]byte(m), &net.UnixAddr{Name: srv, Net: "unixgram"})
					require.NoError(t, err)
					got, from := read(t, c)
					require.Equal(t, m, got)
					require.Equal(t, srv, from)
				}
				got, _, _ := r.snap()
				require.Equal(t, []dgram{{"one", cl}, {"", cl}, {"three", cl}}, got)
				var st transports.DatagramStats
				h.Do(func() { st = p.Stats() })
				require.Equal(t, uint64(3), st.Received)
				require.Equal(t, uint64(3), st.Sent)
				stop(t, h, p, r)
				if srv[0] != '@' {
					require.False(t, exists(srv), "socket file removed at stop")
				}
				_ = c.Close()
			}
		}
		h.StopWait()
		require.Empty(t, h.Errors())
		require.Equal(t, fds, reactortest.FDCount(), "descriptors")
	})
}

// The socket file as for UNIX streams: exact Mode whatever the umask; a
// stale file refused or replaced (RemoveStale); a live socket and a file
// that is not a socket never removed; at stop only our own file goes.
func TestSocketFile(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		old := unix.Umask(0o027)
		defer unix.Umask(old)
		path := sockPath(t, "m.sock")
		r := &rec{}
		p := listen(t, h, path, r, unixgram.ListenOptions{Mode: 0o666})
		st, err := os.Lstat(path)
		require.NoError(t, err)
		require.Equal(t, os.ModeSocket, st.Mode().Type())
		require.Equal(t, os.FileMode(0o666), st.Mode().Perm())

		// A live socket: EADDRINUSE, never stale, also with RemoveStale.
		var err2 error
		h.Do(func() { _, err2 = unixgram.Listen(h.Loop, path, &rec{}, unixgram.ListenOptions{RemoveStale: true}) })
		require.ErrorIs(t, err2, syscall.EADDRINUSE)
		require.NotErrorIs(t, err2, unixgram.ErrStaleSocket)

		// Our file replaced by someone else's socket: stop leaves it.
		require.NoError(t, os.Remove(path))
		other := client(t, path)
		stop(t, h, p, r)
		require.True(t, exists(path), "another socket's file is not ours to remove")
		// Closing it leaves a stale file (Go's net unlinks only listeners').
		require.NoError(t, other.Close())
		require.True(t, exists(path))
		h.Do(func() { _, err2 = unixgram.Listen(h.Loop, path, &rec{}, unixgram.ListenOptions{}) })
		require.ErrorIs(t, err2, unixgram.ErrStaleSocket)
		require.ErrorIs(t, err2, syscall.EADDRINUSE)
		require.True(t, exists(path), "stale file left alone without RemoveStale")
		r = &rec{}
		p = listen(t, h, path, r, unixgram.ListenOptions{RemoveStale: true})
		stop(t, h, p, r)
		require.False(t, exists(path))

		// Not a socket: never removed.
		require.NoError(t, os.WriteFile(path, []byte("x"), 0o600))
		h.Do(func() { _, err2 = unixgram.Listen(h.Loop, path, &rec{}, unixgram.ListenOptions{RemoveStale: true}) })
		require.ErrorIs(t, err2, unixgram.ErrNotSocket)
		require.True(t, exists(path))

		// Bad addresses.
		for _, bad := range []string{"", "@", "a\x00b", string(make([]byte, 200))} {
			h.Do(func() { _, err2 = unixgram.Listen(h.Loop, bad, &rec{}, unixgram.ListenOptions{}) })
			require.ErrorIs(t, err2, unixgram.ErrBadAddress)
		}
		h.Do(func() {
			_, err2 = unixgram.Listen(h.Loop, sockPath(t, "b"), &rec{}, unixgram.ListenOptions{MaxPacketSize: -1})
		})
		require.ErrorIs(t, err2, transports.ErrBadOptions)
	})
}

// An unnamed sender (a socket that never bound) arrives as "" and cannot
// be answered: the reply fails with ErrNoAddress, which says so and also
// matches transports.ErrNotConnected; the port keeps working.
func TestUnnamedSender(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		r := &rec{echo: true}
		path := sockPath(t, "srv")
		p := listen(t, h, path, r, unixgram.ListenOptions{})
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte("who am I?"))
		require.NoError(t, err)
		require.True(t, reactortest.WaitUntil(wait, func() bool { return r.count() == 1 }))
		r.mu.Lock()
		require.Equal(t, []dgram{{"who am I?", ""}}, r.got)
		require.Len(t, r.writeErrs, 1)
		err = r.writeErrs[0]
		r.mu.Unlock()
		require.ErrorIs(t, err, unixgram.ErrNoAddress)
		require.ErrorIs(t, err, transports.ErrNotConnected)
		require.ErrorContains(t, err, "gyre/unixgram: no address to send to: the empty address (an unnamed sender) cannot be answered")
		stop(t, h, p, r)
		h.StopWait()
	})
}

// The connected form: Write with no address goes to the peer, only the
// peer's datagrams are received, replies reach the bound name; a peer that
// goes away is ConnectionRefused (and Write's ErrConnectionRefused), and
// the port keeps working and stops cleanly.
func TestConnected(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		fds := reactortest.FDCount()
		h := reactortest.Start(t, kind)
		srvPath, me := sockPath(t, "srv"), sockPath(t, "me")
		srv := client(t, srvPath)
		r := &rec{}
		var p *unixgram.Port
		var err error
		h.Do(func() {
			p, err = unixgram.Connect(h.Loop, srvPath, r, unixgram.ConnectOptions{Bind: me})
		})
		require.NoError(t, err)
		h.Do(func() { err = p.Write([]byte("hi"), "") })
		require.NoError(t, err)
		got, from := read(t, srv)
		require.Equal(t, "hi", got)
		require.Equal(t, me, from)
		_, err = srv.WriteToUnix([]byte("back"), &net.UnixAddr{Name: me, Net: "unixgram"})
		require.NoError(t, err)
		require.True(t, reactortest.WaitUntil(wait, func() bool { return r.count() == 1 }))
		h.Do(func() { require.ErrorIs(t, p.Connect(srvPath), transports.ErrAlreadyConnected) })

		// A stranger's datagram is not received by a connected socket.
		stranger := client(t, sockPath(t, "x"))
		_, err = stranger.WriteToUnix([]byte("no"), &net.UnixAddr{Name: me, Net: "unixgram"})
		require.Error(t, err, "the kernel refuses datagrams from others to a connected socket")

		// The peer goes away.
		require.NoError(t, srv.Close())
		h.Do(func() { err = p.Write([]byte("gone?"), "") })
		require.ErrorIs(t, err, transports.ErrConnectionRefused)
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
		require.EqualError(t, err, "gyre/unixgram: connection refused")
		require.True(t, reactortest.WaitUntil(wait, func() bool { _, ref, _ := r.snap(); return ref == 1 }))
		got2, _, _ := r.snap()
		require.Equal(t, []dgram{{"back", srvPath}}, got2)
		stop(t, h, p, r)
		require.False(t, exists(me))

		// Nothing there at all: Connect fails, nothing leaks.
		h.Do(func() {
			_, err = unixgram.Connect(h.Loop, srvPath, &rec{}, unixgram.ConnectOptions{Bind: me})
		})
		require.Error(t, err)
		require.False(t, exists(me), "the bound file is removed when connecting fails")

		// A socket file with nothing behind it: refused, said once.
		dead := client(t, sockPath(t, "dead"))
		deadPath := dead.LocalAddr().String()
		require.NoError(t, dead.Close())
		h.Do(func() { _, err = unixgram.Connect(h.Loop, deadPath, &rec{}, unixgram.ConnectOptions{}) })
		require.ErrorIs(t, err, transports.ErrConnectionRefused)
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
		require.EqualError(t, err, "dial unixgram "+deadPath+": connect: connection refused")
		_ = stranger.Close()
		h.StopWait()
		require.Equal(t, fds, reactortest.FDCount())
	})
}

// The EAGAIN bound: a receiver that does not read fills up; then the port
// queues QueueDatagrams datagrams, refuses the next with ErrQueueFull
// (counted), and once the receiver drains, every accepted datagram arrives,
// in order — unconnected (timer retry) and connected (poll).
func TestQueueFull(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		for _, connected := range []bool{false, true} {
			fds := reactortest.FDCount()
			h := reactortest.Start(t, kind)
			dst := sockPath(t, "dst")
			sink := client(t, dst)
			r := &rec{}
			var p *unixgram.Port
			var err error
			o := unixgram.ListenOptions{QueueDatagrams: 4}
			h.Do(func() {
				if connected {
					p, err = unixgram.Connect(h.Loop, dst, r, unixgram.ConnectOptions{ListenOptions: o})
				} else {
					p, err = unixgram.Listen(h.Loop, sockPath(t, "src"), r, o)
				}
			})
			require.NoError(t, err)
			to := dst
			if connected {
				to = ""
			}
			var accepted int
			var refusedErr error
			var st transports.DatagramStats
			h.Do(func() {
				for i := 0; i < 100000; i++ {
					if err := p.Write([]byte{byte(i), byte(i >> 8), byte(i >> 16)}, to); err != nil {
						refusedErr = err
						break
					}
					accepted++
				}
				st = p.Stats()
			})
			require.ErrorIs(t, refusedErr, transports.ErrQueueFull)
			require.Equal(t, uint64(4), st.Queued)
			require.Equal(t, uint64(1), st.Refused)
			require.Equal(t, uint64(accepted-4), st.Sent)
			for i := 0; i < accepted; i++ {
				got, _ := read(t, sink)
				require.Equal(t, string([]byte{byte(i), byte(i >> 8), byte(i >> 16)}), got, "datagram %d of %d", i, accepted)
			}
			require.True(t, reactortest.WaitUntil(wait, func() bool {
				var s transports.DatagramStats
				h.Do(func() { s = p.Stats() })
				return s.Sent == uint64(accepted)
			}))
			stop(t, h, p, r)
			_ = sink.Close()
			h.StopWait()
			require.Empty(t, h.Errors())
			require.Equal(t, fds, reactortest.FDCount(), "connected=%v", connected)
		}
	})
}

func pipe(t *testing.T, msg string) (r, w int) {
	t.Helper()
	var p [2]int
	require.NoError(t, unix.Pipe2(p[:], unix.O_CLOEXEC))
	_, err := unix.Write(p[1], []byte(msg))
	require.NoError(t, err)
	return p[0], p[1]
}

// SCM_RIGHTS both ways: descriptors a peer sends reach FDsReceived before
// their datagram (an empty datagram can carry them); WriteFDs passes ours,
// also from the send queue (duplicates held, caller's closed at once);
// descriptors of a truncated datagram and those sent to a protocol that
// takes none are closed — the descriptor count comes back exactly.
func TestFDs(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		fds := reactortest.FDCount()
		h := reactortest.Start(t, kind)
		srvPath := sockPath(t, "srv")
		r := &fdRec{}
		p := listen(t, h, srvPath, r, unixgram.ListenOptions{})
		c := client(t, sockPath(t, "cl"))
		dst := &net.UnixAddr{Name: srvPath, Net: "unixgram"}

		// Peer -> port: "a" with one pipe, "" with two.
		r1, w1 := pipe(t, "x")
		r2, w2 := pipe(t, "y")
		r3, w3 := pipe(t, "z")
		_, _, err := c.WriteMsgUnix([]byte("a"), unix.UnixRights(r1), dst)
		require.NoError(t, err)
		_, _, err = c.WriteMsgUnix(nil, unix.UnixRights(r2, r3), dst)
		require.NoError(t, err)
		// Truncated (larger than the multishot room): its descriptor closed.
		rt, wt := pipe(t, "t")
		big := make([]byte, unixgram.MaxPacketSize(h.Loop, true)+1)
		_, _, err = c.WriteMsgUnix(big, unix.UnixRights(rt), dst)
		require.NoError(t, err)
		for _, fd := range []int{r1, w1, r2, w2, r3, w3, rt, wt} {
			require.NoError(t, unix.Close(fd))
		}
		require.True(t, reactortest.WaitUntil(wait, func() bool { _, _, tr := r.snap(); return r.count() == 2 && tr == 1 }))
		r.fdMu.Lock()
		require.Equal(t, []string{"x", "y", "z"}, r.bytes)
		r.fdMu.Unlock()
		got, _, _ := r.snap()
		require.Equal(t, "a", got[0].data)
		require.Equal(t, "", got[1].data)

		// Port -> peer, sent at once.
		ra, wa := pipe(t, "A")
		h.Do(func() { err = p.WriteFDs([]byte("fd"), []int{ra}, c.LocalAddr().String()) })
		require.NoError(t, err)
		require.NoError(t, unix.Close(ra))
		require.NoError(t, unix.Close(wa))
		require.Equal(t, "A", readFD(t, c, "fd"))
		// Errors: too many, a closed descriptor (nothing sent).
		h.Do(func() {
			require.ErrorIs(t, p.WriteFDs([]byte("x"), make([]int, unixgram.MaxFDs+1), c.LocalAddr().String()), unixgram.ErrTooManyFDs)
			require.ErrorIs(t, p.WriteFDs([]byte("x"), []int{ra}, c.LocalAddr().String()), syscall.EBADF)
		})
		stop(t, h, p, &r.rec)

		// From the queue: fill a silent receiver, queue a datagram with a
		// descriptor, close ours, drain: the duplicate travelled.
		sink := client(t, sockPath(t, "sink"))
		r2p := &rec{}
		p = listen(t, h, sockPath(t, "src"), r2p, unixgram.ListenOptions{QueueDatagrams: 4})
		n := 0
		var qerr error
		rq, wq := pipe(t, "Q")
		h.Do(func() {
			for ; n < 100000; n++ {
				var st transports.DatagramStats
				if st = p.Stats(); st.Queued > 0 {
					break
				}
				_ = p.Write([]byte("fill"), sink.LocalAddr().String())
			}
			qerr = p.WriteFDs([]byte("fd"), []int{rq}, sink.LocalAddr().String())
		})
		require.NoError(t, qerr)
		require.NoError(t, unix.Close(rq))
		require.NoError(t, unix.Close(wq))
		for i := 0; i < n; i++ {
			got, _ := read(t, sink)
			require.Equal(t, "fill", got)
		}
		require.Equal(t, "Q", readFD(t, sink, "fd"))
		// Queued with descriptors, then stopped: the duplicates are closed.
		ro, wo := pipe(t, "O")
		h.Do(func() {
			for i := 0; i < 100000 && p.Stats().Queued == 1; i++ {
				_ = p.Write([]byte("fill"), sink.LocalAddr().String())
			}
			require.NoError(t, p.WriteFDs([]byte("fd"), []int{ro}, sink.LocalAddr().String()))
		})
		require.NoError(t, unix.Close(ro))
		require.NoError(t, unix.Close(wo))
		stop(t, h, p, r2p)

		// A protocol that takes no descriptors: the kernel closes them.
		plain := &rec{}
		pp := listen(t, h, sockPath(t, "plain"), plain, unixgram.ListenOptions{})
		rp, wp := pipe(t, "P")
		_, _, err = c.WriteMsgUnix([]byte("p"), unix.UnixRights(rp), &net.UnixAddr{Name: pp.LocalAddr(), Net: "unixgram"})
		require.NoError(t, err)
		require.NoError(t, unix.Close(rp))
		require.NoError(t, unix.Close(wp))
		require.True(t, reactortest.WaitUntil(wait, func() bool { return plain.count() == 1 }))
		stop(t, h, pp, plain)
		_ = c.Close()
		_ = sink.Close()
		h.StopWait()
		require.Empty(t, h.Errors())
		require.Equal(t, fds, reactortest.FDCount(), "no descriptor leaked")
	})
}

// readFD reads one datagram want from c with one descriptor, reads a
// byte from that and closes it.
func readFD(t *testing.T, c *net.UnixConn, want string) string {
	t.Helper()
	buf, oob := make([]byte, 100), make([]byte, unix.CmsgSpace(4*4))
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	require.NoError(t, err)
	require.Equal(t, want, string(buf[:n]))
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	got, err := unix.ParseUnixRights(&msgs[0])
	require.NoError(t, err)
	require.Len(t, got, 1)
	b := make([]byte, 4)
	k, err := unix.Read(got[0], b)
	require.NoError(t, err)
	require.NoError(t, unix.Close(got[0]))
	return string(b[:k])
}

// The reactor interface: ListenUNIXDatagram and ConnectUNIXDatagram reach
// this package (registered as "unixgram") with its options.
func TestReactorUNIXDatagram(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		var r transports.Reactor = stream.Reactor(h.Loop)
		_, err := r.ListenUNIXDatagram(sockPath(t, "x"), &rec{}, 42)
		require.ErrorIs(t, err, transports.ErrBadOptions)
		_, err = r.ConnectUNIXDatagram(sockPath(t, "x"), &rec{}, unixgram.ListenOptions{})
		require.ErrorIs(t, err, transports.ErrBadOptions, "Connect takes ConnectOptions")
		srv, cl := sockPath(t, "srv"), sockPath(t, "cl")
		e := &rec{echo: true}
		tr, err := r.ListenUNIXDatagram(srv, e, &unixgram.ListenOptions{Mode: 0o600})
		require.NoError(t, err)
		c := &rec{}
		ct, err := r.ConnectUNIXDatagram(srv, c, unixgram.ConnectOptions{Bind: cl})
		require.NoError(t, err)
		h.Do(func() { err = ct.Write([]byte("via reactor"), "") })
		require.NoError(t, err)
		require.True(t, reactortest.WaitUntil(wait, func() bool { return c.count() == 1 }))
		got, _, _ := c.snap()
		require.Equal(t, []dgram{{"via reactor", srv}}, got)
		stop(t, h, ct.(*unixgram.Port), c)
		stop(t, h, tr.(*unixgram.Port), e)
	})
}
