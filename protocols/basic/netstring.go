package basic

import (
	"fmt"
	"strconv"

	"github.com/gyre-io/gyre/transports"
)

// DefaultMaxNetstringLength is the MaxLength of a NetstringReceiver left at
// zero (Twisted's MAX_LENGTH).
const DefaultMaxNetstringLength = 99999

// maxFrame caps any configured maximum so length arithmetic cannot overflow.
const maxFrame = 1 << 48

// NetstringReceiver reads and writes netstrings, "<length>:<data>," with the
// length in decimal (Twisted's NetstringReceiver).
//
// A length with a leading zero (other than "0" itself), a missing length, a
// non-digit, a length over MaxLength or a missing trailing comma is a broken
// peer: the receiver stops parsing, records the reason (see Err) and loses the
// connection. A too-long length is caught as soon as its digits exceed
// MaxLength, before the payload arrives.
//
// The zero value is ready to use, with MaxLength 99999.
type NetstringReceiver struct {
	// MaxLength is the longest string accepted; <= 0 means
	// DefaultMaxNetstringLength.
	MaxLength int
	// OnString receives each string's payload. s is borrowed: valid only until
	// OnString returns. Required: a string for a nil OnString panics with
	// ErrNoHandler (the connection ends).
	OnString func(s []byte)

	c   conn
	err error
	num [20]byte // scratch for SendString's header
}

var _ transports.PushProducer = (*NetstringReceiver)(nil)

// ConnectionMade implements transports.Protocol; it records t.
func (r *NetstringReceiver) ConnectionMade(t transports.Transport) { r.c.connectionMade(t) }

// DataReceived implements transports.Protocol: it parses p (borrowed; not
// kept) and calls OnString for every complete netstring.
func (r *NetstringReceiver) DataReceived(p []byte) { r.c.s.feed(p, r) }

// ConnectionLost implements transports.Protocol: buffered input is dropped.
func (r *NetstringReceiver) ConnectionLost(error) { r.c.connectionLost() }

// Transport is the connection's transport; nil before ConnectionMade and after
// ConnectionLost.
func (r *NetstringReceiver) Transport() transports.Transport { return r.c.t }

// Err is why the peer was judged broken (errors.Is ErrBadNetstring or
// ErrFrameTooLarge), or nil.
func (r *NetstringReceiver) Err() error { return r.err }

// SendString writes s as a netstring in one WriteBuffers call. s is copied by
// the transport before SendString returns. An error matching
// transports.ErrNotConnected when there is no connection (see
// LineReceiver.SendLine).
func (r *NetstringReceiver) SendString(s []byte) error {
	if r.c.t == nil {
		return r.c.notConnected("NetstringReceiver")
	}
	h := strconv.AppendInt(r.num[:0], int64(len(s)), 10)
	h = append(h, ':')
	r.c.wbuf = [3][]byte{h, s, comma}
	err := r.c.t.WriteBuffers(r.c.wbuf[:])
	r.c.wbuf = [3][]byte{}
	return err
}

// comma ends a netstring. Never written.
var comma = []byte(",")

// Buffered is the number of bytes received but not yet handed to OnString.
func (r *NetstringReceiver) Buffered() int { return r.c.s.pending() }

// LoseConnection stops delivering strings and asks the transport to close.
func (r *NetstringReceiver) LoseConnection() error { return r.c.loseConnection() }

// PauseProducing stops delivering strings, buffered ones included, and pauses
// the transport's reading.
func (r *NetstringReceiver) PauseProducing() { r.c.pause() }

// ResumeProducing resumes reading and delivers buffered strings.
func (r *NetstringReceiver) ResumeProducing() { r.c.resume(r) }

// StopProducing stops delivering strings and loses the connection.
func (r *NetstringReceiver) StopProducing() { r.c.stop() }

func (r *NetstringReceiver) broken(err error) bool {
	r.err = err
	r.c.s.discard()
	_ = r.c.loseConnection()
	return false
}

func (r *NetstringReceiver) step(s *stream) bool {
	maxLen := r.MaxLength
	if maxLen <= 0 {
		maxLen = DefaultMaxNetstringLength
	}
	maxLen = min(maxLen, maxFrame)
	d := s.cur
	n, i := 0, 0
	for ; i < len(d) && d[i] != ':'; i++ {
		c := d[i]
		if c < '0' || c > '9' {
			return r.broken(fmt.Errorf("%w: unexpected byte %q in length", ErrBadNetstring, c))
		}
		if i == 1 && d[0] == '0' {
			return r.broken(fmt.Errorf("%w: length has a leading zero", ErrBadNetstring))
		}
		n = n*10 + int(c-'0')
		if n > maxLen {
			return r.broken(fmt.Errorf("%w: netstring longer than %d bytes", ErrFrameTooLarge, maxLen))
		}
	}
	if i == len(d) {
		return false
	}
	if i == 0 {
		return r.broken(fmt.Errorf("%w: missing length", ErrBadNetstring))
	}
	end := i + 1 + n // index of the comma
	if len(d) <= end {
		return false
	}
	if d[end] != ',' {
		return r.broken(fmt.Errorf("%w: missing trailing comma", ErrBadNetstring))
	}
	s.cur = d[end+1:]
	if r.OnString == nil {
		noHandler("NetstringReceiver", "OnString")
	}
	r.OnString(d[i+1 : end])
	r.c.afterCallback()
	return true
}
