package gyretls_test

import (
	"bufio"
	"bytes"
	ctls "crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	gyretls "github.com/gyre-io/gyre/transports/tls"
)

// serve listens with protocols made by mk over TLS.
func serve(t *testing.T, h *reactortest.Loop, cfg *ctls.Config, opts gyretls.Options, mk func() transports.Protocol) (string, *factoryOf) {
	t.Helper()
	f := newFactory(mk)
	port, err := gyretls.Listen(h.Loop, "127.0.0.1:0", f, cfg, gyretls.ListenOptions{Options: opts})
	require.NoError(t, err)
	t.Cleanup(func() { h.Do(func() { _ = port.Close() }) })
	return port.Addr().String(), f
}

// holdConn lets a test take the bytes crypto/tls writes instead of sending them.
type holdConn struct {
	net.Conn
	mu   sync.Mutex
	hold bool
	held []byte
}

func (c *holdConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hold {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// Go's crypto/tls client against a gyre server, TLS 1.2 and 1.3: echo, then
// the server's LoseConnection reaches the client as close_notify (io.EOF).
func TestGoClientEchoAndCloseNotify(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		p := testPKI(t)
		h := reactortest.Start(t, kind)
		for _, v := range []uint16{ctls.VersionTLS12, ctls.VersionTLS13} {
			addr, f := serve(t, h, p.server(), gyretls.Options{}, func() transports.Protocol {
				r := newRec()
				r.onData = func(r *rec, b []byte) {
					_ = r.tr.Write(b)
					if bytes.HasSuffix(r.data, []byte("bye")) {
						_ = r.tr.LoseConnection()
					}
				}
				return r
			})
			cfg := p.client()
			cfg.MaxVersion = v
			c, err := ctls.Dial("tcp", addr, cfg)
			require.NoError(t, err)
			msg := append(pattern(100000), "bye"...)
			go func() { _, _ = c.Write(msg) }()
			got, err := io.ReadAll(c) // nil error: io.EOF after close_notify
			require.NoError(t, err)
			require.True(t, bytes.Equal(msg, got))
			require.Equal(t, v, c.ConnectionState().Version)
			_ = c.Close()
			srv := f.next(t).(*rec)
			require.ErrorIs(t, srv.waitLost(t, 10*time.Second), transports.ErrConnectionDone)
		}
	})
}

// Truncation, following crypto/tls: a peer that closes TCP without
// close_notify at a record boundary ends the stream as io.EOF (done); one that
// stops in the middle of a record is lost with io.ErrUnexpectedEOF.
func TestTruncation(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		p := testPKI(t)
		h := reactortest.Start(t, kind)
		addr, f := serve(t, h, p.server(), gyretls.Options{}, func() transports.Protocol { r := newRec(); r.onData = echo; return r })
		for _, mid := range []bool{false, true} {
			raw := dialRaw(t, addr)
			hc := &holdConn{Conn: raw}
			c := ctls.Client(hc, p.client())
			require.NoError(t, c.Handshake())
			_, err := c.Write([]byte("ping"))
			require.NoError(t, err)
			buf := make([]byte, 4)
			_, err = io.ReadFull(c, buf)
			require.NoError(t, err)
			if mid {
				hc.mu.Lock()
				hc.hold = true
				hc.mu.Unlock()
				_, err = c.Write([]byte("half a record"))
				require.NoError(t, err)
				hc.mu.Lock()
				_, err = raw.Write(hc.held[:len(hc.held)/2])
				hc.mu.Unlock()
				require.NoError(t, err)
			}
			require.NoError(t, raw.(*net.TCPConn).CloseWrite()) // FIN, no close_notify
			srv := f.next(t).(*rec)
			r := srv.waitLost(t, 10*time.Second)
			if mid {
				require.ErrorIs(t, r, transports.ErrConnectionLost)
				require.ErrorIs(t, r, io.ErrUnexpectedEOF)
				var re *gyretls.RecordError
				require.ErrorAs(t, r, &re)
			} else {
				require.ErrorIs(t, r, transports.ErrConnectionDone, "%v", r)
			}
			_ = raw.Close()
		}
	})
}

// Abort sends no close_notify: the Go client sees a reset (or a bare EOF),
// never a clean close_notify end, and the gyre side's reason is ErrAborted.
func TestAbortSkipsCloseNotify(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		p := testPKI(t)
		h := reactortest.Start(t, kind)
		addr, f := serve(t, h, p.server(), gyretls.Options{}, func() transports.Protocol {
			r := newRec()
			r.onData = func(r *rec, b []byte) { _ = r.tr.Write(b); _ = r.tr.Abort() }
			return r
		})
		c, err := ctls.Dial("tcp", addr, p.client())
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte("x"))
		require.NoError(t, err)
		_, err = io.ReadAll(c)
		require.Error(t, err, "no close_notify must arrive")
		srv := f.next(t).(*rec)
		r := srv.waitLost(t, 10*time.Second)
		require.ErrorIs(t, r, transports.ErrAborted)
	})
}

// LoseConnection against a peer that never reads is bounded by CloseTimeout.
func TestLoseConnectionBounded(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		p := testPKI(t)
		h := reactortest.Start(t, kind)
		big := make([]byte, 1<<20)
		addr, f := serve(t, h, p.server(), gyretls.Options{CloseTimeout: 100 * time.Millisecond}, func() transports.Protocol {
			r := newRec()
			r.onHS = func(r *rec) {
				for range 32 { // 32 MiB: more than the socket buffers hold
					_ = r.tr.Write(big)
				}
				_ = r.tr.LoseConnection()
			}
			return r
		})
		c, err := ctls.Dial("tcp", addr, p.client())
		require.NoError(t, err)
		defer c.Close()
		srv := f.next(t).(*rec)
		r := srv.waitLost(t, 10*time.Second)
		require.ErrorIs(t, r, gyretls.ErrCloseTimeout)
		require.ErrorIs(t, r, transports.ErrConnectionLost)
	})
}

// StartTLS on the server: "OK" written before StartTLS leaves in the clear,
// the rest is TLS; a Go client reads the clear line and then handshakes on
// the same socket.
func TestStartTLSServerWithGoClient(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		p := testPKI(t)
		h := reactortest.Start(t, kind)
		f := newFactory(func() transports.Protocol {
			r := newRec()
			tlsOn := false
			r.onData = func(r *rec, b []byte) {
				if !tlsOn && bytes.Equal(b, []byte("STARTTLS\n")) {
					tlsOn = true
					_ = r.tr.Write([]byte("OK\n"))
					require.NoError(t, r.tr.(gyretls.Transport).StartTLS(p.server(), gyretls.RoleServer))
					_ = r.tr.Write([]byte("secret\n")) // held, then encrypted
					return
				}
				_ = r.tr.Write(b)
			}
			return r
		})
		tp, err := tcpListen(t, h, gyretls.WrapFactory(f, nil, gyretls.RoleServer, gyretls.Options{}))
		require.NoError(t, err)
		raw := dialRaw(t, tp)
		defer raw.Close()
		_, err = raw.Write([]byte("STARTTLS\n"))
		require.NoError(t, err)
		br := bufio.NewReader(raw)
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "OK\n", line)
		require.Zero(t, br.Buffered())
		c := ctls.Client(raw, p.client())
		require.NoError(t, c.Handshake())
		line, err = bufio.NewReader(c).ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "secret\n", line)
		srv := f.next(t).(*rec)
		srv.waitHS(t, 5*time.Second)
		_, err = c.Write([]byte("over tls"))
		require.NoError(t, err)
		require.NoError(t, c.Close())
		require.ErrorIs(t, srv.waitLost(t, 10*time.Second), transports.ErrConnectionDone)
		data, _, _, _ := srv.get()
		require.Equal(t, "STARTTLS\nover tls", string(data))
		h.Do(func() {
			require.ErrorIs(t, srv.tr.(gyretls.Transport).StartTLS(p.server(), gyretls.RoleServer), transports.ErrClosed)
		})
	})
}

// StartTLS on both gyre sides (client role on the connecting side).
func TestStartTLSGyreBothSides(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		p := testPKI(t)
		h := reactortest.Start(t, kind)
		f := newFactory(func() transports.Protocol {
			r := newRec()
			on := false
			r.onData = func(r *rec, b []byte) {
				if !on {
					on = true
					_ = r.tr.Write([]byte("GO"))
					_ = r.tr.(gyretls.Transport).StartTLS(p.server(), gyretls.RoleServer)
					return
				}
				_ = r.tr.Write(b)
			}
			return r
		})
		addr, err := tcpListen(t, h, gyretls.WrapFactory(f, nil, gyretls.RoleServer, gyretls.Options{}))
		require.NoError(t, err)
		cli := newRec()
		cli.onMade = func(r *rec) { _ = r.tr.Write([]byte("STARTTLS")) }
		cliOn := false
		cli.onData = func(r *rec, b []byte) {
			if !cliOn {
				cliOn = true
				require.Equal(t, "GO", string(b))
				require.NoError(t, r.tr.(gyretls.Transport).StartTLS(p.client(), gyretls.RoleClient))
				require.ErrorIs(t, r.tr.(gyretls.Transport).StartTLS(p.client(), gyretls.RoleClient), gyretls.ErrTLSStarted)
				_ = r.tr.Write([]byte("hello"))
				return
			}
			if bytes.HasSuffix(r.data, []byte("hello")) {
				_ = r.tr.LoseConnection()
			}
		}
		_, err = tcpConnect(h, addr, gyretls.WrapClientFactory(newClient(cli), nil, gyretls.RoleClient, gyretls.Options{}))
		require.NoError(t, err)
		srv := f.next(t).(*rec)
		cs := cli.waitHS(t, 10*time.Second)
		require.Equal(t, "localhost", cs.ServerName)
		require.ErrorIs(t, cli.waitLost(t, 10*time.Second), transports.ErrConnectionDone)
		require.ErrorIs(t, srv.waitLost(t, 10*time.Second), transports.ErrConnectionDone)
		data, _, _, _ := cli.get()
		require.Equal(t, "GOhello", string(data))
	})
}

// Half-close: the client's CloseWrite sends close_notify + FIN; a
// half-closeable server gets ReadConnectionLost, still writes its answer,
// then closes; the client gets WriteConnectionLost and the answer.
func TestHalfClose(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		p := testPKI(t)
		h := reactortest.Start(t, kind)
		addr, f := serve(t, h, p.server(), gyretls.Options{}, func() transports.Protocol {
			r := newRec()
			r.onReadEOF = func(r *rec) {
				_ = r.tr.Write([]byte("got " + string(r.data)))
				_ = r.tr.LoseConnection()
			}
			return hrec{r}
		})
		cli := newRec()
		cli.onHS = func(r *rec) {
			_ = r.tr.Write([]byte("question"))
			require.NoError(t, r.tr.CloseWrite())
			require.ErrorIs(t, r.tr.Write([]byte("late")), transports.ErrClosed)
		}
		_, err := gyretls.Connect(h.Loop, addr, newClient(hrec{cli}), p.client(), gyretls.ConnectOptions{})
		require.NoError(t, err)
		srvP := f.next(t).(hrec)
		require.ErrorIs(t, cli.waitLost(t, 10*time.Second), transports.ErrConnectionDone)
		require.ErrorIs(t, srvP.waitLost(t, 10*time.Second), transports.ErrConnectionDone)
		data, _, _, _ := cli.get()
		require.Equal(t, "got question", string(data))
		cli.mu.Lock()
		require.Equal(t, 1, cli.writeEOF)
		require.Equal(t, 1, cli.readEOF)
		cli.mu.Unlock()
		srvP.mu.Lock()
		require.Equal(t, 1, srvP.readEOF)
		srvP.mu.Unlock()
	})
}

// PauseReading stops DataReceived (decrypted bytes wait); ResumeReading
// delivers them on a later turn, in order.
func TestPauseResume(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		p := testPKI(t)
		h := reactortest.Start(t, kind)
		var paused sync.Map
		addr, f := serve(t, h, p.server(), gyretls.Options{}, func() transports.Protocol {
			r := newRec()
			r.onMade = func(r *rec) { r.tr.PauseReading() } // during the handshake
			r.onData = func(r *rec, b []byte) {
				if _, ok := paused.Load(r); ok {
					t.Errorf("DataReceived while paused")
				}
			}
			return r
		})
		c, err := ctls.Dial("tcp", addr, p.client())
		require.NoError(t, err)
		defer c.Close()
		msg := pattern(200000)
		go func() { _, _ = c.Write(msg) }()
		srv := f.next(t).(*rec)
		srv.waitHS(t, 5*time.Second)
		paused.Store(srv, true)
		time.Sleep(50 * time.Millisecond)
		require.Zero(t, srv.dataLen())
		h.Do(func() { paused.Delete(srv); srv.tr.ResumeReading() })
		require.True(t, h.Eventually(10*time.Second, func() bool { return srv.dataLen() == len(msg) }))
		// pause again in the middle of a stream
		h.Do(func() { srv.tr.PauseReading(); paused.Store(srv, true) })
		go func() { _, _ = c.Write(msg) }()
		time.Sleep(50 * time.Millisecond)
		require.Equal(t, len(msg), srv.dataLen())
		h.Do(func() { paused.Delete(srv); srv.tr.ResumeReading() })
		require.True(t, h.Eventually(10*time.Second, func() bool { return srv.dataLen() == 2*len(msg) }))
		data, _, _, _ := srv.get()
		require.True(t, bytes.Equal(append(append([]byte(nil), msg...), msg...), data))
	})
}

// A push producer on a TLS transport is paused when the peer does not read
// (the records queue on the underlying transport) and resumed when it does;
// it is stopped when the connection ends.
func TestProducer(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		p := testPKI(t)
		h := reactortest.Start(t, kind)
		prod := &pushProd{}
		addr, f := serve(t, h, p.server(), gyretls.Options{}, func() transports.Protocol {
			r := newRec()
			r.onHS = func(r *rec) {
				prod.tr = r.tr
				require.NoError(t, r.tr.RegisterProducer(prod, true))
				prod.ResumeProducing()
			}
			return r
		})
		c, err := ctls.Dial("tcp", addr, p.client())
		require.NoError(t, err)
		srv := f.next(t).(*rec)
		srv.waitHS(t, 5*time.Second)
		require.True(t, h.Eventually(10*time.Second, func() bool { return prod.pauses > 0 }))
		var sent int
		h.Do(func() { sent = prod.sent })
		require.Less(t, sent, 64<<20, "producer must stop at the watermark")
		buf := make([]byte, 64<<10)
		n := 0
		for n < sent+(1<<20) {
			k, err := c.Read(buf)
			require.NoError(t, err)
			n += k
		}
		require.True(t, h.Eventually(10*time.Second, func() bool { return prod.resumes > 0 }))
		_ = c.Close()
		srv.waitLost(t, 10*time.Second)
		require.True(t, h.Eventually(10*time.Second, func() bool { return prod.stopped == 1 }))
	})
}

type pushProd struct {
	tr              transports.Transport
	paused          bool
	sent            int
	pauses, resumes int
	stopped         int
	chunk           [16 << 10]byte
}

func (p *pushProd) PauseProducing() { p.paused = true; p.pauses++ }
func (p *pushProd) ResumeProducing() {
	if p.sent > 0 {
		p.resumes++
	}
	p.paused = false
	for !p.paused && p.stopped == 0 && p.sent < 256<<20 {
		if p.tr.Write(p.chunk[:]) != nil {
			return
		}
		p.sent += len(p.chunk)
	}
}
func (p *pushProd) StopProducing() { p.stopped++ }

var _ = errors.Is

// The handshake goroutine ends with the connection: at loop Stop while a
// handshake waits for a silent peer, and when the peer resets mid-handshake.
// The wrapped protocol gets ConnectionLost once.
func TestHandshakeGoroutineEnds(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		p := testPKI(t)
		h := reactortest.Start(t, kind)
		f := newFactory(func() transports.Protocol { return newRec() })
		port, err := gyretls.Listen(h.Loop, "127.0.0.1:0", f, p.server(), gyretls.ListenOptions{})
		require.NoError(t, err)
		// reset mid-handshake
		c1 := dialRaw(t, port.Addr().String())
		_, err = c1.Write([]byte{0x16, 0x03, 0x01, 0x01, 0x00, 1, 2, 3}) // a partial ClientHello
		require.NoError(t, err)
		s1 := f.next(t).(*rec)
		require.NoError(t, c1.(*net.TCPConn).SetLinger(0))
		require.NoError(t, c1.Close())
		r1 := s1.waitLost(t, 10*time.Second)
		require.ErrorIs(t, r1, transports.ErrConnectionLost)
		var he *gyretls.HandshakeError
		require.ErrorAs(t, r1, &he, "%v", r1)
		// silent peer, then Stop
		c2 := dialRaw(t, port.Addr().String())
		defer c2.Close()
		s2 := f.next(t).(*rec)
		h.StopWait()
		s2.waitLost(t, 10*time.Second)
	})
}
