// Package resp is a Redis-protocol (RESP2) server with an in-memory string
// store, written against the transports contracts only, so it runs on any
// gyre transport and is tested without sockets.
//
// It speaks inline and multibulk requests, runs every complete request of a
// received chunk (pipelining) and answers the whole chunk with one Write. The
// commands are PING, ECHO, SET (EX, PX, EXAT, PXAT, KEEPTTL, NX, XX, GET),
// GET, GETSET, GETDEL, SETNX, SETEX, PSETEX, APPEND, STRLEN, DEL, UNLINK,
// EXISTS, TYPE, KEYS, INCR, DECR, INCRBY, DECRBY, MSET, MSETNX, MGET, EXPIRE,
// PEXPIRE, EXPIREAT, PEXPIREAT, TTL, PTTL, PERSIST, DBSIZE, FLUSHALL, FLUSHDB,
// SELECT 0, COMMAND (with COUNT, INFO, DOCS, LIST), CONFIG GET/SET/RESETSTAT,
// INFO, CLIENT (SETNAME, GETNAME, ID, SETINFO), HELLO 2, RESET and QUIT —
// enough for redis-cli and redis-benchmark. Error replies use Redis's
// wording. Requests past the configured limits get a "-ERR Protocol error"
// reply and the connection is closed.
//
// A server is a few lines:
//
//	f := resp.NewFactory(resp.NewStore(), resp.Options{})
//	port, err := tcp.Listen(loop, "127.0.0.1:6380", f, tcp.ListenOptions{})
//
// Like every gyre protocol, a connection's methods run on its loop goroutine;
// see Store for sharing a keyspace between loops.
package resp

import (
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gyre-io/gyre/protocols/internal/flow"
	"github.com/gyre-io/gyre/transports"
)

// Default limits, as in Redis.
const (
	// DefaultMaxBulkLen is Redis's proto-max-bulk-len: 512 MiB.
	DefaultMaxBulkLen = 512 << 20
	// DefaultMaxArgs is the default limit on the arguments of one request.
	DefaultMaxArgs = 1 << 20
	// DefaultMaxInlineLen is Redis's PROTO_INLINE_MAX_SIZE: the longest inline
	// request and length line, 64 KiB.
	DefaultMaxInlineLen = 64 << 10
	// DefaultMaxQueryBuffer is Redis's client-query-buffer-limit: 1 GiB of one
	// unfinished request.
	DefaultMaxQueryBuffer = 1 << 30
)

// Options configure a Factory. The zero value takes the defaults.
type Options struct {
	// MaxBulkLen is the largest bulk string a request may carry
	// (default DefaultMaxBulkLen).
	MaxBulkLen int64
	// MaxArgs is the largest argument count of a multibulk request
	// (default DefaultMaxArgs).
	MaxArgs int
	// MaxInlineLen is the longest inline request line (counted up to its LF)
	// and the longest "*<n>" or "$<len>" line (up to its CR)
	// (default DefaultMaxInlineLen).
	MaxInlineLen int
	// MaxQueryBuffer bounds the bytes buffered for one unfinished request
	// (default DefaultMaxQueryBuffer).
	MaxQueryBuffer int
	// DisableBackpressure turns the default flow control off. By default each
	// connection is its transport's streaming producer: while the write queue
	// is above the transport's high watermark, no further pipelined request
	// is run and reading pauses, until the queue drains to the low watermark;
	// so a client that pipelines without reading cannot grow the server's
	// memory without bound. A client that writes a whole pipeline before it
	// reads any reply then stalls once the replies fill the socket buffers
	// and the watermark. With DisableBackpressure the server keeps reading
	// and queues every reply, as Redis does for normal clients (its output
	// buffers grow without limit).
	DisableBackpressure bool
	// Config adds to or overrides the answers of CONFIG GET (names are
	// matched case-insensitively). The built-in answers are the few clients ask for at start:
	// save "", appendonly "no", databases "1", proto-max-bulk-len, and so on.
	Config map[string]string
}

func (o Options) withDefaults() Options {
	if o.MaxBulkLen <= 0 {
		o.MaxBulkLen = DefaultMaxBulkLen
	}
	if o.MaxArgs <= 0 {
		o.MaxArgs = DefaultMaxArgs
	}
	if o.MaxInlineLen <= 0 {
		o.MaxInlineLen = DefaultMaxInlineLen
	}
	if o.MaxQueryBuffer <= 0 {
		o.MaxQueryBuffer = DefaultMaxQueryBuffer
	}
	return o
}

// Factory builds RESP server connections on one Store. It implements
// transports.Factory. All its methods are goroutine-safe, so several loops may
// share one Factory — but then its Store must come from NewSharedStore; with
// a NewStore store, use one Factory (and Store) per loop.
type Factory struct {
	store  *Store
	opts   Options
	config map[string]string

	clients atomic.Int64
	ids     atomic.Int64
}

// NewFactory returns a factory serving store (a new NewStore() when nil) with
// opts. opts.Config is copied.
func NewFactory(store *Store, opts Options) *Factory {
	if store == nil {
		store = NewStore()
	}
	opts = opts.withDefaults()
	f := &Factory{store: store, opts: opts}
	f.config = map[string]string{
		"save":                      "",
		"appendonly":                "no",
		"databases":                 "1",
		"maxmemory":                 "0",
		"maxclients":                "10000",
		"timeout":                   "0",
		"proto-max-bulk-len":        formatIntString(opts.MaxBulkLen),
		"client-query-buffer-limit": formatIntString(int64(opts.MaxQueryBuffer)),
		"cluster-enabled":           "no",
	}
	for k, v := range opts.Config {
		f.config[strings.ToLower(k)] = v
	}
	return f
}

func formatIntString(v int64) string { return string(formatInt(nil, v)) }

// Store returns the factory's store (see Store for who may touch it).
func (f *Factory) Store() *Store { return f.store }

// BuildProtocol returns a new server connection; it never refuses. The
// connection's methods run on the loop goroutine of its transport.
func (f *Factory) BuildProtocol(net.Addr) transports.Protocol {
	c := &conn{f: f, s: f.store, id: f.ids.Add(1)}
	c.p.init(f.opts.MaxBulkLen, int64(f.opts.MaxArgs), f.opts.MaxInlineLen)
	return c
}

// Buffer sizes kept between requests; anything bigger is released once empty.
const (
	flushAt    = 64 << 10 // write the replies of a batch early past this size
	keepOut    = 256 << 10
	keepBuffer = 64 << 10
)

// conn is one client connection. All methods run on the loop goroutine.
type conn struct {
	f   *Factory
	s   *Store
	t   transports.Transport
	clk transports.Clock
	id  int64

	p       parser
	buf     []byte   // unparsed input kept between DataReceived calls
	argv    [][]byte // the running request's arguments; reused
	scratch []byte   // unescaped inline arguments
	out     []byte   // replies not yet written
	gate    flow.Gate
	busy    bool // process is running

	now     int64 // ms since the store's origin, valid when nowOK
	nowOK   bool
	locked  bool
	closing bool // QUIT or a protocol error: no more requests
	name    string
}

// ConnectionMade implements transports.Protocol.
func (c *conn) ConnectionMade(t transports.Transport) {
	c.t = t
	c.clk = t.Clock()
	c.f.clients.Add(1)
	if !c.f.opts.DisableBackpressure {
		_ = c.gate.Start(t, c.drained)
	}
}

// ConnectionLost implements transports.Protocol.
func (c *conn) ConnectionLost(error) {
	c.f.clients.Add(-1)
	c.closing = true
	c.gate.Close()
	c.buf, c.out, c.argv, c.scratch = nil, nil, nil, nil
	c.p.reset()
}

// DataReceived implements transports.Protocol: it runs every complete request
// in the buffered input and writes their replies. While the write queue is
// above its high watermark the remaining requests stay buffered (see
// Options.DisableBackpressure).
func (c *conn) DataReceived(p []byte) {
	if c.closing {
		return
	}
	c.consume(p)
}

// drained runs when the write queue has drained: the requests kept while
// paused are run.
func (c *conn) drained() {
	if c.closing || c.busy || len(c.buf) == 0 {
		return
	}
	c.consume(nil)
}

// consume runs the requests of the buffered input followed by p.
func (c *conn) consume(p []byte) {
	b := p
	owned := len(c.buf) > 0
	if owned {
		if need := len(c.buf) + len(p); need > cap(c.buf) {
			c.grow(need)
		}
		c.buf = append(c.buf, p...)
		b = c.buf
	}
	c.nowOK = false
	c.process(b)
	if c.closing {
		c.buf = nil
		c.p.reset()
		return
	}
	rest := b[c.p.start:]
	switch {
	case owned:
		if c.p.start > 0 { // (start == 0: nothing consumed, nothing to move)
			n := copy(c.buf, rest)
			c.buf = c.buf[:n]
		}
	case len(rest) > 0:
		c.buf = append(c.buf[:0], rest...)
	}
	c.p.shift(c.p.start)
	if len(c.buf) == 0 && cap(c.buf) > keepBuffer {
		c.buf = nil
	}
}

// grow makes room for need bytes in c.buf: it doubles the capacity, but
// never past the end of the bulk being read when that is known, so a big
// value costs about twice its size in buffer allocations (append's 1.25x
// growth would cost about five times), while a client that announces a huge
// bulk still has to send half of it before the buffer reaches full size.
func (c *conn) grow(need int) {
	target := max(need, 2*cap(c.buf))
	if c.p.n >= 0 && c.p.bulk >= 0 {
		if want := c.p.pos + c.p.bulk + 2; want >= need && want < target {
			target = want
		}
	}
	nb := make([]byte, len(c.buf), target)
	copy(nb, c.buf)
	c.buf = nb
}

// process runs the complete requests of b, then writes the replies. It stops
// early, at a request boundary, while the gate holds reading.
func (c *conn) process(b []byte) {
	c.busy = true
	defer func() { c.busy = false }()
	c.lock()
	for !c.closing && !c.gate.Held() {
		r := c.p.next(b)
		switch r {
		case needMore:
			if len(b)-c.p.start > c.f.opts.MaxQueryBuffer {
				c.protocolError("ERR Protocol error: query buffer limit exceeded")
			}
		case gotEmpty:
			c.p.start = c.p.pos
			continue
		case gotError:
			c.protocolError(c.p.err)
		case gotRequest:
			if c.p.pos-c.p.start > c.f.opts.MaxQueryBuffer {
				// Checked on complete requests too, so the outcome does not
				// depend on how the request was split.
				c.protocolError("ERR Protocol error: query buffer limit exceeded")
				break
			}
			argv := c.argv[:0]
			for _, a := range c.p.args {
				argv = append(argv, b[a.lo:a.hi:a.hi])
			}
			c.argv = argv
			c.p.start = c.p.pos
			c.exec(argv)
			c.maybeFlush()
			continue
		case gotInline:
			if c.p.pos-c.p.start > c.f.opts.MaxQueryBuffer {
				c.protocolError("ERR Protocol error: query buffer limit exceeded")
				break
			}
			argv, ok := splitInline(b[c.p.line.lo:c.p.line.hi], c.argv[:0], &c.scratch)
			c.argv = argv
			c.p.start = c.p.pos
			if !ok {
				c.protocolError("ERR Protocol error: unbalanced quotes in request")
				break
			}
			if len(argv) > 0 {
				c.exec(argv)
			}
			c.maybeFlush()
			continue
		}
		break
	}
	if len(c.s.volatile) > 0 {
		c.s.sweep(c.clockNow())
	}
	c.unlock()
	c.flush()
	clear(c.argv) // drop references into the receive buffer
	if c.closing {
		_ = c.t.LoseConnection()
	}
}

// protocolError answers msg and ends the connection after the replies so far.
func (c *conn) protocolError(msg string) {
	c.out = appendError(c.out, msg)
	c.closing = true
}

// maybeFlush writes the replies early, outside the store lock, when a batch's
// replies grow past flushAt.
func (c *conn) maybeFlush() {
	if len(c.out) < flushAt {
		return
	}
	c.unlock()
	c.flush()
	c.lock()
}

// flush writes the pending replies. Call it without the store lock.
func (c *conn) flush() {
	if len(c.out) > 0 {
		_ = c.t.Write(c.out)
		c.out = c.out[:0]
		if cap(c.out) > keepOut {
			c.out = nil
		}
	}
}

func (c *conn) lock() {
	if !c.locked {
		c.s.lock()
		c.locked = true
	}
}

func (c *conn) unlock() {
	if c.locked {
		c.s.unlock()
		c.locked = false
	}
}

// clockNow is the batch's time in the store's milliseconds, read once per
// DataReceived and only when needed.
func (c *conn) clockNow() int64 {
	if !c.nowOK {
		var t time.Time
		if c.clk != nil {
			t = c.clk.Now()
		} else {
			t = time.Now()
		}
		c.now = c.s.rel(t)
		c.nowOK = true
	}
	return c.now
}

// lookup returns key's live entry, removing it if it expired.
func (c *conn) lookup(key []byte) *entry {
	e := c.s.m[string(key)]
	if e != nil && e.exp != 0 && c.clockNow() > e.exp {
		c.s.remove(e)
		return nil
	}
	return e
}
