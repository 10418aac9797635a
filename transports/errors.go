package transports

import (
	"errors"
	"io"
)

// Sentinel errors. Compare with errors.Is.
var (
	// ErrConnectionDone is the reason of a clean close; errors.Is also matches io.EOF.
	ErrConnectionDone error = doneError{}
	// ErrConnectionLost is the reason of any unclean end; the cause is wrapped.
	ErrConnectionLost = errors.New("gyre: connection lost")
	// ErrNotConnected: the operation needs a connection that does not exist (yet).
	ErrNotConnected = errors.New("gyre: not connected")
	// ErrClosed: the transport, port or connector is already closed.
	ErrClosed = errors.New("gyre: use of closed transport")
	// ErrFrameTooLarge: a frame exceeds the configured or encodable maximum.
	ErrFrameTooLarge = errors.New("gyre: frame too large")
	// ErrProducerRegistered: a producer is already registered.
	ErrProducerRegistered = errors.New("gyre: producer already registered")
	// ErrConnectStopped: StopConnecting or Disconnect ended the attempt.
	ErrConnectStopped = errors.New("gyre: connection attempt stopped")
	// ErrConnectTimeout: the connect timeout passed.
	ErrConnectTimeout = errors.New("gyre: connect timed out")
	// ErrAborted: the connection was aborted by this side.
	ErrAborted = errors.New("gyre: connection aborted")
	// ErrBadOptions: a Reactor's Listen or Connect method was given an options
	// value of a type its network does not take (see Reactor).
	ErrBadOptions = errors.New("gyre: bad options for this network")
	// ErrUnsupportedNetwork: the network ("tcp", "unix", …) is not linked into
	// the program; the error's text names the package to import.
	ErrUnsupportedNetwork = errors.New("gyre: network not supported")
)

type doneError struct{}

func (doneError) Error() string        { return "gyre: connection done" }
func (doneError) Is(target error) bool { return target == io.EOF }

// Done wraps cause as a clean-close reason: errors.Is(err, ErrConnectionDone)
// (and so io.EOF) and errors.Is(err, cause) both hold, errors.Is(err,
// ErrConnectionLost) does not. A transport uses it when a close it did not
// start on the protocol's behalf still ended cleanly, e.g. a connection
// flushed and closed with FIN because its loop stopped (cause
// reactor.ErrStopped).
func Done(cause error) error {
	if cause == nil {
		return ErrConnectionDone
	}
	return &doneCause{cause: cause}
}

type doneCause struct{ cause error }

func (e *doneCause) Error() string { return "gyre: connection done: " + e.cause.Error() }
func (e *doneCause) Unwrap() []error {
	return []error{ErrConnectionDone, e.cause}
}

// Lost wraps cause as a connection-lost reason: errors.Is(err, ErrConnectionLost)
// and errors.Is(err, cause) both hold.
func Lost(cause error) error {
	if cause == nil {
		return ErrConnectionLost
	}
	return &lostError{cause: cause}
}

type lostError struct{ cause error }

func (e *lostError) Error() string { return "gyre: connection lost: " + e.cause.Error() }
func (e *lostError) Unwrap() []error {
	return []error{ErrConnectionLost, e.cause}
}
