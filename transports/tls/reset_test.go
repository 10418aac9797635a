package gyretls_test

import (
	ctls "crypto/tls"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
	gyretls "github.com/gyre-io/gyre/transports/tls"
)

// A client that rejects the server's certificate sends its alert and then
// resets the connection: the server's reason still reaches the alert
// (the bytes arrived before the reset), and wraps the loss as well.
// Both ways a Go client ends: tls.Dial (which closes with records unread:
// RST) and an explicit RST (SO_LINGER 0) right after the failed handshake.
func TestHandshakeAlertBeforeReset(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		p := testPKI(t)
		h := reactortest.Start(t, kind)
		addr, f := serve(t, h, p.server(), gyretls.Options{}, func() transports.Protocol { return newRec() })
		bad := &ctls.Config{ServerName: "localhost"} // system roots: the test CA is unknown
		for i := range 10 {
			if i%2 == 0 {
				_, err := ctls.Dial("tcp", addr, bad)
				require.Error(t, err)
			} else {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				require.NoError(t, err)
				require.Error(t, ctls.Client(c, bad).Handshake())
				require.NoError(t, c.(*net.TCPConn).SetLinger(0))
				require.NoError(t, c.Close())
			}
			srv := f.next(t).(*rec)
			r := srv.waitLost(t, 10*time.Second)
			require.ErrorIs(t, r, transports.ErrConnectionLost)
			var alert ctls.AlertError
			require.ErrorAs(t, r, &alert, "round %d: %v", i, r)
			require.Equal(t, ctls.AlertError(42), alert, "bad_certificate") // RFC 8446 §6.2
			var he *gyretls.HandshakeError
			require.ErrorAs(t, r, &he)
			_, _, st, _ := srv.get()
			require.Nil(t, st)
		}
	})
}

// spyConn is the TLS layer as the TCP transport's protocol, telling the test
// when the underlying connection was lost.
type spyConn struct {
	*gyretls.Conn
	underLost chan error
}

func (s spyConn) ConnectionLost(reason error) {
	s.underLost <- reason
	s.Conn.ConnectionLost(reason)
}

type spyFactory struct {
	cfg *ctls.Config
	f   *factoryOf
	ch  chan spyConn
}

func (s *spyFactory) BuildProtocol(a net.Addr) transports.Protocol {
	c := spyConn{gyretls.Wrap(s.f.BuildProtocol(a), s.cfg, gyretls.RoleServer, gyretls.Options{}), make(chan error, 1)}
	s.ch <- c
	return c
}

var errRejected = errors.New("test: client rejected")

// The peer resets the connection while the server's handshake goroutine is
// busy with what it sent (here: held in GetConfigForClient). The wrapped
// protocol's ConnectionLost waits for the goroutine: then the handshake's
// own error is the reason, with the reset as HandshakeError.Lost; if the
// loop stops first, the stop ends the wait with the loss, exactly once.
func TestHandshakeLostWhileBusy(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		for _, stop := range []bool{false, true} {
			p := testPKI(t)
			h := reactortest.Start(t, kind)
			entered, release := make(chan struct{}, 1), make(chan struct{})
			cfg := p.server()
			cfg.GetConfigForClient = func(*ctls.ClientHelloInfo) (*ctls.Config, error) {
				entered <- struct{}{}
				<-release
				return nil, errRejected
			}
			sf := &spyFactory{cfg: cfg, f: newFactory(func() transports.Protocol { return newRec() }), ch: make(chan spyConn, 1)}
			port, err := tcp.Listen(h.Loop, "127.0.0.1:0", sf, tcp.ListenOptions{})
			require.NoError(t, err)
			c := dialRaw(t, port.Addr().String())
			hsDone := make(chan error, 1)
			go func() { hsDone <- ctls.Client(c, p.client()).Handshake() }()
			<-entered
			require.NoError(t, c.(*net.TCPConn).SetLinger(0))
			require.NoError(t, c.Close()) // RST while the server's goroutine is busy
			<-hsDone
			spy := <-sf.ch
			srv := sf.f.next(t).(*rec)
			under := <-spy.underLost
			require.ErrorIs(t, under, syscall.ECONNRESET)
			time.Sleep(10 * time.Millisecond)
			h.Do(func() { _ = port.Close() })
			_, lost, _, _ := srv.get()
			require.Zero(t, lost, "ConnectionLost must wait for the handshake goroutine")
			if stop {
				h.StopWait()
				r := srv.waitLost(t, 10*time.Second)
				require.ErrorIs(t, r, syscall.ECONNRESET)
				require.NotErrorIs(t, r, errRejected)
				close(release) // the goroutine ends; its report finds the loop stopped
				continue
			}
			close(release)
			r := srv.waitLost(t, 10*time.Second)
			require.ErrorIs(t, r, transports.ErrConnectionLost)
			require.ErrorIs(t, r, errRejected)
			require.ErrorIs(t, r, syscall.ECONNRESET)
			var he *gyretls.HandshakeError
			require.ErrorAs(t, r, &he)
			require.ErrorIs(t, he.Lost, syscall.ECONNRESET)
			h.StopWait()
		}
	})
}
