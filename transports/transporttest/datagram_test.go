package transporttest

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/transports"
)

// dproto records a datagram protocol's calls and echoes.
type dproto[A transports.DatagramAddr] struct {
	t                       transports.DatagramTransportOf[A]
	got                     []string
	from                    []A
	starts, stops, refusals int
}

func (p *dproto[A]) StartProtocol(t transports.DatagramTransportOf[A]) { p.t = t; p.starts++ }
func (p *dproto[A]) DatagramReceived(b []byte, from A) {
	p.got = append(p.got, string(b))
	p.from = append(p.from, from)
	_ = p.t.Write(b, from)
}
func (p *dproto[A]) ConnectionRefused() { p.refusals++ }
func (p *dproto[A]) StopProtocol()      { p.stops++ }

func TestMemoryReactorDatagrams(t *testing.T) {
	m := NewMemoryReactor(nil)
	var r transports.Reactor = m

	u := &dproto[netip.AddrPort]{}
	ut, err := r.ListenUDP("127.0.0.1:0", u, "opts")
	require.NoError(t, err)
	require.NotZero(t, ut.LocalAddr().Port())
	call := m.Datagrams[0]
	require.Equal(t, "udp", call.Network)
	require.Equal(t, "opts", call.Options)
	from := netip.MustParseAddrPort("10.0.0.1:5")
	require.False(t, call.UDP.Deliver([]byte("early"), from), "not before StartProtocol")
	require.Equal(t, 1, m.RunCalls())
	require.Equal(t, 1, u.starts)
	require.True(t, call.UDP.Deliver([]byte("hi"), from))
	require.Equal(t, []FakeDatagram[netip.AddrPort]{{Data: []byte("hi"), To: from}}, call.UDP.Written)
	ut.PauseReading()
	require.False(t, call.UDP.Deliver([]byte("paused"), from))
	ut.ResumeReading()
	require.ErrorIs(t, ut.Write([]byte("x"), netip.AddrPort{}), transports.ErrNotConnected)
	require.False(t, call.UDP.Refuse(), "unconnected")
	require.NoError(t, ut.Connect(from))
	require.True(t, call.UDP.Refuse())
	require.Equal(t, 1, u.refusals)
	call.UDP.WriteErr = transports.ErrQueueFull
	require.ErrorIs(t, ut.Write([]byte("x"), netip.AddrPort{}), transports.ErrQueueFull)
	require.Equal(t, transports.DatagramStats{Received: 1, Sent: 1, Refused: 1}, ut.Stats())
	done := false
	require.NoError(t, ut.StopListening(func() { done = true }))
	require.ErrorIs(t, ut.StopListening(nil), transports.ErrClosed)
	require.Equal(t, 1, m.RunCalls())
	require.True(t, done)
	require.Equal(t, 1, u.stops)
	_, err = r.ListenUDP("nope", u, nil)
	require.ErrorIs(t, err, transports.ErrBadOptions)

	g := &dproto[string]{}
	gt, err := r.ConnectUNIXDatagram("/srv.sock", g, nil)
	require.NoError(t, err)
	m.RunCalls()
	uc := m.Datagrams[1]
	require.True(t, uc.Connect)
	require.Equal(t, "", gt.LocalAddr())
	require.False(t, uc.Unix.Deliver([]byte("stranger"), "/other"), "a connected port takes only its peer's")
	require.True(t, uc.Unix.Deliver([]byte("peer"), "/srv.sock"))
	require.ErrorIs(t, gt.Connect("/x"), transports.ErrAlreadyConnected)
	lt, err := r.ListenUNIXDatagram("@name", g, nil)
	require.NoError(t, err)
	require.Equal(t, "@name", lt.LocalAddr())

	m.ListenErr, m.ConnectErr = errors.New("l"), errors.New("c")
	_, err = r.ListenUNIXDatagram("/a", g, nil)
	require.EqualError(t, err, "l")
	_, err = r.ConnectUNIXDatagram("/a", g, nil)
	require.EqualError(t, err, "c")
	require.Len(t, m.Datagrams, 3)
}
