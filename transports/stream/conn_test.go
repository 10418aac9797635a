package stream_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

// connRec is a half-closeable protocol recording what it sees; touched on
// the loop only.
type connRec struct {
	t                   transports.Transport
	data                []byte
	made, lost          int
	readLost, writeLost int
	reason              error
	onData              func(r *connRec, p []byte)
}

func (r *connRec) ConnectionMade(t transports.Transport) { r.t = t; r.made++ }
func (r *connRec) DataReceived(p []byte) {
	r.data = append(r.data, p...)
	if r.onData != nil {
		r.onData(r, p)
	}
}
func (r *connRec) ConnectionLost(err error) { r.lost++; r.reason = err }
func (r *connRec) ReadConnectionLost()      { r.readLost++ }
func (r *connRec) WriteConnectionLost()     { r.writeLost++ }

// plain is a connRec seen as a plain Protocol (not half-closeable): end of
// stream closes the connection.
type plain struct{ r *connRec }

func (p plain) ConnectionMade(t transports.Transport) { p.r.ConnectionMade(t) }
func (p plain) DataReceived(b []byte)                 { p.r.DataReceived(b) }
func (p plain) ConnectionLost(err error)              { p.r.ConnectionLost(err) }

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// TestConnPlainReadSocketpair: a Conn in ReadPlain mode (read(2) into its own
// buffer) on one end of a socketpair: it delivers what the peer writes (more
// than one buffer's worth, with the protocol pausing and resuming inside
// DataReceived, so the read must not be re-armed into a buffer the protocol
// still holds), writes back, half-closes with shutdown(SHUT_WR), sees the
// peer's end of stream and ends cleanly. Both backends.
func TestConnPlainReadSocketpair(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		peer := os.NewFile(uintptr(fds[1]), "peer")
		defer peer.Close()
		require.NoError(t, unix.SetNonblock(fds[1], false))

		in := pattern(1 << 20)
		r := &connRec{onData: func(r *connRec, p []byte) {
			// Pausing and resuming inside DataReceived while p (the conn's
			// own buffer) is still lent out.
			r.t.PauseReading()
			r.t.ResumeReading()
			if !bytes.Equal(p, in[len(r.data)-len(p):len(r.data)]) {
				panic("bytes changed under DataReceived")
			}
		}}
		var c *stream.Conn
		h.Do(func() {
			c = stream.NewConn(h.Loop, fds[0], stream.ConnConfig{Read: stream.ReadPlain, ReadBufferSize: 4096})
			c.Start(r, nil)
			require.NoError(t, c.Write([]byte("hello")))
			require.NoError(t, c.CloseWrite())
		})
		got := make([]byte, 5)
		_, err = io.ReadFull(peer, got)
		require.NoError(t, err)
		require.Equal(t, "hello", string(got))
		n, err := peer.Read(got)
		require.Equal(t, 0, n)
		require.ErrorIs(t, err, io.EOF, "no end of stream after CloseWrite")
		_, err = peer.Write(in)
		require.NoError(t, err)
		require.NoError(t, unix.Shutdown(fds[1], unix.SHUT_WR))
		require.True(t, h.Eventually(5*time.Second, func() bool { return r.lost == 1 }))
		h.Do(func() {
			require.Equal(t, 1, r.made)
			require.Equal(t, 1, r.writeLost)
			require.Equal(t, 1, r.readLost)
			require.True(t, bytes.Equal(in, r.data), "received %d bytes of %d", len(r.data), len(in))
			require.ErrorIs(t, r.reason, transports.ErrConnectionDone)
			require.Equal(t, -1, c.Fd())
		})
		require.Empty(t, h.Errors())
	})
}

// TestConnPipe: the two ends of a pipe as Conns: the write end with
// ReadNone, WritePlain and WriteEndClose; the read end with ReadPlain and
// WriteEndClose (it has no write direction: the last step of its
// LoseConnection is the close; a shutdown would fail with ENOTSOCK).
// CloseWrite on the writer flushes 1 MiB, closes the descriptor
// (WriteConnectionLost, then ConnectionLost(ErrConnectionDone)), and the
// reader gets every byte, then end of stream (ConnectionLost, clean). Both
// backends.
func TestConnPipe(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		var p [2]int
		require.NoError(t, unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC))
		in := pattern(1 << 20)
		rd, wr := &connRec{}, &connRec{}
		h.Do(func() {
			r := stream.NewConn(h.Loop, p[0], stream.ConnConfig{Read: stream.ReadPlain, Write: stream.WritePlain, WriteEnd: stream.WriteEndClose})
			r.Start(plain{rd}, nil)
			w := stream.NewConn(h.Loop, p[1], stream.ConnConfig{Read: stream.ReadNone, Write: stream.WritePlain, WriteEnd: stream.WriteEndClose})
			w.Start(wr, nil)
			require.NoError(t, w.Write(in[:1000]))
			require.NoError(t, w.WriteOwned(in[1000:], nil))
			require.NoError(t, w.CloseWrite())
			require.ErrorIs(t, w.Write([]byte("x")), transports.ErrClosed)
		})
		require.True(t, h.Eventually(5*time.Second, func() bool { return rd.lost == 1 && wr.lost == 1 }))
		h.Do(func() {
			require.Equal(t, 1, wr.writeLost)
			require.ErrorIs(t, wr.reason, transports.ErrConnectionDone)
			require.True(t, bytes.Equal(in, rd.data), "received %d bytes of %d", len(rd.data), len(in))
			require.ErrorIs(t, rd.reason, transports.ErrConnectionDone)
		})
		require.Empty(t, h.Errors())
	})
}

// TestConnAbortPipe: Abort on a WritePlain conn drops the queue and ends it
// with ErrAborted on a later turn, without socket calls.
func TestConnAbortPipe(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		var p [2]int
		require.NoError(t, unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC))
		defer unix.Close(p[0])
		wr := &connRec{}
		released := make(chan error, 1)
		h.Do(func() {
			w := stream.NewConn(h.Loop, p[1], stream.ConnConfig{Read: stream.ReadNone, Write: stream.WritePlain, WriteEnd: stream.WriteEndClose})
			w.Start(wr, nil)
			// More than the pipe holds: some stays queued.
			require.NoError(t, w.WriteOwned(make([]byte, 4<<20), func(err error) { released <- err }))
			require.NoError(t, w.Abort())
			require.Equal(t, 0, wr.lost, "ConnectionLost inside Abort")
			require.True(t, w.Disconnecting())
		})
		require.True(t, h.Eventually(5*time.Second, func() bool { return wr.lost == 1 }))
		h.Do(func() {
			require.ErrorIs(t, wr.reason, transports.ErrAborted)
			require.ErrorIs(t, wr.reason, transports.ErrConnectionLost)
		})
		select {
		case err := <-released:
			require.True(t, errors.Is(err, transports.ErrAborted), "owned buffer released with %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("owned buffer not released")
		}
	})
}
