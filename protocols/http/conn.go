package http

import (
	"time"

	"github.com/gyre-io/gyre/protocols/internal/flow"
	"github.com/gyre-io/gyre/transports"
)

// Connection states.
const (
	stHead    = iota // waiting for (the rest of) a request head
	stBody           // reading a Content-Length body
	stChunked        // decoding a chunked body
	stClosed         // answered with close or lost; input is ignored
)

// Timer modes.
const (
	tmNone = iota
	tmIdle
	tmHeader
)

const (
	// outFlush is how much response data collects before it is handed to
	// the transport in the middle of a batch.
	outFlush = 32 << 10
	// keepBuf is the largest buffer kept across requests; bigger ones are
	// dropped once empty.
	keepBuf = 256 << 10
	// lingerTimeout is how long a closing connection waits for the client
	// to close after our side was half-closed.
	lingerTimeout = 2 * time.Second
)

var errHeaderTimeout = perr(ErrBadRequest, "request head timed out")

// conn is the protocol of one HTTP connection. Every method runs on the
// connection's loop goroutine.
//
// Buffering: all input is appended to in. Requests are parsed in place, so
// the Request's strings point into in; in is compacted only between requests
// (never while a Request is live), and when append moves it the old array
// stays untouched, so the views stay correct until the handler returns.
// A chunked body is decoded in place in in, right after its head.
type conn struct {
	h   Handler
	o   *Options
	t   transports.Transport
	clk transports.Clock

	in        []byte
	rd        int // start of the unprocessed input (the current request)
	scan      headScan
	state     uint8
	bodyStart int // first body byte of the current request
	wr        int // chunked: end of the decoded body
	raw       int // chunked: first undecoded byte
	dec       ChunkedDecoder

	req Request
	w   response
	out []byte

	now      time.Time
	timer    transports.DelayedCall
	timerFn  func()
	deadline time.Time
	tmode    uint8

	dateSec int64
	date    []byte

	// gate pauses reading while the transport's write queue is above its
	// high watermark (a client pipelining without reading); while it holds,
	// no further buffered request is handled.
	gate       flow.Gate
	processing bool
	more       bool // input arrived while processing
	lost       bool // ConnectionLost ran
}

func newConn(h Handler, o *Options) *conn {
	c := &conn{h: h, o: o}
	c.dec.MaxBodyBytes = o.MaxBodyBytes
	c.dec.MaxTrailerBytes = o.MaxHeaderBytes
	c.w.c = c
	c.req.reset()
	return c
}

// ConnectionMade implements transports.Protocol.
func (c *conn) ConnectionMade(t transports.Transport) {
	c.t = t
	c.clk = t.Clock()
	c.req.RemoteAddr = t.RemoteAddr()
	c.timerFn = c.onTimer
	c.now = c.clk.Now()
	// Flow control: when the write queue fills (a client pipelining without
	// reading), stop reading until it drains.
	_ = c.gate.Start(t, c.drained)
	c.updateTimer()
}

// DataReceived implements transports.Protocol.
func (c *conn) DataReceived(p []byte) {
	if c.state == stClosed {
		return
	}
	c.in = append(c.in, p...)
	if c.processing {
		// Re-entered (from a handler's write, through flow control): the
		// running loop picks the bytes up.
		c.more = true
		return
	}
	c.now = c.clk.Now()
	c.run()
}

// ConnectionLost implements transports.Protocol.
func (c *conn) ConnectionLost(reason error) {
	c.state = stClosed
	c.lost = true
	c.timer.Cancel()
	c.gate.Close()
	c.in, c.out, c.w.buf = nil, nil, nil
	c.req.reset()
}

// drained runs when the transport's write queue has drained and nothing
// else holds reading: the requests kept while paused are handled.
func (c *conn) drained() {
	if c.state == stClosed || c.processing {
		return // a running batch sees the gate open and goes on
	}
	c.now = c.clk.Now()
	c.run()
}

// run processes buffered input, then sends the output, compacts the input
// and re-arms the timer.
func (c *conn) run() {
	c.processing = true
	for {
		c.more = false
		c.process()
		if !c.more || c.state == stClosed || c.gate.Held() {
			break
		}
	}
	c.processing = false
	if c.state == stClosed {
		return
	}
	c.flushOut()
	if c.state == stHead {
		switch {
		case c.rd == len(c.in):
			c.in = c.in[:0]
			if cap(c.in) > keepBuf {
				c.in = nil
			}
		case c.rd > 0:
			c.in = c.in[:copy(c.in, c.in[c.rd:])]
		}
		c.rd = 0
	}
	c.updateTimer()
}

// process handles every complete request in the input, in order.
func (c *conn) process() {
	r := &c.req
	for c.state != stClosed && !c.gate.Held() {
		switch c.state {
		case stHead:
			if c.rd == len(c.in) {
				return
			}
			n, err := parseHead(r, c.in[c.rd:], c.o, &c.scan)
			if err == ErrIncomplete {
				return
			}
			if err != nil {
				c.fail(err)
				return
			}
			c.scan = headScan{}
			c.tmode = tmNone
			c.bodyStart = c.rd + n
			if r.expectContinue && (r.Chunked || r.ContentLength > 0) {
				c.out = append(c.out, "HTTP/1.1 100 Continue\r\n\r\n"...)
			}
			switch {
			case r.Chunked:
				c.state = stChunked
				c.wr, c.raw = c.bodyStart, c.bodyStart
				c.dec.Reset()
			case r.ContentLength > 0:
				c.state = stBody
			default:
				r.body.set(nil)
				c.rd = c.bodyStart
				c.serve()
			}
		case stBody:
			end := c.bodyStart + int(r.ContentLength)
			if len(c.in) < end {
				return
			}
			r.body.set(c.in[c.bodyStart:end:end])
			c.rd = end
			c.state = stHead
			c.serve()
		case stChunked:
			nw, nr, done, err := c.dec.Decode(c.in[c.wr:], c.in[c.raw:])
			c.wr += nw
			c.raw += nr
			if err != nil {
				c.fail(err)
				return
			}
			if !done {
				// Keep only the undecoded tail (a partial chunk line).
				c.in = append(c.in[:c.wr], c.in[c.raw:]...)
				c.raw = c.wr
				return
			}
			r.body.set(c.in[c.bodyStart:c.wr:c.wr])
			c.rd = c.raw
			c.state = stHead
			c.serve()
		}
	}
}

// serve runs the handler for the parsed request and completes the response.
func (c *conn) serve() {
	w := &c.w
	w.begin(&c.req)
	c.h.ServeHTTP(w, &c.req)
	w.finish()
	if w.closeAfter {
		c.close()
		return
	}
	if len(c.out) >= outFlush {
		// Hand a batch's answers over as they grow, so a full write queue
		// pauses the batch (the gate) before the next request runs: the
		// answers to pipelined requests never pile up here unbounded.
		c.flushOut()
	}
}

// fail answers a parse error and closes the connection.
func (c *conn) fail(err error) {
	status := StatusOf(err)
	if err == errHeaderTimeout {
		status = StatusRequestTimeout
	}
	text := StatusText(status)
	b := appendStatusLine(c.out, status)
	b = c.appendCommon(b, false, false)
	b = append(b, "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	b = appendInt(b, int64(len(text)+1))
	b = append(b, "\r\n\r\n"...)
	b = append(b, text...)
	c.out = append(b, '\n')
	c.close()
}

// close sends what is queued, then closes the connection gracefully: our side
// is half-closed at once (the client sees the response and the end), input is
// read and dropped, and the connection is closed when the client closes or
// after lingerTimeout. Closing at once while the client is still sending (an
// upload answered with 413, requests pipelined after "Connection: close")
// would make the kernel reset the connection, and the reset can destroy the
// response before the client reads it.
func (c *conn) close() {
	if c.state == stClosed {
		return
	}
	c.flushOut()
	c.state = stClosed
	c.timer.Cancel()
	c.in = nil
	c.gate.Close() // read (and drop) what the client sends while lingering
	if c.t.CloseWrite() != nil {
		_ = c.t.LoseConnection()
		return
	}
	c.timer = c.clk.CallLater(lingerTimeout, c.timerFn)
}

// flushOut hands the collected output to the transport.
func (c *conn) flushOut() {
	if len(c.out) == 0 || c.state == stClosed {
		return
	}
	_ = c.t.Write(c.out)
	c.out = c.out[:0]
	if cap(c.out) > keepBuf {
		c.out = nil
	}
}

// updateTimer sets the deadline for the current state; one delayed call is
// kept and pushed back lazily (onTimer re-arms it if the deadline moved).
func (c *conn) updateTimer() {
	var d time.Duration
	switch {
	case c.state == stClosed:
		c.timer.Cancel()
		return
	case c.state == stHead && c.rd < len(c.in):
		if c.tmode == tmHeader {
			return // the deadline runs from the head's first bytes
		}
		c.tmode, d = tmHeader, c.o.HeaderTimeout
	default:
		c.tmode, d = tmIdle, c.o.IdleTimeout
	}
	if d < 0 {
		c.deadline = time.Time{}
		return
	}
	c.deadline = c.now.Add(d)
	if !c.timer.Active() {
		c.timer = c.clk.CallLater(d, c.timerFn)
	} else if c.timer.Time().After(c.deadline) {
		c.timer.Reset(d)
	}
}

func (c *conn) onTimer() {
	if c.state == stClosed {
		if !c.lost {
			_ = c.t.LoseConnection() // the linger time is over
		}
		return
	}
	if c.deadline.IsZero() {
		return
	}
	now := c.clk.Now()
	if now.Before(c.deadline) {
		c.timer = c.clk.CallLater(c.deadline.Sub(now), c.timerFn)
		return
	}
	c.now = now
	if c.tmode == tmHeader {
		c.fail(errHeaderTimeout)
		return
	}
	c.close()
}

// appendCommon appends the Date and Server headers unless the handler set them.
func (c *conn) appendCommon(b []byte, haveDate, haveServer bool) []byte {
	if !haveDate {
		if sec := c.now.Unix(); sec != c.dateSec || c.date == nil {
			c.dateSec = sec
			c.date = c.now.UTC().AppendFormat(c.date[:0], "Mon, 02 Jan 2006 15:04:05 GMT")
		}
		b = append(b, "Date: "...)
		b = append(b, c.date...)
		b = append(b, "\r\n"...)
	}
	if !haveServer && c.o.Server != "" {
		b = append(b, "Server: "...)
		b = append(b, c.o.Server...)
		b = append(b, "\r\n"...)
	}
	return b
}

func appendInt(b []byte, n int64) []byte {
	if n < 10 {
		return append(b, byte('0'+n))
	}
	var tmp [20]byte
	i := len(tmp)
	for n > 0 {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, tmp[i:]...)
}
