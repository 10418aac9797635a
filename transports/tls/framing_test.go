package gyretls_test

import (
	ctls "crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	gyretls "github.com/gyre-io/gyre/transports/tls"
)

// trickleConn writes in pieces of n bytes with a pause between them, so
// that records (and their headers) reach the server split across reads.
type trickleConn struct {
	net.Conn
	n int
}

func (c *trickleConn) Write(b []byte) (int, error) {
	if c.n == 0 {
		return c.Conn.Write(b)
	}
	w := 0
	for len(b) > 0 {
		k := min(c.n, len(b))
		m, err := c.Conn.Write(b[:k])
		w += m
		if err != nil {
			return w, err
		}
		b = b[k:]
		time.Sleep(200 * time.Microsecond)
	}
	return w, nil
}

// Records that arrive split at any byte — inside the header, inside the body,
// several per read — are decrypted whole and in order (the pipe frames them
// across reads), with TLS 1.2 and 1.3.
func TestFramingSplitRecords(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		p := testPKI(t)
		h := reactortest.Start(t, kind)
		addr, f := serve(t, h, p.server(), gyretls.Options{}, func() transports.Protocol { r := newRec(); r.onData = echo; return r })
		for _, v := range []uint16{ctls.VersionTLS12, ctls.VersionTLS13} {
			for _, piece := range []int{1, 3, 7, 1000} {
				cfg := p.client()
				cfg.MinVersion, cfg.MaxVersion = v, v
				raw := dialRaw(t, addr)
				tc := &trickleConn{Conn: raw}
				c := ctls.Client(tc, cfg)
				require.NoError(t, c.Handshake())
				tc.n = piece // the handshake is done: the client writes no more from the reading side
				srv := f.next(t).(*rec)
				msg := pattern(300)
				if piece == 1000 {
					msg = pattern(100 << 10)
				}
				go func() { // small records, then big ones
					for i := 0; i < len(msg); i += 50 {
						end := i + 50
						if i >= len(msg)/2 {
							end = len(msg)
						}
						if _, err := c.Write(msg[i:end]); err != nil {
							return
						}
						i = end - 50
					}
				}()
				_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
				got := make([]byte, len(msg))
				_, err := io.ReadFull(c, got)
				require.NoError(t, err, "TLS %x, pieces of %d", v, piece)
				require.Equal(t, msg, got)
				require.Equal(t, msg, func() []byte { d, _, _, _ := srv.get(); return d }())
				_ = c.Close()
				_ = srv.waitLost(t, 10*time.Second)
			}
		}
	})
}

// After the handshake, a record header crypto/tls rejects by itself fails
// the connection at once, without waiting for the body it announces (the
// pipe stops framing and lets crypto/tls see it).
func TestFramingBadHeader(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		p := testPKI(t)
		h := reactortest.Start(t, kind)
		addr, f := serve(t, h, p.server(), gyretls.Options{}, func() transports.Protocol { r := newRec(); r.onData = echo; return r })
		for _, bad := range []string{"GET / HTTP/1.1\r\n", "\x17\x03\x03\xff\xff", "\x17\x02\x03\x00\x20"} {
			raw := dialRaw(t, addr)
			c := ctls.Client(raw, p.client())
			require.NoError(t, c.Handshake())
			_, err := c.Write([]byte("ping"))
			require.NoError(t, err)
			_, err = io.ReadFull(c, make([]byte, 4))
			require.NoError(t, err)
			srv := f.next(t).(*rec)
			_, err = raw.Write([]byte(bad))
			require.NoError(t, err)
			r := srv.waitLost(t, 5*time.Second) // the connection stays open on our side
			var re *gyretls.RecordError
			require.ErrorAs(t, r, &re, "%q: %v", bad, r)
			_ = raw.Close()
		}
	})
}
