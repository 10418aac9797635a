package policies_test

import (
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/protocols/policies"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// busy writes "busy" and hangs up.
type busy struct{}

func (busy) ConnectionMade(t transports.Transport) {
	_ = t.Write([]byte("busy\r\n"))
	_ = t.LoseConnection()
}
func (busy) DataReceived([]byte)  {}
func (busy) ConnectionLost(error) {}

func TestLimitTotalConnectionsRefuses(t *testing.T) {
	clk := clock.NewFake()
	f := policies.NewLimitTotalConnectionsFactory(&recorderFactory{}, 2, nil)
	_, a := dial(f, clk, peer)
	_, b := dial(f, clk, peer)
	p, _ := dial(f, clk, peer)
	require.Nil(t, p)
	require.Equal(t, 2, f.Count())
	a.EndConnection(nil)
	require.Equal(t, 1, f.Count())
	p, c := dial(f, clk, peer)
	require.NotNil(t, p)
	b.EndConnection(nil)
	c.EndConnection(nil)
	require.Zero(t, f.Count())
}

func TestLimitTotalConnectionsOverflow(t *testing.T) {
	clk := clock.NewFake()
	inner := &recorderFactory{}
	over := transports.FactoryFunc(func(net.Addr) transports.Protocol { return busy{} })
	f := policies.NewLimitTotalConnectionsFactory(inner, 1, over)
	_, a := dial(f, clk, peer)
	_, b := dial(f, clk, peer)
	require.Len(t, inner.built, 1)
	require.Empty(t, a.String())
	require.Equal(t, "busy\r\n", b.String())
	require.True(t, b.Disconnecting())
	require.Equal(t, 2, f.Count(), "overflow connections count")
	b.EndConnection(nil)
	a.EndConnection(nil)
	require.Zero(t, f.Count())

	refusing := policies.NewLimitTotalConnectionsFactory(&recorderFactory{refuse: true}, 1, nil)
	require.Nil(t, refusing.BuildProtocol(peer))
	require.Zero(t, refusing.Count())
}

func TestLimitTotalConnectionsConcurrent(t *testing.T) {
	// Several loops share the factory; the limit holds and the count returns
	// to zero.
	f := policies.NewLimitTotalConnectionsFactory(transports.FactoryFunc(func(net.Addr) transports.Protocol {
		return nopProtocol{}
	}), 8, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	maxSeen := 0
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				p := f.BuildProtocol(peer)
				if p == nil {
					continue
				}
				tr := transporttest.NewStringTransport(nil)
				transporttest.Connect(p, tr)
				mu.Lock()
				maxSeen = max(maxSeen, f.Count())
				mu.Unlock()
				tr.EndConnection(nil)
			}
		}()
	}
	wg.Wait()
	require.LessOrEqual(t, maxSeen, 8)
	require.Zero(t, f.Count())
	require.Zero(t, f.Len())
}

func TestLimitConnectionsByPeer(t *testing.T) {
	clk := clock.NewFake()
	f := policies.NewLimitConnectionsByPeer(&recorderFactory{}, 2)
	a1 := &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 1000}
	a2 := &net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.1"), Port: 1001} // same host, mapped
	a3 := &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 1002}
	b1 := &net.TCPAddr{IP: net.ParseIP("10.0.0.2"), Port: 1000}
	v6 := &net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 1, Zone: "eth0"}

	_, t1 := dial(f, clk, a1)
	_, t2 := dial(f, clk, a2)
	p, _ := dial(f, clk, a3)
	require.Nil(t, p, "third connection from the same host")
	require.Equal(t, 2, f.Count(a3))
	_, tb := dial(f, clk, b1)
	require.NotNil(t, tb, "another host is not affected")
	_, tv := dial(f, clk, v6)
	require.Equal(t, 1, f.Count(&net.TCPAddr{IP: net.ParseIP("fe80::1")}))

	t1.EndConnection(nil)
	require.Equal(t, 1, f.Count(a1))
	p, t3 := dial(f, clk, a3)
	require.NotNil(t, p)
	for _, tr := range []*transporttest.StringTransport{t2, t3, tb, tv} {
		tr.EndConnection(nil)
	}
	require.Zero(t, f.Count(a1))
	require.Zero(t, f.Count(b1))
}

func TestLimitConnectionsByPeerOtherAddrs(t *testing.T) {
	f := &policies.LimitConnectionsByPeer{WrappingFactory: policies.WrappingFactory{Wrapped: &recorderFactory{}}}
	u := &net.UnixAddr{Name: "/tmp/sock", Net: "unix"}
	var trs []*transporttest.StringTransport
	for range policies.DefaultMaxPerPeer {
		_, tr := dial(f, nil, u)
		require.NotNil(t, tr)
		trs = append(trs, tr)
	}
	p, _ := dial(f, nil, u)
	require.Nil(t, p)
	require.Equal(t, policies.DefaultMaxPerPeer, f.Count(u))
	udp := &net.UDPAddr{IP: net.ParseIP("10.0.0.9"), Port: 9}
	_, tr := dial(f, nil, udp)
	require.Equal(t, 1, f.Count(&net.TCPAddr{IP: net.ParseIP("10.0.0.9"), Port: 7}))
	tr.EndConnection(nil)
	for _, tr := range trs {
		tr.EndConnection(nil)
	}
	require.Zero(t, f.Count(u))

	refusing := policies.NewLimitConnectionsByPeer(&recorderFactory{refuse: true}, 1)
	require.Nil(t, refusing.BuildProtocol(peer))
	require.Zero(t, refusing.Count(peer))
}
