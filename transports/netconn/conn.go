package netconn

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
)

// maxChunk is the most the loop hands the transport from one Write per
// step; the rest waits until the transport's queue is below its high
// watermark again, so a large Write never copies more than this past the
// watermark.
const maxChunk = 64 << 10

// Conn is a net.Conn backed by a gyre stream connection (TCP or UNIX). It is
// what Dial returns and Listener.Accept hands out; its methods are
// goroutine-safe and block in the Go way. It adds CloseRead and CloseWrite,
// as *net.TCPConn and *net.UnixConn have them.
//
// Never call a blocking method (Read, Write, or Listener.Close and Accept)
// from the loop's goroutine — a Protocol callback or a function passed to
// loop.Call: the loop would wait for itself.
//
// How it works: the connection's protocol runs on the loop and copies what
// arrives into a per-connection buffer (reused, so steady-state reading
// allocates nothing); when the buffer holds Config.ReadBuffer bytes or more
// the socket is paused (Transport.PauseReading) and resumed once a reader has
// drained it to half. Write queues a reference to the caller's slice (no
// copy), makes sure one flush is scheduled on the loop (one loop.Call serves
// every Write queued meanwhile, by any goroutine), and waits: the flush hands
// the bytes to Transport.Write, which copies them, in chunks of at most 64
// KiB, and stops while the transport's write queue is above its high
// watermark (the adapter is registered on the transport as a push producer,
// so it learns of pause and resume). Write returns once all of p has been
// accepted by the transport; what happens to it next is the transport's job
// (it is flushed before a Close or CloseWrite takes effect).
type Conn struct {
	loop      *reactor.Loop
	network   string
	readLimit int
	ln        *Listener // the listener that accepted it; nil for Dial

	// Set on the loop before the Conn is handed out; read-only afterwards.
	local, remote net.Addr

	mu    sync.Mutex
	rcond sync.Cond // readers wait here
	wcond sync.Cond // writers wait here

	// Read side (under mu).
	rbuf         []byte // buffered bytes are rbuf[roff:]
	roff         int
	peak         int   // most bytes ever buffered (tests)
	rerr         error // io.EOF or the loss, once the read direction ended
	readClosed   bool  // CloseRead was called
	readPaused   bool  // PauseReading was called on the transport
	resumeQueued bool
	rdl          deadline

	// Write side (under mu).
	wq          []*writeReq // waiting writes, oldest first
	free        []*writeReq // spare requests
	flushQueued bool
	calls       int   // flushes scheduled by Write (loop.Call), for tests
	werr        error // the write direction ended (CloseWrite, a failed Write)
	wdl         deadline

	closed bool  // Close was called
	lost   error // ConnectionLost's reason (nil while connected)

	// Loop only.
	t        transports.Transport
	gone     bool // ConnectionLost ran: t must not be used any more
	paused   bool // the transport paused us as a producer
	flushing bool

	flushFn, resumeFn, closeWriteFn, closeFn func()
}

// writeReq is one Write waiting for the loop. p belongs to the waiting
// writer, which stays inside Write until done is set or it has removed the
// request from the queue (never while taking: the loop is copying from p).
type writeReq struct {
	p      []byte
	n      int // bytes of p accepted by the transport
	done   bool
	taking bool
}

func newConn(loop *reactor.Loop, network string, readLimit int) *Conn {
	c := &Conn{loop: loop, network: network, readLimit: readLimit}
	c.rcond.L = &c.mu
	c.wcond.L = &c.mu
	c.flushFn = c.flush
	c.resumeFn = c.resume
	c.closeWriteFn = c.closeWriteLoop
	c.closeFn = c.closeLoop
	return c
}

func (c *Conn) opErr(op string, err error) error {
	if err == io.EOF {
		return err
	}
	return &net.OpError{Op: op, Net: c.network, Source: c.local, Addr: c.remote, Err: err}
}

// Read implements net.Conn: it waits until bytes are buffered, the read
// direction has ended (io.EOF after the peer's end of stream or CloseRead;
// the loss's reason, matching transports.ErrConnectionLost, after a reset),
// the read deadline passes (an error matching os.ErrDeadlineExceeded whose
// Timeout() is true) or the Conn is closed (net.ErrClosed). Buffered bytes
// are returned before an end of stream or a loss. Goroutine-safe.
func (c *Conn) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		switch {
		case c.closed:
			return 0, c.opErr("read", net.ErrClosed)
		case c.rdl.expired():
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		case c.readClosed:
			return 0, io.EOF
		}
		if avail := len(c.rbuf) - c.roff; avail > 0 {
			n := copy(b, c.rbuf[c.roff:])
			c.roff += n
			if c.roff == len(c.rbuf) {
				c.rbuf = c.rbuf[:0]
				c.roff = 0
			}
			c.maybeResumeLocked()
			return n, nil
		}
		if len(b) == 0 {
			return 0, nil
		}
		if c.rerr != nil {
			return 0, c.opErr("read", c.rerr)
		}
		c.rcond.Wait()
	}
}

// maybeResumeLocked asks the loop to resume reading once a paused
// connection's buffer has been drained to half (or reading was closed:
// what arrives from then on is discarded).
func (c *Conn) maybeResumeLocked() {
	if !c.readPaused || c.resumeQueued || c.lost != nil {
		return
	}
	if !c.readClosed && len(c.rbuf)-c.roff > c.readLimit/2 {
		return
	}
	c.resumeQueued = true
	if c.loop.Call(c.resumeFn) != nil {
		c.resumeQueued = false
	}
}

// resume runs on the loop.
func (c *Conn) resume() {
	c.mu.Lock()
	c.resumeQueued = false
	do := c.readPaused && !c.closed && (c.readClosed || len(c.rbuf)-c.roff < c.readLimit)
	if do {
		c.readPaused = false
	}
	c.mu.Unlock()
	if do && !c.gone {
		c.t.ResumeReading()
	}
}

// Write implements net.Conn: it returns once all of p has been accepted by
// the transport (len(p), nil), or with the count accepted so far and an
// error: net.ErrClosed after Close, one matching os.ErrDeadlineExceeded
// (Timeout() true) when the write deadline passes, syscall.EPIPE after
// CloseWrite or once the connection has ended cleanly, the loss's reason
// (matching transports.ErrConnectionLost) after a reset. It blocks while
// the transport's write queue is above its high watermark. p is not
// retained after Write returns. Goroutine-safe; concurrent Writes are not
// interleaved (each is accepted whole, in the order they were queued).
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.writeErrLocked(); err != nil {
		return 0, c.opErr("write", err)
	}
	if len(p) == 0 {
		return 0, nil
	}
	r := c.getReq()
	r.p = p
	c.wq = append(c.wq, r)
	if !c.flushQueued {
		c.flushQueued = true
		c.calls++
		if err := c.loop.Call(c.flushFn); err != nil {
			c.flushQueued = false
			c.removeReq(r)
			return 0, c.opErr("write", err)
		}
	}
	for !r.done {
		if err := c.writeErrLocked(); err != nil {
			if r.taking {
				c.wcond.Wait()
				continue
			}
			n := r.n
			c.removeReq(r)
			return n, c.opErr("write", err)
		}
		c.wcond.Wait()
	}
	n := r.n
	c.putReq(r)
	return n, nil
}

// writeErrLocked is why a Write cannot go on, or nil.
func (c *Conn) writeErrLocked() error {
	switch {
	case c.closed:
		return net.ErrClosed
	case c.werr != nil:
		return c.werr
	case c.lost != nil:
		if isDone(c.lost) {
			return syscall.EPIPE
		}
		return c.lost
	case c.wdl.expired():
		return os.ErrDeadlineExceeded
	}
	return nil
}

// isDone reports a clean end (transports.ErrConnectionDone).
func isDone(err error) bool {
	return errors.Is(err, transports.ErrConnectionDone) && !errors.Is(err, transports.ErrConnectionLost)
}

func (c *Conn) getReq() *writeReq {
	if n := len(c.free); n > 0 {
		r := c.free[n-1]
		c.free = c.free[:n-1]
		return r
	}
	return new(writeReq)
}

func (c *Conn) putReq(r *writeReq) {
	*r = writeReq{}
	c.free = append(c.free, r)
}

// removeReq takes a request that is not done out of the queue and recycles it.
func (c *Conn) removeReq(r *writeReq) {
	for i, q := range c.wq {
		if q == r {
			copy(c.wq[i:], c.wq[i+1:])
			c.wq[len(c.wq)-1] = nil
			c.wq = c.wq[:len(c.wq)-1]
			break
		}
	}
	c.putReq(r)
}

// flush runs on the loop: it hands queued writes to the transport, oldest
// first, until the queue is empty or the transport pauses us.
func (c *Conn) flush() {
	if c.flushing { // re-entered from inside Transport.Write (ResumeProducing)
		return
	}
	c.flushing = true
	c.mu.Lock()
	c.flushQueued = false
	for len(c.wq) > 0 && !c.paused && !c.gone && !c.closed && c.werr == nil {
		r := c.wq[0]
		chunk := r.p[r.n:]
		if len(chunk) > maxChunk {
			chunk = chunk[:maxChunk]
		}
		r.taking = true
		c.mu.Unlock()
		err := c.t.Write(chunk)
		c.mu.Lock()
		r.taking = false
		if err != nil {
			if c.werr == nil {
				c.werr = err
			}
			c.wcond.Broadcast()
			break
		}
		r.n += len(chunk)
		if r.n == len(r.p) {
			r.done = true
			copy(c.wq, c.wq[1:])
			c.wq[len(c.wq)-1] = nil
			c.wq = c.wq[:len(c.wq)-1]
			c.wcond.Broadcast()
		}
	}
	// A writer that timed out while its request was being taken waits for
	// taking to clear.
	c.wcond.Broadcast()
	c.mu.Unlock()
	c.flushing = false
}

// CloseRead shuts the read direction: Read returns io.EOF from now on and
// what is buffered or still arrives is discarded (the socket keeps being
// read, so the peer is not blocked). Goroutine-safe.
func (c *Conn) CloseRead() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opErr("close", net.ErrClosed)
	}
	c.readClosed = true
	c.rbuf, c.roff = nil, 0
	c.rcond.Broadcast()
	c.maybeResumeLocked()
	return nil
}

// CloseWrite shuts the write direction once every byte accepted so far has
// been sent: the peer then reads end of stream (TCP FIN, Transport.CloseWrite).
// Writes waiting meanwhile, and later ones, fail with syscall.EPIPE.
// Reading goes on. Goroutine-safe; it does not wait for the FIN.
func (c *Conn) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opErr("close", net.ErrClosed)
	}
	if c.werr != nil || c.lost != nil {
		return nil
	}
	c.werr = syscall.EPIPE
	c.wcond.Broadcast()
	if err := c.loop.Call(c.closeWriteFn); err != nil {
		return c.opErr("close", err)
	}
	return nil
}

func (c *Conn) closeWriteLoop() {
	if !c.gone {
		_ = c.t.CloseWrite()
	}
}

// Close implements net.Conn: blocked and later Reads and Writes return
// net.ErrClosed, buffered input is dropped, and the loop closes the
// connection after flushing what the transport has accepted
// (Transport.LoseConnection). A second Close returns net.ErrClosed.
// Goroutine-safe; it does not wait for the loop.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opErr("close", net.ErrClosed)
	}
	c.closed = true
	c.rbuf, c.roff = nil, 0
	c.rdl.stop()
	c.wdl.stop()
	c.rcond.Broadcast()
	c.wcond.Broadcast()
	if c.lost == nil {
		// Refused only once the loop has stopped, and then the loop's
		// shutdown has closed the connection already.
		_ = c.loop.Call(c.closeFn)
	}
	return nil
}

func (c *Conn) closeLoop() {
	if !c.gone {
		_ = c.t.LoseConnection()
	}
}

// LocalAddr is the local address: a *net.TCPAddr or a *net.UnixAddr.
// Goroutine-safe.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr is the peer's address: a *net.TCPAddr or a *net.UnixAddr.
// Goroutine-safe.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets both deadlines (see SetReadDeadline, SetWriteDeadline).
func (c *Conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opErr("set", net.ErrClosed)
	}
	c.rdl.set(t, &c.mu, &c.rcond)
	c.wdl.set(t, &c.mu, &c.wcond)
	return nil
}

// SetReadDeadline sets the time after which Read fails with an error
// matching os.ErrDeadlineExceeded (Timeout() true) until the deadline is
// moved; a Read blocked at the time of the change sees the new deadline at
// once. The zero time means no deadline. Goroutine-safe.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opErr("set", net.ErrClosed)
	}
	c.rdl.set(t, &c.mu, &c.rcond)
	return nil
}

// SetWriteDeadline is SetReadDeadline for Write. A Write that times out may
// have had part of p accepted; it returns that count.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opErr("set", net.ErrClosed)
	}
	c.wdl.set(t, &c.mu, &c.wcond)
	return nil
}

// side is the Conn's loop-side face: the transports.Protocol (half-closeable)
// and the push producer registered on the transport. Loop goroutine only.
type side Conn

func (c *Conn) protocol() transports.Protocol { return (*side)(c) }

func (s *side) ConnectionMade(t transports.Transport) {
	c := (*Conn)(s)
	c.t = t
	c.local = t.LocalAddr()
	c.remote = t.RemoteAddr()
	_ = t.RegisterProducer(s, true)
	if c.ln != nil {
		c.ln.deliver(c)
	}
}

func (s *side) DataReceived(p []byte) {
	c := (*Conn)(s)
	c.mu.Lock()
	if c.readClosed || c.closed {
		c.mu.Unlock()
		return
	}
	buffered := len(c.rbuf) - c.roff
	if buffered == 0 {
		c.rbuf, c.roff = c.rbuf[:0], 0
	} else if c.roff > 0 && cap(c.rbuf)-len(c.rbuf) < len(p) {
		copy(c.rbuf, c.rbuf[c.roff:])
		c.rbuf, c.roff = c.rbuf[:buffered], 0
	}
	c.rbuf = append(c.rbuf, p...)
	buffered += len(p)
	if buffered > c.peak {
		c.peak = buffered
	}
	pause := !c.readPaused && buffered >= c.readLimit
	if pause {
		c.readPaused = true
	}
	c.rcond.Broadcast()
	c.mu.Unlock()
	if pause {
		c.t.PauseReading()
	}
}

func (s *side) ReadConnectionLost() {
	c := (*Conn)(s)
	c.mu.Lock()
	if c.rerr == nil {
		c.rerr = io.EOF
	}
	c.rcond.Broadcast()
	c.mu.Unlock()
}

func (s *side) WriteConnectionLost() {}

func (s *side) ConnectionLost(reason error) {
	c := (*Conn)(s)
	c.gone = true
	c.mu.Lock()
	if reason == nil {
		reason = transports.ErrConnectionDone
	}
	c.lost = reason
	if c.rerr == nil {
		if isDone(reason) {
			c.rerr = io.EOF
		} else {
			c.rerr = reason
		}
	}
	c.rcond.Broadcast()
	c.wcond.Broadcast()
	c.mu.Unlock()
}

// PauseProducing: the transport's write queue passed its high watermark.
func (s *side) PauseProducing() { s.paused = true }

// ResumeProducing: the queue drained to the low watermark.
func (s *side) ResumeProducing() {
	s.paused = false
	(*Conn)(s).flush()
}

// StopProducing: the transport is going away; ConnectionLost follows.
func (s *side) StopProducing() { s.paused = true }
