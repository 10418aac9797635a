package tls

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

// pipe is the net.Conn under the *tls.Conn. It has two modes.
//
// Blocking (during the handshake, used by the handshake goroutine): Read waits
// on a condition variable for ciphertext the loop pushes from DataReceived;
// Write appends to an outbound buffer and posts one loop Call that hands it to
// the underlying transport. The loop never waits: push and close take the
// mutex for a copy only, and the goroutine never holds it across a wait.
//
// Loop (after the handshake, the goroutine has ended): Read returns the
// leftover buffered bytes, then the borrowed chunk of the current
// DataReceived (cur), then errWouldBlock; Write goes straight to the
// underlying transport's Write (which copies). No lock is taken.
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
	out         []byte // handshake output not yet posted to the loop
	outPosted   bool
	underPaused bool // the loop paused the underlying reading (backlog above pipeHigh)
	resumePost  bool

	cur []byte // loop mode: borrowed chunk from the current DataReceived
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

// setEOF (loop): the underlying transport's peer sent FIN.
func (p *pipe) setEOF() {
	p.mu.Lock()
	p.eof = true
	p.cond.Broadcast()
	p.mu.Unlock()
}

// close (loop): the connection is over; a waiting goroutine wakes with
// net.ErrClosed, and later Writes fail.
func (p *pipe) close() {
	p.mu.Lock()
	p.closed = true
	p.cur = nil
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Read implements net.Conn.
func (p *pipe) Read(b []byte) (int, error) {
	if !p.blocking {
		if p.off < len(p.in) {
			n := copy(b, p.in[p.off:])
			p.off += n
			if p.off == len(p.in) {
				p.in, p.off = p.in[:0], 0
			}
			return n, nil
		}
		if len(p.cur) > 0 {
			n := copy(b, p.cur)
			p.cur = p.cur[n:]
			return n, nil
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
	for p.off == len(p.in) && !p.eof && !p.closed {
		p.cond.Wait()
	}
	if p.closed {
		return 0, net.ErrClosed
	}
	if p.off == len(p.in) {
		return 0, io.EOF
	}
	n := copy(b, p.in[p.off:])
	p.off += n
	if p.underPaused && p.buffered() <= pipeLow && !p.resumePost {
		if p.r.Call(p.resumeUnder) == nil {
			p.resumePost = true
		}
	}
	return n, nil
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
	if p.closed {
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
	out, closed := p.out, p.closed
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
	p.blocking = false
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
