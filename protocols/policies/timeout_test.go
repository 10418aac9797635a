package policies_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/protocols/policies"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

func TestTimeoutIdle(t *testing.T) {
	clk := clock.NewFake()
	f := policies.NewTimeoutFactory(&recorderFactory{}, 10*time.Second)
	_, tr := dial(f, clk, peer)
	clk.Advance(9 * time.Second)
	require.False(t, tr.Disconnecting())
	clk.Advance(time.Second)
	require.True(t, tr.Disconnecting())
}

func TestTimeoutResetByReadsAndWrites(t *testing.T) {
	clk := clock.NewFake()
	inner := &recorderFactory{}
	f := policies.NewTimeoutFactory(inner, 10*time.Second)
	_, tr := dial(f, clk, peer)
	r := inner.built[0]

	clk.Advance(9 * time.Second)
	tr.Receive([]byte("x")) // read activity
	clk.Advance(9 * time.Second)
	require.False(t, tr.Disconnecting())
	require.NoError(t, r.t.Write([]byte("y"))) // write activity
	clk.Advance(9 * time.Second)
	require.NoError(t, r.t.WriteBuffers([][]byte{[]byte("z")}))
	clk.Advance(9 * time.Second)
	require.False(t, tr.Disconnecting())
	clk.Advance(time.Second)
	require.True(t, tr.Disconnecting())
}

func TestTimeoutCancelledOnConnectionLost(t *testing.T) {
	clk := clock.NewFake()
	f := policies.NewTimeoutFactory(&recorderFactory{}, 10*time.Second)
	_, tr := dial(f, clk, peer)
	require.Equal(t, 1, clk.Len())
	tr.EndConnection(transports.Lost(nil))
	require.Zero(t, clk.Len(), "no timer left behind")
	clk.Advance(time.Minute)
	require.False(t, tr.Disconnecting())
}

func TestTimeoutCustomAction(t *testing.T) {
	clk := clock.NewFake()
	f := policies.NewTimeoutFactory(&recorderFactory{}, time.Second)
	var fired []*policies.ProtocolWrapper
	f.OnTimeout = func(w *policies.ProtocolWrapper) {
		fired = append(fired, w)
		_ = w.Transport().Abort()
	}
	p, tr := dial(f, clk, peer)
	clk.Advance(time.Second)
	require.Equal(t, []*policies.ProtocolWrapper{p.(*policies.ProtocolWrapper)}, fired)
	require.True(t, tr.Aborted())
	require.False(t, tr.Disconnecting())
}

func TestTimeoutZeroDisables(t *testing.T) {
	clk := clock.NewFake()
	f := policies.NewTimeoutFactory(&recorderFactory{}, 0)
	_, tr := dial(f, clk, peer)
	require.Zero(t, clk.Len())
	clk.Advance(time.Hour)
	require.False(t, tr.Disconnecting())
}

func TestTimeoutKeepsUserSetupHooks(t *testing.T) {
	clk := clock.NewFake()
	f := policies.NewTimeoutFactory(&recorderFactory{}, time.Second)
	var seen int
	f.Setup = func(w *policies.ProtocolWrapper) { w.OnDataReceived = func(p []byte) { seen += len(p) } }
	_, tr := dial(f, clk, peer)
	clk.Advance(900 * time.Millisecond)
	tr.Receive([]byte("abc"))
	clk.Advance(900 * time.Millisecond)
	require.Equal(t, 3, seen)
	require.False(t, tr.Disconnecting(), "the timeout still reset")
}

func TestIdleTimer(t *testing.T) {
	clk := clock.NewFake()
	fired := 0
	it := &policies.IdleTimer{Period: time.Second, OnTimeout: func() { fired++ }}
	it.Reset() // before Start: nothing
	require.False(t, it.Active())
	it.Start(clk)
	require.True(t, it.Active())
	clk.Advance(500 * time.Millisecond)
	require.Equal(t, time.Second, it.SetPeriod(2*time.Second))
	clk.Advance(1900 * time.Millisecond)
	require.Zero(t, fired)
	clk.Advance(100 * time.Millisecond)
	require.Equal(t, 1, fired)
	require.False(t, it.Active())
	it.Reset() // activity after expiry schedules a new countdown
	require.True(t, it.Active())
	require.Equal(t, 2*time.Second, it.SetPeriod(0))
	require.False(t, it.Active())
	it.SetPeriod(time.Second)
	require.True(t, it.Active())
	it.Stop()
	require.False(t, it.Active())
	it.Reset()
	require.False(t, it.Active())
	require.Zero(t, clk.Len())
}

func TestTimeoutActivityAllocs(t *testing.T) {
	clk := clock.NewFake()
	f := policies.NewTimeoutFactory(transports.FactoryFunc(func(net.Addr) transports.Protocol {
		return nopProtocol{}
	}), time.Minute)
	p, tr := dial(f, clk, peer)
	w := p.(*policies.ProtocolWrapper)
	data := []byte("payload")
	tr.Clear()
	require.Zero(t, testing.AllocsPerRun(100, func() {
		w.DataReceived(data)
	}))
}

type nopProtocol struct{}

func (nopProtocol) ConnectionMade(transports.Transport) {}
func (nopProtocol) DataReceived([]byte)                 {}
func (nopProtocol) ConnectionLost(error)                {}

func BenchmarkTimeoutActivity(b *testing.B) {
	clk := clock.NewFake()
	f := policies.NewTimeoutFactory(transports.FactoryFunc(func(net.Addr) transports.Protocol {
		return nopProtocol{}
	}), time.Minute)
	// Many connections, so each reset moves a call in a real heap.
	var ws []*policies.ProtocolWrapper
	for range 1000 {
		p, _ := dial(f, clk, peer)
		ws = append(ws, p.(*policies.ProtocolWrapper))
	}
	data := []byte("x")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ws[i%len(ws)].DataReceived(data)
		i++
	}
}

func ExampleTimeoutFactory() {
	clk := clock.NewFake()
	echo := transports.FactoryFunc(func(net.Addr) transports.Protocol { return &recorder{} })
	f := policies.NewTimeoutFactory(echo, 30*time.Second)

	p := f.BuildProtocol(peer)
	tr := transporttest.NewStringTransport(clk)
	transporttest.Connect(p, tr)
	clk.Advance(20 * time.Second)
	tr.Receive([]byte("still here"))
	clk.Advance(20 * time.Second)
	fmt.Println("closed after 40s:", tr.Disconnecting())
	clk.Advance(10 * time.Second)
	fmt.Println("closed after 50s:", tr.Disconnecting())
	// Output:
	// closed after 40s: false
	// closed after 50s: true
}
