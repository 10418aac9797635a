package basic

import (
	"fmt"

	"github.com/gyre-io/gyre/transports"
)

// stepper parses one frame off the front of s.cur. It must advance s.cur past
// the bytes it uses before it calls any user callback (so the callback may
// clear, insert or pause), and it reports false when s.cur holds no complete
// frame yet.
type stepper interface {
	step(s *stream) bool
}

// maxKeep is the buffer capacity kept across frames; a larger buffer, grown for
// one big frame, is released once it empties.
const maxKeep = 256 << 10

// stream is the input side shared by the framers: it hands bytes to a stepper,
// straight from the caller's slice when nothing is buffered, and keeps the
// unparsed rest in a reused buffer.
//
// While the stepper runs (busy), the pending input is cur followed by
// buf[tail:] (bytes fed re-entrantly or inserted); cur may point into p or into
// buf[:tail], which is never written while busy, so slices handed to callbacks
// stay intact. Otherwise the pending input is buf[off:].
type stream struct {
	buf     []byte
	off     int
	tail    int
	cur     []byte
	busy    bool
	paused  bool
	stopped bool
}

// feed delivers p to f.
func (s *stream) feed(p []byte, f stepper) {
	if s.stopped || len(p) == 0 {
		return
	}
	if s.busy {
		s.buf = append(s.buf, p...)
		return
	}
	if s.paused || s.off < len(s.buf) {
		s.buf = append(s.buf, p...)
		s.drain(f)
		return
	}
	// Fast path: nothing is buffered, so parse p in place.
	s.buf, s.off, s.tail = s.buf[:0], 0, 0
	s.cur = p
	s.run(f)
	reentrant := len(s.buf) > 0
	if len(s.cur) > 0 {
		// Keep the unparsed rest of p ahead of anything fed meanwhile.
		s.buf = insertAt(s.buf, 0, s.cur)
	}
	s.cur = nil
	if reentrant {
		s.drain(f)
	} else if len(s.buf) == 0 && cap(s.buf) > maxKeep {
		s.buf = nil
	}
}

// run steps f over s.cur until it is used up, f needs more, or the stream is
// paused or stopped.
func (s *stream) run(f stepper) {
	s.busy = true
	defer s.idle() // a panicking callback must not wedge the stream
	for len(s.cur) > 0 && !s.paused && !s.stopped {
		if !f.step(s) {
			break
		}
	}
}

func (s *stream) idle() { s.busy = false }

// drain parses buffered input. Not called while busy.
func (s *stream) drain(f stepper) {
	for !s.paused && !s.stopped && s.off < len(s.buf) {
		n := len(s.buf)
		s.tail = n
		s.cur = s.buf[s.off:n]
		s.run(f)
		s.off = s.tail - len(s.cur)
		s.cur = nil
		if len(s.buf) == n {
			break // nothing new arrived: all used, or an incomplete frame
		}
	}
	s.compact()
}

// compact moves the pending bytes to the front of buf. Not called while busy.
func (s *stream) compact() {
	if s.off == len(s.buf) {
		s.buf, s.off = s.buf[:0], 0
		if cap(s.buf) > maxKeep {
			s.buf = nil
		}
		return
	}
	if s.off > 0 {
		n := copy(s.buf, s.buf[s.off:])
		s.buf, s.off = s.buf[:n], 0
	}
}

// pending reports how many bytes are waiting to be parsed.
func (s *stream) pending() int {
	if s.busy {
		return len(s.cur) + len(s.buf) - s.tail
	}
	return len(s.buf) - s.off
}

// take removes and returns (as a fresh copy) all pending input.
func (s *stream) take() []byte {
	if s.pending() == 0 {
		return nil
	}
	var out []byte
	if s.busy {
		out = append(append(out, s.cur...), s.buf[s.tail:]...)
		s.cur = nil
		s.buf = s.buf[:s.tail]
	} else {
		out = append(out, s.buf[s.off:]...)
		s.buf, s.off = s.buf[:0], 0
	}
	return out
}

// discard drops all pending input.
func (s *stream) discard() {
	if s.busy {
		s.cur = nil
		s.buf = s.buf[:s.tail]
		return
	}
	s.buf, s.off = s.buf[:0], 0
}

// insert places a copy of extra ahead of the pending input that has not been
// handed to the stepper yet (while busy: after the rest of cur).
func (s *stream) insert(extra []byte) {
	at := s.off
	if s.busy {
		at = s.tail
	}
	s.buf = insertAt(s.buf, at, extra)
}

// insertAt returns buf with a copy of x inserted at index at, without touching
// buf[:at] (callbacks may hold slices of it).
func insertAt(buf []byte, at int, x []byte) []byte {
	n := len(buf)
	buf = append(buf, x...)
	if n > at {
		// buf[at:] is old ++ x; rotate it to x ++ old.
		r := buf[at:]
		k := n - at
		reverse(r[:k])
		reverse(r[k:])
		reverse(r)
	}
	return buf
}

func reverse(b []byte) {
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
}

// disconnecter is implemented by transports that can say LoseConnection was
// called (the string transport does); framers stop handing out frames then.
type disconnecter interface {
	Disconnecting() bool
}

// conn is the connection bookkeeping the framers share.
type conn struct {
	t    transports.Transport
	dc   disconnecter
	s    stream
	wbuf [3][]byte // scratch for WriteBuffers, so sends do not allocate
	made bool      // ConnectionMade has run at least once
}

func (c *conn) connectionMade(t transports.Transport) {
	c.t = t
	c.made = true
	c.dc, _ = t.(disconnecter)
	c.s.stopped = false
}

func (c *conn) connectionLost() {
	c.s.stopped = true
	c.s.discard()
	c.t, c.dc = nil, nil
}

// afterCallback stops the stream if the transport started disconnecting.
func (c *conn) afterCallback() {
	if c.dc != nil && c.dc.Disconnecting() {
		c.s.stopped = true
	}
}

func (c *conn) loseConnection() error {
	c.s.stopped = true
	if c.t == nil {
		return transports.ErrNotConnected
	}
	return c.t.LoseConnection()
}

func (c *conn) pause() {
	c.s.paused = true
	if c.t != nil {
		c.t.PauseReading()
	}
}

func (c *conn) resume(f stepper) {
	c.s.paused = false
	if c.t != nil {
		c.t.ResumeReading()
	}
	if !c.s.busy {
		c.s.drain(f)
	}
}

func (c *conn) stop() {
	c.s.paused = true
	_ = c.loseConnection()
}

// notConnected is the error of a send without a transport: after
// ConnectionLost, plain transports.ErrNotConnected; before any
// ConnectionMade, one that says the usual cause (a protocol embedding the
// framer defined its own ConnectionMade and did not call the framer's).
func (c *conn) notConnected(typ string) error {
	if c.made {
		return transports.ErrNotConnected
	}
	return fmt.Errorf("%w: basic.%s has no transport yet: did you forget to call %s.ConnectionMade from your ConnectionMade?",
		transports.ErrNotConnected, typ, typ)
}

// noHandler is the panic of a framer that completed a frame for a nil
// callback field: the frame would be lost silently. Like an exception from
// Twisted's unimplemented lineReceived, it ends the connection: the
// transport recovers the panic, reports it to the loop (Config.OnError,
// logged by default) and aborts the connection, whose ConnectionLost reason
// matches ErrNoHandler.
func noHandler(typ, field string) {
	panic(fmt.Errorf("%w: basic.%s.%s is nil, so a received frame would be dropped; set it before data arrives",
		ErrNoHandler, typ, field))
}

// write2 writes a then b as one WriteBuffers call; typ names the framer for
// the not-connected error.
func (c *conn) write2(typ string, a, b []byte) error {
	if c.t == nil {
		return c.notConnected(typ)
	}
	c.wbuf[0], c.wbuf[1] = a, b
	err := c.t.WriteBuffers(c.wbuf[:2])
	c.wbuf[0], c.wbuf[1] = nil, nil
	return err
}
