package stream

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
)

// fakeNet records what the reactor passes on.
type fakeNet struct {
	loop *reactor.Loop
	addr string
	opts any
}

type fakePort struct{ addr string }

func (p fakePort) Addr() net.Addr      { return &net.UnixAddr{Name: p.addr, Net: "unix"} }
func (fakePort) Close() error          { return nil }
func (fakePort) Done() <-chan struct{} { return nil }

func (n *fakeNet) Listen(loop *reactor.Loop, addr string, _ transports.Factory, opts any) (transports.Port, error) {
	n.loop, n.addr, n.opts = loop, addr, opts
	return fakePort{addr}, nil
}

func (n *fakeNet) Connect(loop *reactor.Loop, addr string, _ transports.ClientFactory, opts any) (transports.Connector, error) {
	n.loop, n.addr, n.opts = loop, addr, opts
	return nil, errors.New("fake: connect")
}

func TestRegisterNetwork(t *testing.T) {
	n := &fakeNet{}
	RegisterNetwork("test-registry", n)
	got, err := LookupNetwork("test-registry")
	require.NoError(t, err)
	require.Same(t, n, got)
	require.PanicsWithValue(t, "gyre/stream: RegisterNetwork called twice for test-registry",
		func() { RegisterNetwork("test-registry", &fakeNet{}) })
	require.Panics(t, func() { RegisterNetwork("test-nil", nil) })

	_, err = LookupNetwork("sctp")
	require.ErrorIs(t, err, transports.ErrUnsupportedNetwork)
	require.Contains(t, err.Error(), `import _ "github.com/gyre-io/gyre/transports/sctp"`)
}

type opts struct{ N int }

func TestOptions(t *testing.T) {
	o, err := Options[opts]("ListenX", nil)
	require.NoError(t, err)
	require.Equal(t, opts{}, o)
	o, err = Options[opts]("ListenX", opts{N: 1})
	require.NoError(t, err)
	require.Equal(t, 1, o.N)
	o, err = Options[opts]("ListenX", &opts{N: 2})
	require.NoError(t, err)
	require.Equal(t, 2, o.N)
	o, err = Options[opts]("ListenX", (*opts)(nil))
	require.NoError(t, err)
	require.Equal(t, opts{}, o)
	_, err = Options[opts]("ListenX", 42)
	require.ErrorIs(t, err, transports.ErrBadOptions)
	require.Contains(t, err.Error(), "ListenX takes nil or a stream.opts, not a int")
}

func TestNetReactor(t *testing.T) {
	var zero NetReactor
	require.ErrorIs(t, zero.Call(func() {}), ErrNoLoop)
	_, err := zero.ListenTCP(":0", nil, nil)
	require.ErrorIs(t, err, ErrNoLoop)
	_, err = zero.ConnectUNIX("/x", nil, nil)
	require.ErrorIs(t, err, ErrNoLoop)
	_, err = zero.ListenUDP(":0", nil, nil)
	require.ErrorIs(t, err, ErrNoLoop)
	_, err = zero.ConnectUNIXDatagram("/x", nil, nil)
	require.ErrorIs(t, err, ErrNoLoop)

	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		r := Reactor(h.Loop)
		require.Same(t, h.Loop, r.Loop())

		n := &fakeNet{}
		RegisterNetwork("test-"+kind.String(), n)
		p, err := r.Listen("test-"+kind.String(), "/a", nil, opts{N: 3})
		require.NoError(t, err)
		require.Equal(t, "/a", p.Addr().String())
		require.Same(t, h.Loop, n.loop)
		require.Equal(t, opts{N: 3}, n.opts)
		_, err = r.Connect("test-"+kind.String(), "/b", nil, nil)
		require.EqualError(t, err, "fake: connect")
		require.Equal(t, "/b", n.addr)

		// No UNIX transport is linked into this test binary.
		_, err = r.ListenUNIX("/tmp/x.sock", nil, nil)
		require.ErrorIs(t, err, transports.ErrUnsupportedNetwork)
		require.True(t, strings.Contains(err.Error(), "transports/unix"), err.Error())
		_, err = r.ConnectUNIX("/tmp/x.sock", nil, nil)
		require.ErrorIs(t, err, transports.ErrUnsupportedNetwork)
		_, err = r.ConnectTCP("127.0.0.1:1", nil, nil)
		require.ErrorIs(t, err, transports.ErrUnsupportedNetwork, "tcp is not linked into stream's own tests")
		// Nor are the datagram networks.
		_, err = r.ListenUDP("127.0.0.1:0", nil, nil)
		require.ErrorIs(t, err, transports.ErrUnsupportedNetwork)
		require.Contains(t, err.Error(), "transports/udp")
		_, err = r.ListenUNIXDatagram("/tmp/x.sock", nil, nil)
		require.ErrorIs(t, err, transports.ErrUnsupportedNetwork)
		_, err = r.ConnectUNIXDatagram("/tmp/x.sock", nil, nil)
		require.ErrorIs(t, err, transports.ErrUnsupportedNetwork)

		// Call and the clock are the loop's.
		ran := make(chan bool, 1)
		require.NoError(t, r.Call(func() {
			r.CallLater(0, func() { ran <- !r.Now().IsZero() })
		}))
		require.True(t, <-ran)

		// A NetReactor is one pointer: no allocation as a transports.Reactor.
		var sink transports.Reactor
		allocs := testing.AllocsPerRun(100, func() { sink = Reactor(h.Loop) })
		require.Zero(t, allocs)
		_ = sink
	})
}

type fakeDgramNet struct{ addr string }

func (n *fakeDgramNet) Listen(loop *reactor.Loop, addr string, p transports.DatagramProtocolOf[string], opts any) (transports.DatagramTransportOf[string], error) {
	n.addr = addr
	return nil, errors.New("fake: listen")
}

// The datagram registry: by name and address type; twice panics; a name
// registered with the other address type is not found.
func TestRegisterDatagramNetwork(t *testing.T) {
	n := &fakeDgramNet{}
	RegisterDatagramNetwork[string]("test-dgram", n)
	got, err := LookupDatagramNetwork[string]("test-dgram")
	require.NoError(t, err)
	require.Same(t, n, got)
	require.Panics(t, func() { RegisterDatagramNetwork[string]("test-dgram", &fakeDgramNet{}) })
	require.Panics(t, func() { RegisterDatagramNetwork[string]("test-dgram-nil", nil) })
	_, err = LookupDatagramNetwork[netip.AddrPort]("test-dgram")
	require.ErrorIs(t, err, transports.ErrUnsupportedNetwork)
	_, err = LookupDatagramNetwork[string]("dccp")
	require.ErrorIs(t, err, transports.ErrUnsupportedNetwork)
	require.Contains(t, err.Error(), `import _ "github.com/gyre-io/gyre/transports/dccp"`)
}
