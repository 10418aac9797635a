package policies_test

import (
	"net"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// recorder is an inner protocol that records what happens to it.
type recorder struct {
	t      transports.Transport
	data   []byte
	made   int
	lost   []error
	onData func(r *recorder, p []byte)
}

func (r *recorder) ConnectionMade(t transports.Transport) { r.t = t; r.made++ }
func (r *recorder) DataReceived(p []byte) {
	r.data = append(r.data, p...)
	if r.onData != nil {
		r.onData(r, p)
	}
}
func (r *recorder) ConnectionLost(err error) { r.lost = append(r.lost, err) }

// recorderFactory builds recorders and remembers them.
type recorderFactory struct {
	built   []*recorder
	addrs   []net.Addr
	refuse  bool
	started int
	stopped int
}

func (f *recorderFactory) BuildProtocol(addr net.Addr) transports.Protocol {
	if f.refuse {
		return nil
	}
	r := &recorder{}
	f.built = append(f.built, r)
	f.addrs = append(f.addrs, addr)
	return r
}

func (f *recorderFactory) StartFactory() { f.started++ }
func (f *recorderFactory) StopFactory()  { f.stopped++ }

// dial builds a protocol from f for addr and connects it to a fresh string
// transport on clk. It returns nil transport when f refused.
func dial(f transports.Factory, clk *clock.Fake, addr net.Addr) (transports.Protocol, *transporttest.StringTransport) {
	p := f.BuildProtocol(addr)
	if p == nil {
		return nil, nil
	}
	if clk == nil {
		clk = clock.NewFake()
	}
	tr := transporttest.NewStringTransport(clk)
	tr.Remote = addr
	transporttest.Connect(p, tr)
	return p, tr
}

// pushProducer records pause/resume calls.
type pushProducer struct {
	paused  bool
	pauses  int
	resumes int
	stopped bool
}

func (p *pushProducer) PauseProducing()  { p.paused = true; p.pauses++ }
func (p *pushProducer) ResumeProducing() { p.paused = false; p.resumes++ }
func (p *pushProducer) StopProducing()   { p.stopped = true }

// pullProducer counts requests.
type pullProducer struct {
	asked   int
	stopped bool
}

func (p *pullProducer) ResumeProducing() { p.asked++ }
func (p *pullProducer) StopProducing()   { p.stopped = true }
