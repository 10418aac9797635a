package gyretls_test

import (
	"bytes"
	ctls "crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	gyretls "github.com/gyre-io/gyre/transports/tls"
)

// pipelineConn is a STARTTLS client that does not wait: it sends prefix in
// the same write as the first bytes crypto/tls writes (the ClientHello: one
// segment, one chunk on the server), and takes the server's clear answer
// (answer, e.g. "OK\n") off the stream before crypto/tls reads.
type pipelineConn struct {
	net.Conn
	once, rOnce sync.Once
	prefix      []byte
	answer      string
	gotAnswer   string
}

func (c *pipelineConn) Read(p []byte) (int, error) {
	var err error
	c.rOnce.Do(func() {
		b := make([]byte, len(c.answer))
		_, err = io.ReadFull(c.Conn, b)
		c.gotAnswer = string(b)
	})
	if err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *pipelineConn) Write(p []byte) (int, error) {
	first := false
	c.once.Do(func() { first = true })
	if !first {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(append(append([]byte(nil), c.prefix...), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// A client pipelines "STARTTLS\n" and its ClientHello without waiting for
// the answer: the server's protocol reads the command and hands the rest of
// the chunk to StartTLSWith; the handshake completes at once (no
// HandshakeTimeout wait) and data flows both ways.
func TestStartTLSWithPipelinedClientHello(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		p := testPKI(t)
		h := reactortest.Start(t, kind)
		var restLen int // loop only, read after the handshake
		f := newFactory(func() transports.Protocol {
			r := newRec()
			var buf []byte
			tlsOn := false
			r.onData = func(r *rec, b []byte) {
				if tlsOn {
					_ = r.tr.Write(b)
					return
				}
				buf = append(buf, b...)
				i := bytes.IndexByte(buf, '\n')
				if i < 0 {
					return
				}
				require.Equal(t, "STARTTLS", string(buf[:i]))
				tlsOn = true
				rest := buf[i+1:]
				restLen = len(rest)
				_ = r.tr.Write([]byte("OK\n"))
				require.NoError(t, r.tr.(gyretls.Transport).StartTLSWith(p.server(), gyretls.RoleServer, rest))
				buf = nil
			}
			return r
		})
		// A handshake left waiting for its ClientHello would fail only at the
		// (default, 10 s) HandshakeTimeout; the client's deadline is shorter.
		addr, err := tcpListen(t, h, gyretls.WrapFactory(f, nil, gyretls.RoleServer, gyretls.Options{}))
		require.NoError(t, err)
		raw := dialRaw(t, addr)
		defer raw.Close()
		require.NoError(t, raw.SetDeadline(time.Now().Add(5*time.Second)))
		pc := &pipelineConn{Conn: raw, prefix: []byte("STARTTLS\n"), answer: "OK\n"}
		c := ctls.Client(pc, p.client())
		require.NoError(t, c.Handshake())
		require.Equal(t, "OK\n", pc.gotAnswer)
		srv := f.next(t).(*rec)
		srv.waitHS(t, 5*time.Second)
		h.Do(func() {
			require.Positive(t, restLen, "the ClientHello came in the STARTTLS chunk")
			require.Equal(t, "*gyretls.Conn", fmt.Sprintf("%T", srv.tr), "not to be confused with crypto/tls's *tls.Conn")
		})
		_, err = c.Write([]byte("ping"))
		require.NoError(t, err)
		b := make([]byte, 4)
		_, err = io.ReadFull(c, b)
		require.NoError(t, err)
		require.Equal(t, "ping", string(b))
		require.NoError(t, c.Close())
		require.ErrorIs(t, srv.waitLost(t, 10*time.Second), transports.ErrConnectionDone)
		h.Do(func() {
			require.ErrorIs(t, srv.tr.(gyretls.Transport).StartTLSWith(p.server(), gyretls.RoleServer, nil), transports.ErrClosed)
		})
	})
}
