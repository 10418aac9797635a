package basic

import (
	"bytes"
	"math"

	"github.com/gyre-io/gyre/transports"
)

// DefaultMaxLineLength is the MaxLength of a LineReceiver or LineOnlyReceiver
// left at zero (Twisted's MAX_LENGTH).
const DefaultMaxLineLength = 16384

// crlf is the default delimiter. Never written.
var crlf = []byte("\r\n")

// lineScan is the delimiter search state: the first scanned pending bytes are
// known to hold no delimiter that starts early enough to be complete.
type lineScan struct {
	scanned int
	delim   []byte // the delimiter scanned for (a private copy)
}

const (
	lineNeedMore = iota
	lineFound
	lineTooLong
)

// next looks for a line at the front of s.cur. On lineFound it returns the line
// and advances s.cur past the delimiter; on lineTooLong it returns everything
// pending in s.cur and empties it.
func (ls *lineScan) next(s *stream, delim []byte, maxLen int) ([]byte, int) {
	if !bytes.Equal(ls.delim, delim) {
		ls.delim = append(ls.delim[:0], delim...)
		ls.scanned = 0
	}
	d := s.cur
	window := math.MaxInt
	if maxLen <= math.MaxInt-len(delim) {
		window = maxLen + len(delim)
	}
	lim := min(len(d), window)
	from := max(ls.scanned-len(delim)+1, 0)
	i := -1
	if from < lim {
		if i = bytes.Index(d[from:lim], delim); i >= 0 {
			i += from
		}
	}
	if i < 0 {
		if len(d) >= window {
			// No delimiter within MaxLength+len(delim) bytes: the line is too
			// long whatever follows.
			ls.scanned = 0
			s.cur = nil
			return d, lineTooLong
		}
		ls.scanned = lim
		return nil, lineNeedMore
	}
	ls.scanned = 0
	if i > maxLen {
		s.cur = nil
		return d, lineTooLong
	}
	s.cur = d[i+len(delim):]
	return d[:i], lineFound
}

// LineReceiver splits a byte stream into lines (Twisted's LineReceiver). It can
// switch to raw mode, where bytes are handed on as they come, and back.
//
// The default delimiter is "\r\n", as in Twisted and in the Internet's line
// protocols (SMTP, HTTP, Redis inline commands): a client that ends lines
// with a bare "\n" (nc, most scripts) gets no line at all until it sends
// "\r\n" — set Delimiter to []byte("\n") for such peers. "\r\n" then ends a
// line too, with the "\r" left at its end (trim it with bytes.TrimSuffix).
//
// The zero value is ready to use: delimiter "\r\n", MaxLength 16384, and a
// too-long line loses the connection. Set OnLine (and OnRawData, if you use
// raw mode) before data arrives: a frame for a nil callback panics with
// ErrNoHandler, which ends the connection (see ErrNoHandler). Set the fields
// before the connection is made; Delimiter and MaxLength may also be changed
// from a callback and apply from the next line on.
//
// Embedding: a type that embeds a LineReceiver and defines its own
// ConnectionMade must call LineReceiver.ConnectionMade from it, or the
// receiver never learns its transport and every SendLine fails with an
// error matching transports.ErrNotConnected that says so.
//
// A LineReceiver is also a transports.PushProducer: PauseProducing stops
// delivering lines (buffered ones included) and pauses the transport's reading.
type LineReceiver struct {
	// Delimiter ends a line; nil or empty means "\r\n" (not "\n": see above).
	Delimiter []byte
	// MaxLength is the longest line accepted, delimiter excluded; <= 0 means
	// DefaultMaxLineLength.
	MaxLength int
	// OnLine receives each line without its delimiter. line is borrowed: valid
	// only until OnLine returns. Required: a line for a nil OnLine panics with
	// ErrNoHandler (the connection ends).
	OnLine func(line []byte)
	// OnRawData receives bytes in raw mode. data is borrowed: valid only until
	// OnRawData returns. Required in raw mode, like OnLine in line mode.
	OnRawData func(data []byte)
	// OnLineTooLong is called when a line is longer than MaxLength, or when
	// MaxLength+len(Delimiter) bytes arrived without a delimiter. line holds the
	// offending bytes and may hold what followed them in the buffer; all of it
	// is discarded and parsing continues with later input. line is borrowed.
	// nil means LoseConnection.
	OnLineTooLong func(line []byte)

	c    conn
	raw  bool
	scan lineScan
}

var _ transports.PushProducer = (*LineReceiver)(nil)

// ConnectionMade implements transports.Protocol; it records t. Types embedding
// a LineReceiver that define their own ConnectionMade must call this one.
func (r *LineReceiver) ConnectionMade(t transports.Transport) { r.c.connectionMade(t) }

// DataReceived implements transports.Protocol: it parses p (borrowed; not
// kept) and calls OnLine or OnRawData for what is complete.
func (r *LineReceiver) DataReceived(p []byte) { r.c.s.feed(p, r) }

// ConnectionLost implements transports.Protocol: buffered input is dropped and
// no further callbacks run. Types embedding a LineReceiver that define their
// own ConnectionLost must call this one.
func (r *LineReceiver) ConnectionLost(error) { r.c.connectionLost() }

// Transport is the connection's transport; nil before ConnectionMade and after
// ConnectionLost.
func (r *LineReceiver) Transport() transports.Transport { return r.c.t }

// SendLine writes line followed by the delimiter in one WriteBuffers call.
// line is copied by the transport before SendLine returns. An error matching
// transports.ErrNotConnected when there is no connection; before any
// ConnectionMade its text asks whether your ConnectionMade forgot to call
// LineReceiver.ConnectionMade.
func (r *LineReceiver) SendLine(line []byte) error {
	return r.c.write2("LineReceiver", line, r.delimiter())
}

// SetRawMode hands all further bytes, including the rest of those already
// buffered, to OnRawData.
func (r *LineReceiver) SetRawMode() {
	r.raw = true
	r.scan.scanned = 0
}

// SetLineMode switches back to line mode and parses extra (copied; typically
// the unused tail of the raw data being handled) as if just received, ahead
// of any bytes received later.
func (r *LineReceiver) SetLineMode(extra []byte) {
	r.raw = false
	r.scan.scanned = 0
	if len(extra) == 0 || r.c.s.stopped {
		return
	}
	r.c.s.insert(extra)
	if !r.c.s.busy {
		r.c.s.drain(r)
	}
}

// RawMode reports whether the receiver is in raw mode.
func (r *LineReceiver) RawMode() bool { return r.raw }

// ClearLineBuffer empties the input buffer and returns what was in it: bytes
// received but not yet handed to a callback. The result is a fresh copy the
// caller owns (nil when nothing was buffered).
func (r *LineReceiver) ClearLineBuffer() []byte {
	r.scan.scanned = 0
	return r.c.s.take()
}

// Buffered is the number of bytes received but not yet handed to a callback.
func (r *LineReceiver) Buffered() int { return r.c.s.pending() }

// LoseConnection stops delivering lines and asks the transport to close.
func (r *LineReceiver) LoseConnection() error { return r.c.loseConnection() }

// PauseProducing stops delivering lines, including ones already buffered, and
// pauses the transport's reading.
func (r *LineReceiver) PauseProducing() { r.c.pause() }

// ResumeProducing resumes the transport's reading and delivers buffered lines.
func (r *LineReceiver) ResumeProducing() { r.c.resume(r) }

// StopProducing stops delivering lines and loses the connection.
func (r *LineReceiver) StopProducing() { r.c.stop() }

func (r *LineReceiver) delimiter() []byte {
	if len(r.Delimiter) == 0 {
		return crlf
	}
	return r.Delimiter
}

func (r *LineReceiver) maxLength() int {
	if r.MaxLength <= 0 {
		return DefaultMaxLineLength
	}
	return r.MaxLength
}

func (r *LineReceiver) step(s *stream) bool {
	if r.raw {
		d := s.cur
		s.cur = nil
		if r.OnRawData == nil {
			noHandler("LineReceiver", "OnRawData")
		}
		r.OnRawData(d)
		r.c.afterCallback()
		return true
	}
	line, st := r.scan.next(s, r.delimiter(), r.maxLength())
	return deliverLine(&r.c, "LineReceiver", line, st, r.OnLine, r.OnLineTooLong)
}

// deliverLine hands one scan result to the callbacks shared by LineReceiver
// and LineOnlyReceiver; false when no complete line (or overflow) was found.
func deliverLine(c *conn, typ string, line []byte, st int, onLine, onTooLong func([]byte)) bool {
	switch st {
	case lineFound:
		if onLine == nil {
			noHandler(typ, "OnLine")
		}
		onLine(line)
		c.afterCallback()
	case lineTooLong:
		if onTooLong != nil {
			onTooLong(line)
			c.afterCallback()
		} else {
			_ = c.loseConnection()
		}
	default:
		return false
	}
	return true
}

// LineOnlyReceiver splits a byte stream into lines (Twisted's
// LineOnlyReceiver): a LineReceiver without raw mode or producer methods, for
// protocols that only ever speak in lines. Lines are parsed exactly as by
// LineReceiver, with the same default delimiter "\r\n" (a bare "\n" peer
// needs Delimiter []byte("\n")), the same required OnLine and the same rule
// for an embedding type's ConnectionMade.
//
// The zero value is ready to use: delimiter "\r\n", MaxLength 16384, and a
// too-long line loses the connection.
type LineOnlyReceiver struct {
	// Delimiter ends a line; nil or empty means "\r\n" (not "\n").
	Delimiter []byte
	// MaxLength is the longest line accepted, delimiter excluded; <= 0 means
	// DefaultMaxLineLength.
	MaxLength int
	// OnLine receives each line without its delimiter. line is borrowed: valid
	// only until OnLine returns. Required: see LineReceiver.OnLine.
	OnLine func(line []byte)
	// OnLineTooLong: see LineReceiver.OnLineTooLong. nil means LoseConnection.
	OnLineTooLong func(line []byte)

	c    conn
	scan lineScan
}

// ConnectionMade implements transports.Protocol; it records t.
func (r *LineOnlyReceiver) ConnectionMade(t transports.Transport) { r.c.connectionMade(t) }

// DataReceived implements transports.Protocol: it parses p (borrowed; not
// kept) and calls OnLine for every complete line.
func (r *LineOnlyReceiver) DataReceived(p []byte) { r.c.s.feed(p, r) }

// ConnectionLost implements transports.Protocol: buffered input is dropped.
func (r *LineOnlyReceiver) ConnectionLost(error) { r.c.connectionLost() }

// Transport is the connection's transport; nil before ConnectionMade and after
// ConnectionLost.
func (r *LineOnlyReceiver) Transport() transports.Transport { return r.c.t }

// SendLine writes line followed by the delimiter in one WriteBuffers call.
// ErrNotConnected when there is no connection.
func (r *LineOnlyReceiver) SendLine(line []byte) error {
	return r.c.write2("LineOnlyReceiver", line, r.delimiter())
}

// LoseConnection stops delivering lines and asks the transport to close.
func (r *LineOnlyReceiver) LoseConnection() error { return r.c.loseConnection() }

func (r *LineOnlyReceiver) delimiter() []byte {
	if len(r.Delimiter) == 0 {
		return crlf
	}
	return r.Delimiter
}

func (r *LineOnlyReceiver) step(s *stream) bool {
	maxLen := r.MaxLength
	if maxLen <= 0 {
		maxLen = DefaultMaxLineLength
	}
	line, st := r.scan.next(s, r.delimiter(), maxLen)
	return deliverLine(&r.c, "LineOnlyReceiver", line, st, r.OnLine, r.OnLineTooLong)
}
