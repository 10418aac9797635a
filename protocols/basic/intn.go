package basic

import (
	"encoding/binary"

	"github.com/gyre-io/gyre/transports"
)

// DefaultMaxStringLength is the MaxLength of an IntNReceiver left at zero
// (Twisted's MAX_LENGTH; usually too small for 32-bit prefixes, so raise it).
const DefaultMaxStringLength = 99999

// IntNReceiver reads and writes strings prefixed by their length as a
// big-endian unsigned integer of PrefixLength bytes (Twisted's
// Int8StringReceiver, Int16StringReceiver and Int32StringReceiver; see
// NewInt8Receiver, NewInt16Receiver, NewInt32Receiver).
//
// A prefix announcing more than MaxLength bytes calls OnLengthLimitExceeded;
// the stream cannot be resynchronised after that, so the receiver drops what
// it buffered and ignores all later input.
//
// The zero value is a 32-bit receiver with MaxLength 99999 that loses the
// connection when the limit is exceeded.
type IntNReceiver struct {
	// PrefixLength is the prefix size in bytes: 1, 2 or 4. Any other value,
	// zero included, means 4.
	PrefixLength int
	// MaxLength is the longest string accepted; <= 0 means
	// DefaultMaxStringLength.
	MaxLength int
	// OnString receives each string. s is borrowed: valid only until OnString
	// returns. Required: a string for a nil OnString panics with ErrNoHandler
	// (the connection ends).
	OnString func(s []byte)
	// OnLengthLimitExceeded receives the announced length of a string longer
	// than MaxLength. nil means LoseConnection.
	OnLengthLimitExceeded func(length int)

	c      conn
	prefix [4]byte
}

var _ transports.PushProducer = (*IntNReceiver)(nil)

// NewInt8Receiver returns a receiver with a 1-byte prefix calling onString.
func NewInt8Receiver(onString func(s []byte)) *IntNReceiver {
	return &IntNReceiver{PrefixLength: 1, OnString: onString}
}

// NewInt16Receiver returns a receiver with a 2-byte prefix calling onString.
func NewInt16Receiver(onString func(s []byte)) *IntNReceiver {
	return &IntNReceiver{PrefixLength: 2, OnString: onString}
}

// NewInt32Receiver returns a receiver with a 4-byte prefix calling onString.
func NewInt32Receiver(onString func(s []byte)) *IntNReceiver {
	return &IntNReceiver{PrefixLength: 4, OnString: onString}
}

// ConnectionMade implements transports.Protocol; it records t.
func (r *IntNReceiver) ConnectionMade(t transports.Transport) { r.c.connectionMade(t) }

// DataReceived implements transports.Protocol: it parses p (borrowed; not
// kept) and calls OnString for every complete string.
func (r *IntNReceiver) DataReceived(p []byte) { r.c.s.feed(p, r) }

// ConnectionLost implements transports.Protocol: buffered input is dropped.
func (r *IntNReceiver) ConnectionLost(error) { r.c.connectionLost() }

// Transport is the connection's transport; nil before ConnectionMade and after
// ConnectionLost.
func (r *IntNReceiver) Transport() transports.Transport { return r.c.t }

// SendString writes the prefix and s in one WriteBuffers call; s is copied by
// the transport before SendString returns. ErrFrameTooLarge when len(s) does
// not fit the prefix (MaxLength is not checked), ErrNotConnected when there is
// no connection.
func (r *IntNReceiver) SendString(s []byte) error {
	pl := r.prefixLength()
	if uint64(len(s)) >= 1<<(8*pl) {
		return ErrFrameTooLarge
	}
	switch pl {
	case 1:
		r.prefix[0] = byte(len(s))
	case 2:
		binary.BigEndian.PutUint16(r.prefix[:], uint16(len(s)))
	default:
		binary.BigEndian.PutUint32(r.prefix[:], uint32(len(s)))
	}
	return r.c.write2("IntNReceiver", r.prefix[:pl], s)
}

// Buffered is the number of bytes received but not yet handed to OnString.
func (r *IntNReceiver) Buffered() int { return r.c.s.pending() }

// LoseConnection stops delivering strings and asks the transport to close.
func (r *IntNReceiver) LoseConnection() error { return r.c.loseConnection() }

// PauseProducing stops delivering strings, buffered ones included, and pauses
// the transport's reading.
func (r *IntNReceiver) PauseProducing() { r.c.pause() }

// ResumeProducing resumes reading and delivers buffered strings.
func (r *IntNReceiver) ResumeProducing() { r.c.resume(r) }

// StopProducing stops delivering strings and loses the connection.
func (r *IntNReceiver) StopProducing() { r.c.stop() }

func (r *IntNReceiver) prefixLength() int {
	switch r.PrefixLength {
	case 1, 2:
		return r.PrefixLength
	}
	return 4
}

func (r *IntNReceiver) step(s *stream) bool {
	pl := r.prefixLength()
	d := s.cur
	if len(d) < pl {
		return false
	}
	var n uint64
	switch pl {
	case 1:
		n = uint64(d[0])
	case 2:
		n = uint64(binary.BigEndian.Uint16(d))
	default:
		n = uint64(binary.BigEndian.Uint32(d))
	}
	maxLen := r.MaxLength
	if maxLen <= 0 {
		maxLen = DefaultMaxStringLength
	}
	if n > uint64(maxLen) {
		s.discard()
		s.stopped = true
		if r.OnLengthLimitExceeded != nil {
			r.OnLengthLimitExceeded(int(n))
		} else {
			_ = r.c.loseConnection()
		}
		return false
	}
	end := pl + int(n)
	if len(d) < end {
		return false
	}
	s.cur = d[end:]
	if r.OnString == nil {
		noHandler("IntNReceiver", "OnString")
	}
	r.OnString(d[pl:end])
	r.c.afterCallback()
	return true
}
