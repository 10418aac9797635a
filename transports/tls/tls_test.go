package gyretls_test

import (
	"bytes"
	ctls "crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	gyretls "github.com/gyre-io/gyre/transports/tls"
)

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// A gyre TLS client and server echo 64 B and 1 MiB; both see the handshake
// (ALPN and SNI), and a LoseConnection from the client ends both cleanly.
func TestEchoGyreToGyre(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		for _, v := range []uint16{ctls.VersionTLS12, ctls.VersionTLS13} {
			p := testPKI(t)
			h := reactortest.Start(t, kind)
			srvCfg := p.server()
			srvCfg.NextProtos = []string{"gyre/1", "h2"}
			srvCfg.MaxVersion = v
			f := newFactory(func() transports.Protocol { r := newRec(); r.onData = echo; return r })
			port, err := gyretls.Listen(h.Loop, "127.0.0.1:0", f, srvCfg, gyretls.ListenOptions{})
			require.NoError(t, err)
			want := append(pattern(64), pattern(1<<20)...)
			cli := newRec()
			cli.onMade = func(r *rec) { // written before the handshake completes: held, then sent
				_ = r.tr.Write(want[:64])
				_ = r.tr.Write(want[64:])
			}
			ccfg := p.client()
			ccfg.NextProtos = []string{"gyre/1"}
			_, err = gyretls.Connect(h.Loop, port.Addr().String(), newClient(cli), ccfg, gyretls.ConnectOptions{})
			require.NoError(t, err)
			srv := f.next(t).(*rec)
			cs := cli.waitHS(t, 10*time.Second)
			ss := srv.waitHS(t, 10*time.Second)
			require.Equal(t, v, cs.Version)
			require.Equal(t, v, ss.Version)
			require.Equal(t, "gyre/1", cs.NegotiatedProtocol)
			require.Equal(t, "gyre/1", ss.NegotiatedProtocol)
			require.Equal(t, "localhost", ss.ServerName)
			require.NotEmpty(t, cs.PeerCertificates)
			require.True(t, h.Eventually(10*time.Second, func() bool { return cli.dataLen() == len(want) }))
			got, _, _, _ := cli.get()
			require.True(t, bytes.Equal(want, got))
			h.Do(func() {
				st, ok := cli.tr.(gyretls.Transport).ConnectionState()
				require.True(t, ok)
				require.Equal(t, "gyre/1", st.NegotiatedProtocol)
				_ = cli.tr.LoseConnection()
			})
			require.ErrorIs(t, cli.waitLost(t, 10*time.Second), transports.ErrConnectionDone)
			r := srv.waitLost(t, 10*time.Second)
			require.ErrorIs(t, r, transports.ErrConnectionDone, "server reason %v", r)
			h.Do(func() { _ = port.Close() })
		}
	})
}

// A certificate the client cannot verify: the client's reason reaches
// *tls.CertificateVerificationError, the server's the alert it received.
func TestHandshakeFailureReasons(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		p := testPKI(t)
		h := reactortest.Start(t, kind)
		f := newFactory(func() transports.Protocol { return newRec() })
		port, err := gyretls.Listen(h.Loop, "127.0.0.1:0", f, p.server(), gyretls.ListenOptions{})
		require.NoError(t, err)
		cli := newRec()
		_, err = gyretls.Connect(h.Loop, port.Addr().String(), newClient(cli), &ctls.Config{ServerName: "localhost"}, gyretls.ConnectOptions{})
		require.NoError(t, err)
		srv := f.next(t).(*rec)
		cr := cli.waitLost(t, 10*time.Second)
		sr := srv.waitLost(t, 10*time.Second)
		require.ErrorIs(t, cr, transports.ErrConnectionLost)
		require.ErrorIs(t, sr, transports.ErrConnectionLost)
		var cve *ctls.CertificateVerificationError
		require.ErrorAs(t, cr, &cve, "client: %v", cr)
		var he *gyretls.HandshakeError
		require.ErrorAs(t, cr, &he)
		var alert ctls.AlertError
		require.ErrorAs(t, sr, &alert, "server: %v", sr)
		require.Equal(t, ctls.AlertError(42), alert, "bad_certificate") // RFC 8446 §6.2
		_, _, st, _ := cli.get()
		require.Nil(t, st, "no HandshakeCompleted on failure")
		h.Do(func() { _ = port.Close() })
	})
}

// A client that connects and says nothing: the server gives up after the
// handshake timeout with a reason matching ErrHandshakeTimeout.
func TestHandshakeTimeout(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		p := testPKI(t)
		h := reactortest.Start(t, kind)
		f := newFactory(func() transports.Protocol { return newRec() })
		port, err := gyretls.Listen(h.Loop, "127.0.0.1:0", f, p.server(),
			gyretls.ListenOptions{Options: gyretls.Options{HandshakeTimeout: 50 * time.Millisecond}})
		require.NoError(t, err)
		c := dialRaw(t, port.Addr().String())
		defer c.Close()
		srv := f.next(t).(*rec)
		r := srv.waitLost(t, 10*time.Second)
		require.ErrorIs(t, r, gyretls.ErrHandshakeTimeout)
		require.ErrorIs(t, r, transports.ErrConnectionLost)
		require.False(t, errors.Is(r, transports.ErrConnectionDone))
		h.Do(func() { _ = port.Close() })
	})
}
