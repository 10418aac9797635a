// Package flowtest drives a server protocol with a client that pipelines
// requests and does not read the answers, in memory (transporttest.Pair) and
// over real loopback TCP (transports/tcp), and reports how large the server's
// write queue grew and how often it paused reading. The shipped protocols'
// tests use it to check that their memory stays bounded.
package flowtest

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// RecvPool is the size of a loop's default receive buffer pool
// (backend.Config BufferCount × BufferSize). A transport whose protocol
// paused reading may still hand over this much that was already received
// (the multishot recv's completions in flight when the pause cancelled it),
// so a protocol's write queue may pass its high watermark by up to this much
// times the protocol's amplification, once, whatever the client sends.
var RecvPool = func() int {
	c := backend.Config{}.WithDefaults()
	return c.BufferCount * c.BufferSize
}()

// Result is what a run observed on the server side.
type Result struct {
	// Read is the number of bytes the server's protocol was handed
	// (DataReceived) before the client started reading.
	Read int
	// MaxQueued is the largest write queue of the server's transport seen
	// after any DataReceived or ResumeProducing of the server.
	MaxQueued int
	// Pauses and Resumes count PauseReading and ResumeReading calls the
	// server's protocol made on its transport.
	Pauses, Resumes int
	// PausedAtStall reports whether the server's reading was paused when the
	// client stalled (before it started reading).
	PausedAtStall bool
	// Replies is the number of bytes the client received in the end, after
	// it started reading, up to the server's close.
	Replies int
}

// Stream returns n bytes made of req repeated (the last copy cut short if n
// is not a multiple).
func Stream(req []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, req[:min(len(req), n-len(out))]...)
	}
	return out
}

// probe sits between the transport and the server protocol and records what
// Result reports. queued reads the transport's write queue.
type probe struct {
	transports.Transport
	inner  transports.Protocol
	queued func() int
	r      *Result
	read   int
	paused bool
}

func (p *probe) ConnectionMade(t transports.Transport) {
	p.Transport = t
	p.inner.ConnectionMade(p)
}

func (p *probe) DataReceived(b []byte) {
	p.read += len(b)
	p.inner.DataReceived(b)
	p.sample()
}

func (p *probe) ConnectionLost(reason error) { p.inner.ConnectionLost(reason) }

func (p *probe) sample() {
	if q := p.queued(); q > p.r.MaxQueued {
		p.r.MaxQueued = q
	}
}

func (p *probe) PauseReading() {
	p.r.Pauses++
	p.paused = true
	p.Transport.PauseReading()
}

func (p *probe) ResumeReading() {
	p.r.Resumes++
	p.paused = false
	p.Transport.ResumeReading()
}

func (p *probe) RegisterProducer(pr transports.Producer, streaming bool) error {
	if pp, ok := pr.(transports.PushProducer); ok && streaming {
		pr = &probeProducer{pp, p}
	}
	return p.Transport.RegisterProducer(pr, streaming)
}

// probeProducer samples the queue after the server answered from a
// ResumeProducing.
type probeProducer struct {
	transports.PushProducer
	p *probe
}

func (x *probeProducer) ResumeProducing() {
	x.PushProducer.ResumeProducing()
	x.p.sample()
}

// client writes data at once (it queues on its own end) and reads nothing
// until read is called.
type client struct {
	t       transports.Transport
	data    []byte
	replies int
}

func (c *client) ConnectionMade(t transports.Transport) {
	c.t = t
	t.PauseReading()
	_ = t.Write(c.data)
}
func (c *client) DataReceived(b []byte) { c.replies += len(b) }
func (c *client) ConnectionLost(error)  {}

// Pair connects server, through a transporttest.Pair whose server end has
// watermarks wm, to a client that sends data without reading; the pair delivers at most chunk bytes per DataReceived. Once the
// pair stalls it records the Result so far, then lets the client read and
// flushes everything.
func Pair(t testing.TB, server transports.Protocol, wm transports.Watermarks, data []byte, chunk int) Result {
	t.Helper()
	var r Result
	cl := &client{data: data}
	pr := &probe{inner: server, r: &r}
	pair := transporttest.NewPair(cl, pr, nil)
	pair.Server.Watermarks = wm
	pair.Chunk = chunk
	pr.queued = pair.Server.Queued
	pair.MaxRounds = 1 << 20
	if err := pair.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	r.Read, r.PausedAtStall = pr.read, pr.paused
	cl.t.ResumeReading()
	if err := pair.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	r.Replies = cl.replies
	return r
}

// Socket runs factory's protocols behind a tcp listener on loopback, on a
// loop of the given kind, with watermarks wm on accepted connections. A
// net.Conn client writes data and does not read until the server has stopped
// taking bytes (its reading paused and no byte read for a while; 20 s at
// most); the Result is recorded then. The client then reads everything until
// the server closes (after the client's half-close), up to 2 minutes.
func Socket(t *testing.T, kind reactor.BackendKind, factory transports.Factory, wm transports.Watermarks, data []byte) Result {
	t.Helper()
	h := reactortest.Start(t, kind)
	var (
		r  Result
		pr *probe
	)
	f := transports.FactoryFunc(func(addr net.Addr) transports.Protocol {
		if pr != nil {
			return nil // one connection only
		}
		pr = &probe{inner: factory.BuildProtocol(addr), r: &r}
		pr.queued = func() int {
			if c, ok := pr.Transport.(*tcp.Conn); ok {
				return c.Buffered()
			}
			return 0
		}
		return pr
	})
	var port *tcp.Port
	h.Do(func() {
		var err error
		port, err = tcp.Listen(h.Loop, "127.0.0.1:0", f, tcp.ListenOptions{Watermarks: wm})
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
	})
	defer h.Do(func() { _ = port.Close() })

	conn, err := net.Dial("tcp", port.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	wrote := make(chan error, 1)
	go func() {
		_, err := conn.Write(data)
		if err == nil {
			err = conn.(*net.TCPConn).CloseWrite()
		}
		wrote <- err
	}()

	// Wait until the server stopped taking bytes: paused, and nothing read
	// over 30 polls in a row.
	last, still := -1, 0
	deadline := time.Now().Add(20 * time.Second)
	for still < 30 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		var read int
		var paused bool
		h.Do(func() {
			if pr != nil {
				read, paused = pr.read, pr.paused
			}
		})
		if paused && read == last {
			still++
		} else {
			still = 0
		}
		last = read
	}
	h.Do(func() {
		if pr != nil {
			r.Read, r.PausedAtStall = pr.read, pr.paused
		}
	})

	// Now read everything; the server closes after the client's half-close.
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	n, err := io.Copy(io.Discard, conn)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Errorf("client read: %v", err)
	}
	select {
	case err := <-wrote:
		if err != nil {
			t.Errorf("client write: %v", err)
		}
	case <-time.After(10 * time.Second):
		_ = conn.Close() // unblocks the writer
		t.Errorf("client write never finished: %v", <-wrote)
	}
	var res Result
	h.Do(func() { res = r })
	res.Replies = int(n)
	return res
}
