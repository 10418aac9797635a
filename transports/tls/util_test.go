package gyretls_test

import (
	ctls "crypto/tls"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
	gyretls "github.com/gyre-io/gyre/transports/tls"
	"github.com/gyre-io/gyre/transports/tls/tlstest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pkiDir != "" {
		_ = os.RemoveAll(pkiDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// pki wraps tlstest.PKI, made once per test binary.
type pki struct{ *tlstest.PKI }

var (
	pkiOnce sync.Once
	pkiVal  *pki
	pkiErr  error
)

func testPKI(t testing.TB) *pki {
	t.Helper()
	pkiOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gyretls")
		if err != nil {
			pkiErr = err
			return
		}
		pkiDir = dir
		var p *tlstest.PKI
		p, pkiErr = tlstest.New(dir, "localhost")
		pkiVal = &pki{p}
	})
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pkiVal
}

var pkiDir string

func (p *pki) server() *ctls.Config { return p.ServerConfig() }
func (p *pki) client() *ctls.Config { return p.ClientConfig("localhost") }

// rec is a protocol recording everything, safe to inspect from the test
// goroutine. Hooks run on the loop.
type rec struct {
	mu        sync.Mutex
	tr        transports.Transport
	made      int
	lost      int
	reason    error
	data      []byte
	state     *ctls.ConnectionState
	readEOF   int
	writeEOF  int
	lostCh    chan struct{}
	hsCh      chan struct{}
	onMade    func(r *rec)
	onData    func(r *rec, p []byte)
	onHS      func(r *rec)
	onReadEOF func(r *rec)
}

func newRec() *rec { return &rec{lostCh: make(chan struct{}), hsCh: make(chan struct{})} }

func (r *rec) ConnectionMade(t transports.Transport) {
	r.mu.Lock()
	r.tr = t
	r.made++
	r.mu.Unlock()
	if r.onMade != nil {
		r.onMade(r)
	}
}

func (r *rec) DataReceived(p []byte) {
	r.mu.Lock()
	r.data = append(r.data, p...)
	r.mu.Unlock()
	if r.onData != nil {
		r.onData(r, p)
	}
}

func (r *rec) ConnectionLost(reason error) {
	r.mu.Lock()
	r.lost++
	r.reason = reason
	n := r.lost
	r.mu.Unlock()
	if n == 1 {
		close(r.lostCh)
	}
}

func (r *rec) HandshakeCompleted(s ctls.ConnectionState) {
	r.mu.Lock()
	r.state = &s
	r.mu.Unlock()
	close(r.hsCh)
	if r.onHS != nil {
		r.onHS(r)
	}
}

func (r *rec) get() (data []byte, lost int, state *ctls.ConnectionState, reason error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.data...), r.lost, r.state, r.reason
}

func (r *rec) dataLen() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.data)
}

func (r *rec) waitLost(t testing.TB, d time.Duration) error {
	t.Helper()
	select {
	case <-r.lostCh:
	case <-time.After(d):
		t.Fatalf("ConnectionLost not called within %v", d)
	}
	time.Sleep(5 * time.Millisecond) // a second call would show up here
	_, lost, _, reason := r.get()
	if lost != 1 {
		t.Fatalf("ConnectionLost called %d times", lost)
	}
	return reason
}

func (r *rec) waitHS(t testing.TB, d time.Duration) ctls.ConnectionState {
	t.Helper()
	select {
	case <-r.hsCh:
	case <-time.After(d):
		t.Fatalf("HandshakeCompleted not called within %v", d)
	}
	_, _, s, _ := r.get()
	return *s
}

// hrec is rec with half-close.
type hrec struct{ *rec }

func (h hrec) ReadConnectionLost() {
	h.mu.Lock()
	h.readEOF++
	h.mu.Unlock()
	if h.onReadEOF != nil {
		h.onReadEOF(h.rec)
	}
}

func (h hrec) WriteConnectionLost() {
	h.mu.Lock()
	h.writeEOF++
	h.mu.Unlock()
}

func (h hrec) HandshakeCompleted(s ctls.ConnectionState) { h.rec.HandshakeCompleted(s) }

// echo writes back what it receives.
func echo(r *rec, p []byte) { _ = r.tr.Write(p) }

// factoryOf hands out the protocols made by mk, recording them.
type factoryOf struct {
	mk func() transports.Protocol
	ch chan transports.Protocol
}

func newFactory(mk func() transports.Protocol) *factoryOf {
	return &factoryOf{mk: mk, ch: make(chan transports.Protocol, 64)}
}

func (f *factoryOf) BuildProtocol(net.Addr) transports.Protocol {
	p := f.mk()
	f.ch <- p
	return p
}

func (f *factoryOf) next(t testing.TB) transports.Protocol {
	t.Helper()
	select {
	case p := <-f.ch:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no connection built")
		return nil
	}
}

// clientFactory is a ClientFactory around one protocol.
type clientFactory struct {
	p      transports.Protocol
	failed chan error
}

func newClient(p transports.Protocol) *clientFactory {
	return &clientFactory{p: p, failed: make(chan error, 1)}
}

func (c *clientFactory) BuildProtocol(net.Addr) transports.Protocol { return c.p }
func (c *clientFactory) StartedConnecting(transports.Connector)     {}
func (c *clientFactory) ClientConnectionFailed(_ transports.Connector, err error) {
	c.failed <- err
}
func (c *clientFactory) ClientConnectionLost(transports.Connector, error) {}

var _ gyretls.HandshakeListener = (*rec)(nil)

func dialRaw(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func tcpListen(t testing.TB, h *reactortest.Loop, f transports.Factory) (string, error) {
	p, err := tcp.Listen(h.Loop, "127.0.0.1:0", f, tcp.ListenOptions{})
	if err != nil {
		return "", err
	}
	t.Cleanup(func() { h.Do(func() { _ = p.Close() }) })
	return p.Addr().String(), nil
}

func tcpConnect(h *reactortest.Loop, addr string, f transports.ClientFactory) (*tcp.Connector, error) {
	return tcp.Connect(h.Loop, addr, f, tcp.ConnectOptions{})
}
