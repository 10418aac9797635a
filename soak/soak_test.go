package soak

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/protocols/http"
	"github.com/gyre-io/gyre/protocols/resp"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
	gtls "github.com/gyre-io/gyre/transports/tls"
	"github.com/gyre-io/gyre/transports/tls/tlstest"
	gunix "github.com/gyre-io/gyre/transports/unix"
)

// clients per run and requests (or echo chunks) per client.
const (
	nClients  = 4
	nRequests = 6
)

func TestSoak(t *testing.T) {
	pki, err := tlstest.New(t.TempDir(), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	for _, tr := range []string{"tcp", "unix", "tls"} {
		for _, pr := range []string{"echo", "resp", "http"} {
			cases = append(cases, tr+"/"+pr)
		}
	}
	eachSeed(t, cases, func(t *testing.T, kind reactor.BackendKind, c string, seed uint64) {
		tr, pr, _ := strings.Cut(c, "/")
		r := &run{t: t, tr: tr, pr: pr, seed: seed, pki: pki}
		r.h = startHarness(t, kind, seed)
		if r.h == nil {
			return
		}
		r.loop = r.h.loop
		r.do()
	})
}

type run struct {
	t    *testing.T
	h    *harness
	tr   string
	pr   string
	seed uint64
	pki  *tlstest.PKI

	loop    *reactortest.Loop
	servers []*end
	clients []*end
	done    int // clients finished (lost or failed)
	port    transports.Port
}

// end records one side of one connection at the transport boundary.
type end struct {
	client  bool
	id      int
	written []byte // accepted by Write
	got     []byte // delivered to DataReceived
	lost    int
	reason  error
	after   int // events after ConnectionLost
	failed  error
	want    []byte // client: the exact expected reply stream (echo, resp)
	wantN   int    // client: expected replies (http)
	t       transports.Transport
	r       *run
}

func (e *end) clean() bool {
	return e.lost == 1 && errors.Is(e.reason, transports.ErrConnectionDone)
}

// recT is the transport the wrapped protocol sees: it records what Write
// accepted.
type recT struct {
	transports.Transport
	e *end
}

func (w *recT) Write(p []byte) error {
	err := w.Transport.Write(p)
	if err == nil {
		if w.e.lost > 0 {
			w.e.after++
		}
		w.e.written = append(w.e.written, p...)
	}
	return err
}

func (w *recT) WriteBuffers(bufs [][]byte) error {
	err := w.Transport.WriteBuffers(bufs)
	if err == nil {
		if w.e.lost > 0 {
			w.e.after++
		}
		for _, b := range bufs {
			w.e.written = append(w.e.written, b...)
		}
	}
	return err
}

func (w *recT) Disconnecting() bool {
	if d, ok := w.Transport.(interface{ Disconnecting() bool }); ok {
		return d.Disconnecting()
	}
	return false
}

// recP wraps a protocol and records its end.
type recP struct {
	p transports.Protocol
	e *end
}

func (r *recP) ConnectionMade(t transports.Transport) {
	r.e.t = t
	r.p.ConnectionMade(&recT{Transport: t, e: r.e})
}

func (r *recP) DataReceived(b []byte) {
	if r.e.lost > 0 {
		r.e.after++
	}
	r.e.got = append(r.e.got, b...)
	r.p.DataReceived(b)
}

func (r *recP) ConnectionLost(reason error) {
	r.e.lost++
	if r.e.lost > 1 {
		r.e.after++
		return
	}
	r.e.reason = reason
	r.p.ConnectionLost(reason)
	if r.e.client {
		r.e.r.done++
	}
}

// recHalf is recP for a half-closeable protocol (the transport must see
// the same capability the wrapped protocol has).
type recHalf struct{ recP }

func (r *recHalf) ReadConnectionLost() {
	r.p.(transports.HalfCloseableProtocol).ReadConnectionLost()
}

func (r *recHalf) WriteConnectionLost() {
	r.p.(transports.HalfCloseableProtocol).WriteConnectionLost()
}

func wrapRec(p transports.Protocol, e *end) transports.Protocol {
	if _, ok := p.(transports.HalfCloseableProtocol); ok {
		return &recHalf{recP{p: p, e: e}}
	}
	return &recP{p: p, e: e}
}

// client is the scripted client protocol: it writes its requests in a few
// chunks, then closes once the whole expected reply arrived (or on EOF).
type client struct {
	e   *end
	t   transports.Transport
	req [][]byte
}

func (c *client) ConnectionMade(t transports.Transport) {
	c.t = t
	// In order: half at once (one send), the rest one per later turn.
	for i, q := range c.req {
		if i < len(c.req)/2 {
			_ = t.Write(q)
			continue
		}
		t.Clock().CallLater(time.Duration(i)*time.Millisecond, func() { _ = t.Write(q) })
	}
}

func (c *client) DataReceived([]byte) {
	e := c.e
	if e.want != nil && len(e.got) >= len(e.want) || e.wantN > 0 && bytes.Count(e.got, []byte("HTTP/1.1 200 OK\r\n")) >= e.wantN && bytes.HasSuffix(e.got, []byte("hello")) {
		_ = c.t.LoseConnection()
	}
}

func (c *client) ConnectionLost(error) {}

type clientFactory struct {
	transports.ClientFactoryBase
	e *end
}

func (f *clientFactory) ClientConnectionFailed(_ transports.Connector, err error) {
	f.e.failed = err
	f.e.r.done++
}

// script builds client i's requests and expected replies.
func (r *run) script(rng *rand.Rand, e *end) [][]byte {
	var req [][]byte
	switch r.pr {
	case "echo":
		for range nRequests {
			b := make([]byte, 1+rng.IntN(16<<10))
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			req = append(req, b)
			e.want = append(e.want, b...) // same length; compared to e.written at the end
		}
	case "resp":
		e.want = []byte{}
		for j := range nRequests {
			k := fmt.Sprintf("k%d-%d", e.id, j)
			v := fmt.Sprintf("v%x", rng.Uint64())
			req = append(req, fmt.Appendf(nil, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n",
				len(k), k, len(v), v, len(k), k))
			e.want = fmt.Appendf(e.want, "+OK\r\n$%d\r\n%s\r\n", len(v), v)
		}
	case "http":
		for j := range nRequests {
			req = append(req, fmt.Appendf(nil, "GET /c%d/r%d/%x HTTP/1.1\r\nHost: x\r\n\r\n", e.id, j, rng.Uint64()))
		}
		e.wantN = nRequests
	}
	return req
}

func (r *run) serverFactory() transports.Factory {
	var app transports.Factory
	switch r.pr {
	case "echo":
		app = echo.Factory{}
	case "resp":
		app = resp.NewFactory(resp.NewStore(), resp.Options{})
	case "http":
		app = http.NewFactory(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("hello"))
		}), http.Options{})
	}
	return transports.FactoryFunc(func(addr net.Addr) transports.Protocol {
		p := app.BuildProtocol(addr)
		if p == nil {
			return nil
		}
		e := &end{id: len(r.servers), r: r}
		r.servers = append(r.servers, e)
		return wrapRec(p, e)
	})
}

func (r *run) do() {
	t := r.t
	path := filepath.Join(t.TempDir(), "s.sock")
	var dest string
	r.loop.Do(func() {
		var err error
		switch r.tr {
		case "tcp":
			var p *tcp.Port
			p, err = tcp.Listen(r.loop.Loop, "127.0.0.1:0", r.serverFactory(), tcp.ListenOptions{})
			if err == nil {
				r.port, dest = p, p.Addr().String()
			}
		case "unix":
			var p *gunix.Port
			p, err = gunix.Listen(r.loop.Loop, path, r.serverFactory(), gunix.ListenOptions{})
			if err == nil {
				r.port, dest = p, path
			}
		case "tls":
			var p *tcp.Port
			p, err = gtls.Listen(r.loop.Loop, "127.0.0.1:0", r.serverFactory(), r.pki.ServerConfig(), gtls.ListenOptions{})
			if err == nil {
				r.port, dest = p, p.Addr().String()
			}
		}
		if err != nil {
			t.Errorf("listen: %v", err)
			return
		}
		rng := rand.New(rand.NewPCG(r.seed, 7))
		for i := range nClients {
			e := &end{client: true, id: i, r: r}
			r.clients = append(r.clients, e)
			cl := &client{e: e, req: r.script(rng, e)}
			cf := &clientFactory{e: e}
			cf.Build = func(net.Addr) transports.Protocol { return wrapRec(cl, e) }
			switch r.tr {
			case "tcp":
				_, err = tcp.Connect(r.loop.Loop, dest, cf, tcp.ConnectOptions{Timeout: 5 * time.Second})
			case "unix":
				_, err = gunix.Connect(r.loop.Loop, dest, cf, gunix.ConnectOptions{Timeout: 5 * time.Second})
			case "tls":
				_, err = gtls.Connect(r.loop.Loop, dest, cf, r.pki.ClientConfig("localhost"),
					gtls.ConnectOptions{ConnectOptions: tcp.ConnectOptions{Timeout: 5 * time.Second}})
			}
			if err != nil {
				t.Errorf("connect: %v", err)
			}
		}
	})
	if t.Failed() {
		return
	}
	// Every client ends (lost or failed), then every server connection.
	if !r.loop.Eventually(15*time.Second, func() bool { return r.done == nClients }) {
		t.Errorf("clients did not finish: %d of %d", r.done, nClients)
	}
	if !r.loop.Eventually(10*time.Second, func() bool {
		for _, s := range r.servers {
			if s.lost == 0 {
				return false
			}
		}
		return true
	}) {
		r.loop.Do(func() {
			for _, s := range r.servers {
				if s.lost == 0 {
					t.Errorf("server conn %d still open: got %d bytes, wrote %d", s.id, len(s.got), len(s.written))
				}
			}
		})
	}
	r.loop.Do(func() { _ = r.port.Close() })
	inj := r.h.settle()
	r.h.stop(inj, r.check)
}

// check verifies the byte and lifecycle invariants on the recorded ends.
func (r *run) check() {
	t := r.t
	for _, e := range append(append([]*end(nil), r.clients...), r.servers...) {
		who := fmt.Sprintf("server conn %d", e.id)
		if e.client {
			who = fmt.Sprintf("client %d", e.id)
		}
		if e.failed != nil {
			if e.t != nil || e.lost != 0 {
				t.Errorf("%s: connection failed (%v) yet was made", who, e.failed)
			}
			continue
		}
		if e.lost != 1 {
			t.Errorf("%s: ConnectionLost %d times", who, e.lost)
		}
		if e.after != 0 {
			t.Errorf("%s: %d events after ConnectionLost", who, e.after)
		}
	}
	// Pair each server connection with the client whose written stream
	// starts with what the server received (client scripts are unique).
	if r.pr == "echo" {
		for _, c := range r.clients {
			if c.failed == nil {
				c.want = c.written
			}
		}
	}
	for _, s := range r.servers {
		if len(s.got) == 0 {
			continue
		}
		var c *end
		for _, cand := range r.clients {
			if bytes.HasPrefix(cand.written, s.got[:min(len(s.got), 64)]) {
				c = cand
				break
			}
		}
		if c == nil {
			t.Errorf("server conn %d received bytes no client wrote: %q", s.id, s.got[:min(len(s.got), 64)])
			continue
		}
		loss := !c.clean() || !s.clean()
		if !bytes.HasPrefix(c.written, s.got) {
			t.Errorf("client %d → server: delivered bytes are not a prefix of the written ones (%d of %d)", c.id, len(s.got), len(c.written))
		} else if len(s.got) < len(c.written) && !loss {
			t.Errorf("client %d → server: %d of %d bytes delivered, yet both ends closed cleanly (client %v, server %v)",
				c.id, len(s.got), len(c.written), c.reason, s.reason)
		}
		if !bytes.HasPrefix(s.written, c.got) {
			t.Errorf("server → client %d: delivered bytes are not a prefix of the written ones (%d of %d)", c.id, len(c.got), len(s.written))
		} else if len(c.got) < len(s.written) && !loss {
			t.Errorf("server → client %d: %d of %d bytes delivered, yet both ends closed cleanly (client %v, server %v)",
				c.id, len(c.got), len(s.written), c.reason, s.reason)
		}
		// The application's view: a connection that ended cleanly on
		// both sides carried every request and every reply.
		if c.want != nil && !bytes.HasPrefix(c.want, c.got) {
			t.Errorf("client %d: reply stream is not a prefix of the expected one", c.id)
		}
		if !loss {
			switch {
			case c.want != nil && !bytes.Equal(c.got, c.want):
				t.Errorf("client %d: clean connection, %d of %d reply bytes", c.id, len(c.got), len(c.want))
			case c.wantN > 0 && bytes.Count(c.got, []byte("HTTP/1.1 200 OK\r\n")) != c.wantN:
				t.Errorf("client %d: clean connection, %d of %d HTTP replies", c.id, bytes.Count(c.got, []byte("HTTP/1.1 200 OK\r\n")), c.wantN)
			}
		}
	}
}
