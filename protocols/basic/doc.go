// Package basic holds Twisted's stream framers (twisted.protocols.basic) for
// gyre: LineReceiver (lines with a raw mode), LineOnlyReceiver, NetstringReceiver
// and the 8/16/32-bit length-prefixed IntNReceiver.
//
// # Shape
//
// Go has no inheritance, so each framer is a struct that implements
// transports.Protocol itself and reports frames through function fields
// (OnLine, OnString, ...). Use one directly from a factory, or embed it in your
// own protocol type and set the function fields to your methods when you build
// it; override ConnectionMade/ConnectionLost by defining them on your type and
// calling the embedded ones first. See the package examples.
//
// # Memory
//
// A frame handed to a callback is borrowed: it is valid only until the callback
// returns, so copy what you keep. Complete frames are handed out straight from
// the bytes the transport delivered when nothing is buffered; only an incomplete
// tail is copied, into a buffer the receiver reuses. In steady state the
// framers allocate nothing per frame.
//
// # Re-entrancy
//
// Callbacks may call back into the receiver: SendLine/SendString, SetRawMode,
// SetLineMode, ClearLineBuffer, PauseProducing, LoseConnection, even
// DataReceived (the bytes are appended and parsed after the current frame).
//
// # Threading
//
// Like every Protocol, the receivers are used from their connection's loop
// goroutine only; no method is goroutine-safe.
package basic

import (
	"errors"
	"fmt"

	"github.com/gyre-io/gyre/transports"
)

// Errors reported by the framers. Compare with errors.Is.
var (
	// ErrFrameTooLarge is returned by SendString when the string does not fit
	// the length prefix, and reported by NetstringReceiver.Err when a peer
	// announces a netstring longer than MaxLength. It matches
	// transports.ErrFrameTooLarge too.
	ErrFrameTooLarge = fmt.Errorf("basic: string too long: %w", transports.ErrFrameTooLarge)
	// ErrBadNetstring is reported by NetstringReceiver.Err when the peer sent
	// something that is not a netstring.
	ErrBadNetstring = errors.New("basic: malformed netstring")
	// ErrNoHandler: a framer completed a frame (a line, raw data, a string)
	// while the callback field for it (OnLine, OnRawData, OnString) was nil.
	// The frame would be lost silently, so the framer panics with an error
	// matching ErrNoHandler that names the field, as Twisted's unimplemented
	// lineReceived raises: gyre's transports recover the panic, report it to
	// the loop (reactor.Config.OnError, logged by default) and abort the
	// connection, whose ConnectionLost reason matches ErrNoHandler.
	ErrNoHandler = errors.New("basic: frame callback not set")
)
