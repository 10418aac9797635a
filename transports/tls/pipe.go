package gyretls

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/gyre-io/gyre/transports"
)

// Handshake-time inbound buffering: above pipeHigh bytes waiting for the
// handshake goroutine the underlying transport stops reading, and it resumes
// once the goroutine has taken the backlog down to pipeLow.
const (
	pipeHigh = 64 << 10
	pipeLow  = 16 << 10
)

// wouldBlock is the error pipe.Read returns on the loop when no ciphertext is
// buffered. It is a net.Error with Temporary() == true: crypto/tls's
// readRecordOrCCS (conn.go) does not record such an error in its sticky
// c.in.err, so the next Read resumes where this one stopped.
type wouldBlock struct{}

func (wouldBlock) Error() string   { return "gyre/tls: no buffered input (would block)" }
func (wouldBlock) Timeout() bool   { return false }
func (wouldBlock) Temporary() bool { return true }

var errWouldBlock net.Error = wouldBlock{}

// Record framing (the allocation it avoids). crypto/tls (Go 1.26, conn.go)
// fills its c.rawInput only through readFromUntil, which allocates an
// atLeastReader (it escapes into bytes.Buffer.ReadFrom) each time rawInput
// holds fewer bytes than the record layer needs; when rawInput holds enough,
// nothing is allocated. After the handshake the pipe therefore hands
// crypto/tls complete records only: a record spanning several TCP chunks is
// buffered here until its last byte arrives, so crypto/tls asks once for it
// instead of once per chunk. And the pipe counts the records crypto/tls has
// been given (tlsRecs), so the loop calls tls.Conn.Read only while one is
// there, instead of until "would block" (that last call asked for input, and
// allocated). What is left is one allocation per batch of records received —
// the floor for an unmodified crypto/tls, which net + crypto/tls pays as well
// (its reading goroutine's readFromUntil waits for each batch).
//
// During the handshake the pipe gives crypto/tls whatever it has, exactly as
// a socket would, so crypto/tls judges a peer's first bytes itself (e.g.
// "first record does not look like a TLS handshake" after five bytes).
// crypto/tls may then end the handshake holding records, or part of one; the
// pipe does not count records again until crypto/tls has asked for more
// than there is at a record boundary (aligned). A header that crypto/tls
// rejects by itself (a content type outside 20–23, a major version other
// than 3, a length above 2^14+2048: RFC 8446 §5.1, RFC 5246 §6.2) turns
// framing off for good, so crypto/tls sees it at once and fails as it would
// without the pipe; so does the peer's FIN (a record cut by the FIN must
// reach crypto/tls, which reports io.ErrUnexpectedEOF). A header crypto/tls
// rejects for a finer reason (a minor version that is not the negotiated
// one, a TLS 1.3 length above 2^14+256) fails once its body has arrived.
const (
	recordHeaderLen = 5
	maxCiphertext   = maxPlaintext + 2048 // crypto/tls's limit (conn.go)
)

// pipe is the net.Conn under the *tls.Conn. It has two modes.
//
// Blocking (during the handshake, used by the handshake goroutine): Read waits
// on a condition variable for ciphertext the loop pushes from DataReceived;
// Write appends to an outbound buffer and posts one loop Call that hands it to
// the underlying transport. The loop never waits: push and close take the
// mutex for a copy only, and the goroutine never holds it across a wait.
//
// Loop (after the handshake, the goroutine has ended): Read returns the
// complete records among the leftover buffered bytes and the borrowed chunk
// of the current DataReceived (cur), then errWouldBlock; Write goes straight
// to the underlying transport's Write (which copies). No lock is taken.
//
// The switch happens on the loop in handshakeDone, which runs from a Call
// the goroutine posted as its last act, so the goroutine's accesses happen
// before the loop's.
type pipe struct {
	c             *Conn
	r             transports.Reactor
	local, remote net.Addr
	blocking      bool // set before the goroutine starts, cleared after it ended

	mu          sync.Mutex
	cond        sync.Cond
	in          []byte // buffered ciphertext; in[off:] unread
	off         int
	eof, closed bool
	lost        error  // the connection was lost: Read gives what is buffered, then lost
	waiting     bool   // the goroutine waits in Read for input
	out         []byte // handshake output not yet posted to the loop
	outPosted   bool
	underPaused bool // the loop paused the underlying reading (backlog above pipeHigh)
	resumePost  bool

	cur []byte // loop mode: borrowed chunk from the current DataReceived

	// Framing of the unread stream in[off:] ++ cur.
	ready    int                   // bytes from the read position to the end of the last complete record (< 0: crypto/tls was given part of the record after it)
	raw      bool                  // framing off: every byte is ready
	aligned  bool                  // loop mode: the read position is known relative to record boundaries (headLeft is exact)
	hdr      [recordHeaderLen]byte // header of the incomplete record at the end of the stream
	hdrN     int                   // bytes of hdr received
	bodyLeft int                   // body bytes of that record not yet received
	partial  int                   // bytes of that record received (header included)
	headLeft int                   // bytes of the record at the read position crypto/tls has not been given
	tlsRecs  int                   // records given to crypto/tls, wholly or in part, and not known consumed (upper bound)
}

func (p *pipe) init(c *Conn, r transports.Reactor) {
	p.c, p.r = c, r
	p.local, p.remote = c.under.LocalAddr(), c.under.RemoteAddr()
	p.cond.L = &p.mu
	p.blocking = true
}

func (p *pipe) buffered() int { return len(p.in) - p.off }

// push (loop, blocking mode) appends received ciphertext for the goroutine.
// It reports whether the underlying transport should stop reading now.
func (p *pipe) push(b []byte) (pause bool) {
	p.mu.Lock()
	p.appendIn(b)
	p.scan(b)
	if p.buffered() > pipeHigh && !p.underPaused {
		p.underPaused, pause = true, true
	}
	p.cond.Signal()
	p.mu.Unlock()
	return pause
}

func (p *pipe) appendIn(b []byte) {
	if p.off > 0 && p.off == len(p.in) {
		p.in, p.off = p.in[:0], 0
	} else if p.off > 0 && len(p.in)+len(b) > cap(p.in) {
		n := copy(p.in, p.in[p.off:])
		p.in, p.off = p.in[:n], 0
	}
	p.in = append(p.in, b...)
}

// scan (loop; under mu in blocking mode) frames b, just appended to the
// unread stream (in, or cur), advancing ready past each record it completes.
func (p *pipe) scan(b []byte) {
	for len(b) > 0 && !p.raw {
		if p.hdrN < recordHeaderLen {
			t := copy(p.hdr[p.hdrN:], b)
			p.hdrN += t
			p.partial += t
			b = b[t:]
			if p.hdrN < recordHeaderLen {
				return
			}
			typ, n := p.hdr[0], int(p.hdr[3])<<8|int(p.hdr[4])
			if typ < 20 || typ > 23 || p.hdr[1] != 3 || n > maxCiphertext {
				p.rawMode() // crypto/tls rejects this header: let it see it now
				break
			}
			p.bodyLeft = n
		}
		t := min(len(b), p.bodyLeft)
		p.bodyLeft -= t
		p.partial += t
		b = b[t:]
		if p.bodyLeft == 0 {
			p.ready += p.partial
			p.partial, p.hdrN = 0, 0
		}
	}
	if p.raw {
		p.ready += len(b)
	}
}

// rawMode turns framing off: the incomplete record's bytes become ready.
func (p *pipe) rawMode() {
	p.raw, p.aligned = true, false
	p.ready += p.partial
	p.partial = 0
}

// setEOF (loop): the underlying transport's peer sent FIN; what is buffered
// goes to crypto/tls, a cut record included.
func (p *pipe) setEOF() {
	p.mu.Lock()
	p.eof = true
	p.rawMode()
	p.cond.Broadcast()
	p.mu.Unlock()
}

// lose (loop, blocking mode): the underlying connection was lost with
// reason. It reports whether the goroutine still has bytes to take or work to
// finish (false: it waits in Read with nothing buffered, so the loss is all
// it would learn, and the caller closes the pipe instead). When true, Read
// gives what is buffered and then returns reason, and Writes fail.
func (p *pipe) lose(reason error) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || (p.waiting && p.buffered() == 0) {
		return false
	}
	p.lost = reason
	p.rawMode() // a record cut by the loss reaches crypto/tls too
	p.cond.Broadcast()
	return true
}

// close (loop): the connection is over; a waiting goroutine wakes with
// net.ErrClosed, and later Writes fail.
func (p *pipe) close() {
	p.mu.Lock()
	p.closed = true
	p.cur, p.ready = nil, 0
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Read implements net.Conn. Loop mode: complete records only.
func (p *pipe) Read(b []byte) (int, error) {
	if !p.blocking {
		if p.ready > 0 {
			return p.give(b, p.ready), nil
		}
		// crypto/tls has consumed all it was given, or holds part of a record.
		p.tlsRecs = 0
		if p.ready == 0 && !p.raw && !p.aligned {
			p.aligned, p.headLeft = true, 0 // at the end of a complete record
		}
		if p.closed {
			return 0, net.ErrClosed
		}
		if p.eof {
			return 0, io.EOF
		}
		return 0, errWouldBlock
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.buffered() == 0 && !p.eof && !p.closed && p.lost == nil {
		p.waiting = true
		p.cond.Wait()
		p.waiting = false
	}
	if p.closed {
		return 0, net.ErrClosed
	}
	if p.buffered() == 0 {
		if p.lost != nil {
			return 0, p.lost
		}
		return 0, io.EOF
	}
	n := p.give(b, p.buffered())
	if p.underPaused && p.buffered() <= pipeLow && !p.resumePost {
		if p.r.Call(p.resumeUnder) == nil {
			p.resumePost = true
		}
	}
	return n, nil
}

// give copies up to min(len(b), limit) bytes into b (from in[off:], then
// cur) and, when aligned, counts the records it starts handing to
// crypto/tls (their headers are all there: aligned gives stop at the end of
// a complete record).
func (p *pipe) give(b []byte, limit int) int {
	n := min(len(b), limit)
	for pos := 0; p.aligned && pos < n; {
		if p.headLeft == 0 {
			p.headLeft = recordHeaderLen + (int(p.byteAt(pos+3))<<8 | int(p.byteAt(pos+4)))
			p.tlsRecs++
		}
		t := min(n-pos, p.headLeft)
		p.headLeft -= t
		pos += t
	}
	k := copy(b[:n], p.in[p.off:])
	p.off += k
	if p.off == len(p.in) {
		p.in, p.off = p.in[:0], 0
	}
	if k < n {
		p.cur = p.cur[copy(b[k:n], p.cur):]
	}
	p.ready -= n
	return n
}

func (p *pipe) byteAt(i int) byte {
	if i < p.buffered() {
		return p.in[p.off+i]
	}
	return p.cur[i-p.buffered()]
}

// consumed (loop) notes that tls.Conn.Read returned data: it finished at
// least one of the records it was given.
func (p *pipe) consumed() {
	if p.tlsRecs > 0 {
		p.tlsRecs--
	}
}

// readable (loop) reports whether tls.Conn.Read may return something without
// first asking for input that is not there.
func (p *pipe) readable() bool {
	return p.ready > 0 || p.tlsRecs > 0 || !p.aligned || p.eof || p.closed
}

// resumeUnder (loop) resumes the underlying reading paused by push.
func (p *pipe) resumeUnder() {
	p.mu.Lock()
	p.resumePost = false
	resume := p.underPaused && p.buffered() <= pipeLow && !p.closed
	if resume {
		p.underPaused = false
	}
	p.mu.Unlock()
	if resume && p.c.state == stHandshaking {
		p.c.under.ResumeReading()
	}
}

// Write implements net.Conn.
func (p *pipe) Write(b []byte) (int, error) {
	if !p.blocking {
		if err := p.c.under.Write(b); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	p.mu.Lock()
	if p.closed || p.lost != nil {
		p.mu.Unlock()
		return 0, net.ErrClosed
	}
	p.out = append(p.out, b...)
	post := !p.outPosted
	p.outPosted = true
	p.mu.Unlock()
	if post {
		if err := p.r.Call(p.flushOut); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// flushOut (loop) hands the handshake output to the underlying transport.
func (p *pipe) flushOut() {
	p.mu.Lock()
	out, closed := p.out, p.closed || p.lost != nil
	p.out, p.outPosted = nil, false
	p.mu.Unlock()
	if len(out) > 0 && !closed {
		_ = p.c.under.Write(out)
	}
}

// endBlocking (loop, after the goroutine ended) switches to loop mode and
// reports whether the underlying reading was left paused by push.
func (p *pipe) endBlocking() (underPaused bool) {
	p.flushOut()
	p.mu.Lock()
	underPaused = p.underPaused
	p.underPaused = false
	p.blocking = false // aligned is false: crypto/tls may hold records, or part of one
	p.mu.Unlock()
	return underPaused
}

// Close implements net.Conn; crypto/tls calls it only from tls.Conn.Close,
// which gyre never calls.
func (p *pipe) Close() error                     { return nil }
func (p *pipe) LocalAddr() net.Addr              { return p.local }
func (p *pipe) RemoteAddr() net.Addr             { return p.remote }
func (p *pipe) SetDeadline(time.Time) error      { return nil }
func (p *pipe) SetReadDeadline(time.Time) error  { return nil }
func (p *pipe) SetWriteDeadline(time.Time) error { return nil }
