package transports_test

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rec records what a protocol is told.
type rec struct {
	t      transports.Transport
	events []string
	data   string
}

func (r *rec) ConnectionMade(t transports.Transport) { r.t = t; r.events = append(r.events, "made") }
func (r *rec) DataReceived(p []byte)                 { r.data += string(p) }
func (r *rec) ConnectionLost(error)                  { r.events = append(r.events, "lost") }

type halfRec struct{ rec }

func (h *halfRec) ReadConnectionLost()  { h.events = append(h.events, "readLost") }
func (h *halfRec) WriteConnectionLost() { h.events = append(h.events, "writeLost") }

// outcome records done's calls.
type outcome struct {
	calls int
	t     transports.Transport
	err   error
	// events of the protocol at the moment done ran
	seen []string
	p    *rec
}

func (o *outcome) done(t transports.Transport, err error) {
	o.calls++
	o.t, o.err = t, err
	if o.p != nil {
		o.seen = append([]string(nil), o.p.events...)
	}
}

func TestConnectProtocolSuccess(t *testing.T) {
	m := transporttest.NewMemoryReactor(nil)
	p := &rec{}
	o := &outcome{p: p}
	opts := struct{ X int }{7}
	c, err := transports.ConnectProtocol(context.Background(), m, "tcp", "127.0.0.1:80", p, opts, o.done)
	require.NoError(t, err)
	call := m.LastConnect()
	require.Equal(t, "tcp", call.Network)
	require.Equal(t, opts, call.Options, "options passed through as given")
	require.Same(t, call.Connector, c)
	require.Zero(t, o.calls, "nothing reported before the outcome")

	_, tr, err := call.Connector.Succeed()
	require.NoError(t, err)
	require.Equal(t, 1, o.calls)
	require.NoError(t, o.err)
	require.Same(t, tr, o.t)
	require.Same(t, tr, p.t, "p gets the real transport")
	require.Equal(t, []string{"made"}, o.seen, "done runs after ConnectionMade")
	require.Same(t, m, tr.Reactor(), "a transport from a MemoryReactor reports it")

	tr.Receive([]byte("hi"))
	require.Equal(t, "hi", p.data)
	tr.EndConnection(nil)
	require.Equal(t, []string{"made", "lost"}, p.events)
	require.Equal(t, 1, o.calls)
}

func TestConnectProtocolFailure(t *testing.T) {
	m := transporttest.NewMemoryReactor(nil)
	p := &rec{}
	o := &outcome{}
	_, err := transports.ConnectProtocol(context.Background(), m, "tcp", "127.0.0.1:80", p, nil, o.done)
	require.NoError(t, err)
	require.NoError(t, m.LastConnect().Connector.Fail(syscall.ECONNREFUSED))
	require.Equal(t, 1, o.calls)
	require.ErrorIs(t, o.err, syscall.ECONNREFUSED)
	require.Nil(t, o.t)
	require.Empty(t, p.events, "p is never called after a failure")
}

func TestConnectProtocolUnix(t *testing.T) {
	m := transporttest.NewMemoryReactor(nil)
	p := &rec{}
	o := &outcome{}
	_, err := transports.ConnectProtocol(context.Background(), m, "unix", "/run/x.sock", p, nil, o.done)
	require.NoError(t, err)
	call := m.LastConnect()
	require.Equal(t, "unix", call.Network)
	require.Equal(t, &net.UnixAddr{Name: "/run/x.sock", Net: "unix"}, call.Connector.Destination())
	_, _, err = call.Connector.Succeed()
	require.NoError(t, err)
	require.Equal(t, 1, o.calls)
	require.NoError(t, o.err)
}

func TestConnectProtocolErrorsBeforeStarting(t *testing.T) {
	m := transporttest.NewMemoryReactor(nil)
	o := &outcome{}
	_, err := transports.ConnectProtocol(context.Background(), m, "udp", "x:1", &rec{}, nil, o.done)
	require.ErrorIs(t, err, transports.ErrUnsupportedNetwork)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = transports.ConnectProtocol(ctx, m, "tcp", "127.0.0.1:80", &rec{}, nil, o.done)
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, m.Connects, "a done context starts nothing")

	boom := errors.New("boom")
	m.ConnectErr = boom
	ctx, cancel = context.WithCancel(context.Background())
	_, err = transports.ConnectProtocol(ctx, m, "tcp", "127.0.0.1:80", &rec{}, nil, o.done)
	require.ErrorIs(t, err, boom)
	cancel()
	require.Zero(t, m.WaitCalls(50*time.Millisecond), "the context callback was unregistered")
	require.Zero(t, o.calls, "an error return means done is never called")
}

func TestConnectProtocolCancelWhileConnecting(t *testing.T) {
	m := transporttest.NewMemoryReactor(nil)
	p := &rec{}
	o := &outcome{}
	ctx, cancel := context.WithCancel(context.Background())
	_, err := transports.ConnectProtocol(ctx, m, "tcp", "127.0.0.1:80", p, nil, o.done)
	require.NoError(t, err)
	fc := m.LastConnect().Connector
	cancel()
	require.Zero(t, o.calls, "reported on the reactor's goroutine, through Call")
	require.Equal(t, 1, m.WaitCalls(5*time.Second))
	require.Equal(t, 1, o.calls)
	require.ErrorIs(t, o.err, context.Canceled)
	require.Equal(t, transporttest.Disconnected, fc.State(), "the attempt was stopped")
	_, _, err = fc.Succeed()
	require.ErrorIs(t, err, transports.ErrNotConnected)
	require.Empty(t, p.events)
	require.Equal(t, 1, o.calls)
}

func TestConnectProtocolDeadline(t *testing.T) {
	m := transporttest.NewMemoryReactor(nil)
	o := &outcome{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, err := transports.ConnectProtocol(ctx, m, "tcp", "127.0.0.1:80", &rec{}, nil, o.done)
	require.NoError(t, err)
	require.Equal(t, 1, m.WaitCalls(5*time.Second))
	require.ErrorIs(t, o.err, context.DeadlineExceeded)
}

// A cancellation that reaches the loop after the outcome changes nothing.
func TestConnectProtocolCancelAfterOutcome(t *testing.T) {
	m := transporttest.NewMemoryReactor(nil)
	p := &rec{}
	o := &outcome{}
	ctx, cancel := context.WithCancel(context.Background())
	_, err := transports.ConnectProtocol(ctx, m, "tcp", "127.0.0.1:80", p, nil, o.done)
	require.NoError(t, err)
	_, tr, err := m.LastConnect().Connector.Succeed()
	require.NoError(t, err)
	cancel()
	require.Zero(t, m.WaitCalls(50*time.Millisecond), "done unregistered the context callback")
	require.Equal(t, 1, o.calls)
	require.NoError(t, o.err)
	require.False(t, tr.Closed(), "the connection belongs to p now")

	// Cancelled after the outcome but with the hop already queued (the
	// callback fired before done ran): still nothing.
	m2 := transporttest.NewMemoryReactor(nil)
	o2 := &outcome{}
	ctx2, cancel2 := context.WithCancel(context.Background())
	_, err = transports.ConnectProtocol(ctx2, m2, "tcp", "127.0.0.1:80", &rec{}, nil, o2.done)
	require.NoError(t, err)
	cancel2()
	// Wait until the hop is queued, then let the attempt fail first.
	require.Eventually(t, func() bool { return m2.Queued() > 0 }, 5*time.Second, time.Millisecond)
	require.NoError(t, m2.LastConnect().Connector.Fail(syscall.ECONNREFUSED))
	require.Equal(t, 1, m2.RunCalls())
	require.Equal(t, 1, o2.calls)
	require.ErrorIs(t, o2.err, syscall.ECONNREFUSED)
}

func TestConnectProtocolHalfClose(t *testing.T) {
	m := transporttest.NewMemoryReactor(nil)
	p := &halfRec{}
	o := &outcome{}
	_, err := transports.ConnectProtocol(context.Background(), m, "tcp", "127.0.0.1:80", p, nil, o.done)
	require.NoError(t, err)
	built := m.LastConnect().Factory.BuildProtocol(nil)
	hc, ok := built.(transports.HalfCloseableProtocol)
	require.True(t, ok, "the stand-in is half-closeable when p is")
	require.Nil(t, m.LastConnect().Factory.BuildProtocol(nil), "one protocol: a second build is refused")
	tr := transporttest.NewStringTransport(nil)
	hc.ConnectionMade(tr)
	hc.ReadConnectionLost()
	hc.WriteConnectionLost()
	require.Equal(t, []string{"made", "readLost", "writeLost"}, p.events)
	require.Equal(t, 1, o.calls)

	// A plain protocol's stand-in is not.
	m = transporttest.NewMemoryReactor(nil)
	_, err = transports.ConnectProtocol(context.Background(), m, "tcp", "127.0.0.1:80", &rec{}, nil, o.done)
	require.NoError(t, err)
	_, ok = m.LastConnect().Factory.BuildProtocol(nil).(transports.HalfCloseableProtocol)
	require.False(t, ok)
}

// A protocol that panics in ConnectionMade: done still runs once (with
// success: the transport then drops the connection).
func TestConnectProtocolPanickingProtocol(t *testing.T) {
	m := transporttest.NewMemoryReactor(nil)
	o := &outcome{}
	p := &panicky{}
	_, err := transports.ConnectProtocol(context.Background(), m, "tcp", "127.0.0.1:80", p, nil, o.done)
	require.NoError(t, err)
	require.Panics(t, func() { _, _, _ = m.LastConnect().Connector.Succeed() })
	require.Equal(t, 1, o.calls)
}

type panicky struct{ rec }

func (*panicky) ConnectionMade(transports.Transport) { panic("boom") }

func TestClientFactoryBase(t *testing.T) {
	var zero transports.ClientFactoryBase
	require.Nil(t, zero.BuildProtocol(nil), "no Build refuses")
	zero.StartedConnecting(nil)
	zero.ClientConnectionFailed(nil, nil)
	zero.ClientConnectionLost(nil, nil)

	p := &rec{}
	type counting struct{ transports.ClientFactoryBase }
	f := &counting{ClientFactoryBase: transports.ClientFactoryBase{Build: func(net.Addr) transports.Protocol { return p }}}
	var cf transports.ClientFactory = f
	require.Same(t, p, cf.BuildProtocol(nil))

	m := transporttest.NewMemoryReactor(nil)
	_, err := m.ConnectTCP("127.0.0.1:1", transports.ClientFactoryFunc(func(net.Addr) transports.Protocol { return p }), nil)
	require.NoError(t, err)
	_, _, err = m.LastConnect().Connector.Succeed()
	require.NoError(t, err)
	require.Equal(t, []string{"made"}, p.events)
}
