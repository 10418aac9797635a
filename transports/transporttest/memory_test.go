package transporttest_test

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// clientFactory records the ClientFactory callbacks.
type clientFactory struct {
	events []string
	errs   []error
	addrs  []net.Addr
	refuse bool
	protos []*recorder
}

func (f *clientFactory) BuildProtocol(addr net.Addr) transports.Protocol {
	f.addrs = append(f.addrs, addr)
	f.events = append(f.events, "build")
	if f.refuse {
		return nil
	}
	p := &recorder{}
	f.protos = append(f.protos, p)
	return p
}
func (f *clientFactory) StartedConnecting(transports.Connector) {
	f.events = append(f.events, "started")
}
func (f *clientFactory) ClientConnectionFailed(_ transports.Connector, reason error) {
	f.events = append(f.events, "failed")
	f.errs = append(f.errs, reason)
}
func (f *clientFactory) ClientConnectionLost(_ transports.Connector, reason error) {
	f.events = append(f.events, "lost")
	f.errs = append(f.errs, reason)
}

type listenOpts struct{ Backlog int }

func TestMemoryReactorListen(t *testing.T) {
	m := transporttest.NewMemoryReactor(nil)
	require.Nil(t, m.LastListen())
	f := &clientFactory{}
	port, err := m.ListenTCP("127.0.0.1:0", f, listenOpts{Backlog: 7})
	require.NoError(t, err)
	rec := m.LastListen()
	require.NotNil(t, rec)
	require.Len(t, m.Listens, 1)
	require.Equal(t, "127.0.0.1:0", rec.Addr)
	require.Equal(t, listenOpts{Backlog: 7}, rec.Options)
	require.Same(t, f, rec.Factory)
	require.Same(t, port, rec.Port)
	ta, ok := port.Addr().(*net.TCPAddr)
	require.True(t, ok)
	require.NotZero(t, ta.Port, "port 0 gets a fake number")
	require.Equal(t, "127.0.0.1", ta.IP.String())

	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 9), Port: 5555}
	proto, tr, err := rec.Port.Accept(remote)
	require.NoError(t, err)
	require.Same(t, f.protos[0], proto)
	require.Equal(t, []net.Addr{remote}, f.addrs)
	require.Equal(t, 1, f.protos[0].made)
	require.Equal(t, port.Addr(), tr.LocalAddr())
	require.Equal(t, remote, tr.RemoteAddr())
	require.Same(t, m.Clock(), tr.Clock())
	require.Equal(t, 1, rec.Port.Accepted())

	f.refuse = true
	proto, tr, err = rec.Port.Accept(nil)
	require.NoError(t, err)
	require.Nil(t, proto)
	require.Nil(t, tr)

	require.NoError(t, port.Close())
	require.True(t, rec.Port.Closed())
	require.ErrorIs(t, port.Close(), transports.ErrClosed)
	_, _, err = rec.Port.Accept(nil)
	require.ErrorIs(t, err, transports.ErrClosed)

	// A named port keeps its number; a host name stays a name.
	p2, err := m.ListenTCP(":8080", f, nil)
	require.NoError(t, err)
	require.Equal(t, 8080, p2.Addr().(*net.TCPAddr).Port)
	p3, err := m.ListenTCP("localhost:0", f, nil)
	require.NoError(t, err)
	require.Equal(t, "localhost:0", p3.Addr().String())
}

func TestMemoryReactorConnectSucceedThenLose(t *testing.T) {
	clk := clock.NewFake()
	m := transporttest.NewMemoryReactor(clk)
	f := &clientFactory{}
	conn, err := m.ConnectTCP("127.0.0.3:6379", f, "opts")
	require.NoError(t, err)
	rec := m.LastConnect()
	require.Equal(t, "127.0.0.3:6379", rec.Addr)
	require.Equal(t, "opts", rec.Options)
	require.Same(t, f, rec.Factory)
	c := rec.Connector
	require.Same(t, conn, c)
	require.Equal(t, "127.0.0.3:6379", conn.Destination().String())
	require.Equal(t, []string{"started"}, f.events, "StartedConnecting inside ConnectTCP")
	require.Equal(t, transporttest.Connecting, c.State())
	require.ErrorIs(t, conn.Connect(), transporttest.ErrAlreadyConnecting)

	proto, tr, err := c.Succeed()
	require.NoError(t, err)
	require.Equal(t, transporttest.Connected, c.State())
	require.Same(t, tr, c.Transport())
	require.Equal(t, conn.Destination(), tr.RemoteAddr())
	require.Same(t, clk, tr.Clock())
	require.Equal(t, 1, f.protos[0].made)
	require.Same(t, f.protos[0], proto)
	_, _, err = c.Succeed()
	require.ErrorIs(t, err, transports.ErrNotConnected)

	conn.Disconnect()
	require.True(t, tr.Disconnecting(), "Disconnect asks the transport to close")
	require.Equal(t, transporttest.Connected, c.State())
	tr.EndConnection(nil)
	require.Equal(t, []string{"started", "build", "lost"}, f.events)
	require.ErrorIs(t, f.errs[0], transports.ErrConnectionDone)
	require.ErrorIs(t, f.protos[0].lost[0], transports.ErrConnectionDone)
	require.Equal(t, transporttest.Disconnected, c.State())
	require.Nil(t, c.Transport())

	// Reconnect (what a reconnecting factory does).
	require.NoError(t, conn.Connect())
	require.Equal(t, 2, c.Attempts())
	require.NoError(t, c.Fail(transports.Lost(syscall.ECONNREFUSED)))
	require.Equal(t, []string{"started", "build", "lost", "started", "failed"}, f.events)
	require.ErrorIs(t, f.errs[1], syscall.ECONNREFUSED)
	require.ErrorIs(t, c.Fail(errors.New("x")), transports.ErrNotConnected)
}

func TestMemoryReactorStopConnecting(t *testing.T) {
	m := transporttest.NewMemoryReactor(nil)
	f := &clientFactory{}
	conn, err := m.ConnectTCP("example.com:80", f, nil)
	require.NoError(t, err)
	require.Equal(t, "example.com:80", conn.Destination().String())
	require.Equal(t, "tcp", conn.Destination().Network())
	require.NoError(t, conn.StopConnecting())
	require.ErrorIs(t, f.errs[0], transports.ErrConnectStopped)
	require.ErrorIs(t, conn.StopConnecting(), transports.ErrNotConnected)

	require.NoError(t, conn.Connect())
	conn.Disconnect()
	require.Equal(t, []string{"started", "failed", "started", "failed"}, f.events)
	require.ErrorIs(t, f.errs[1], transports.ErrConnectStopped)
	conn.Disconnect() // nothing to do
	require.Len(t, f.events, 4)
}

func TestMemoryReactorFactoryRefuses(t *testing.T) {
	m := transporttest.NewMemoryReactor(nil)
	f := &clientFactory{refuse: true}
	_, err := m.ConnectTCP("127.0.0.1:1", f, nil)
	require.NoError(t, err)
	proto, tr, err := m.LastConnect().Connector.Succeed()
	require.NoError(t, err)
	require.Nil(t, proto)
	require.Nil(t, tr)
	require.Equal(t, []string{"started", "build", "failed"}, f.events)
	require.ErrorIs(t, f.errs[0], transports.ErrConnectionLost)
}

func TestMemoryReactorRaising(t *testing.T) {
	m := transporttest.NewMemoryReactor(nil)
	boom := errors.New("address in use")
	m.ListenErr = boom
	m.ConnectErr = syscall.ENETUNREACH
	_, err := m.ListenTCP(":80", &clientFactory{}, nil)
	require.ErrorIs(t, err, boom)
	f := &clientFactory{}
	_, err = m.ConnectTCP("127.0.0.1:80", f, nil)
	require.ErrorIs(t, err, syscall.ENETUNREACH)
	require.Empty(t, m.Listens)
	require.Empty(t, m.Connects)
	require.Empty(t, f.events)
}

func TestMemoryReactorIsAClock(t *testing.T) {
	clk := clock.NewFake()
	m := transporttest.NewMemoryReactor(clk)
	require.Equal(t, clk.Now(), m.Now())
	ran := false
	m.CallLater(time.Second, func() { ran = true })
	clk.Advance(time.Second)
	require.True(t, ran)
	_, ok := transporttest.NewMemoryReactor(nil).Clock().(*clock.Fake)
	require.True(t, ok)
}
