package gyretls

import (
	ctls "crypto/tls"
	"errors"
	"net"
	"reflect"
)

// Sentinel errors. Compare with errors.Is.
var (
	// ErrHandshakeTimeout: the handshake did not complete within
	// Options.HandshakeTimeout. The connection is aborted; the reason is a
	// *HandshakeError wrapping it, inside transports.Lost.
	ErrHandshakeTimeout = errors.New("gyre/tls: handshake timed out")
	// ErrCloseTimeout: LoseConnection's flush, close_notify and close did not
	// finish within Options.CloseTimeout, so the connection was aborted.
	ErrCloseTimeout = errors.New("gyre/tls: close timed out")
	// ErrTLSStarted: StartTLS on a connection that already speaks TLS.
	ErrTLSStarted = errors.New("gyre/tls: TLS already started")
	// ErrNoConfig: a nil *tls.Config was given where one is required.
	ErrNoConfig = errors.New("gyre/tls: nil *tls.Config")
)

// HandshakeError is the cause of a connection that ended before its TLS
// handshake completed: the handshake failed (Err is crypto/tls's error), the
// peer closed or reset the connection (Err is that), or it timed out (Err is
// ErrHandshakeTimeout). The connection's reason is transports.Lost(&HandshakeError{…}).
//
// A peer that fails the handshake often sends its alert and resets the
// connection at once (a Go client closing with records unread does). The
// alert arrived first, so it is what Err holds, and Lost holds the
// underlying transport's reason (errors.Is reaches both).
//
// errors.As reaches crypto/tls's own error types through it, e.g.
// *tls.CertificateVerificationError when this side rejected the peer's
// certificate, and tls.AlertError when a TLS alert was received from the
// peer, or the failure was one crypto/tls reports as an alert it sent
// (crypto/tls reports those as *net.OpError with Op "remote error" / "local
// error" around an unexported alert type; gyre adds the equivalent
// tls.AlertError, as crypto/tls itself does for QUIC).
type HandshakeError struct {
	Err error
	// Lost is the underlying transport's reason when the connection was lost
	// right after the handshake failed with Err (nil otherwise).
	Lost error
}

func (e *HandshakeError) Error() string {
	if e.Lost != nil {
		return "gyre/tls: handshake failed: " + e.Err.Error() + " (then " + e.Lost.Error() + ")"
	}
	return "gyre/tls: handshake failed: " + e.Err.Error()
}

// Unwrap returns Err, Lost when there is one, and, when there is one, the
// TLS alert as tls.AlertError.
func (e *HandshakeError) Unwrap() []error {
	errs := withAlert(e.Err)
	if e.Lost != nil {
		errs = append(errs, e.Lost)
	}
	return errs
}

// RecordError is the cause of a connection that ended because crypto/tls
// rejected what the peer sent after the handshake (a bad record, an alert
// other than close_notify, a truncated stream: io.ErrUnexpectedEOF). Like
// HandshakeError it adds tls.AlertError for alerts.
type RecordError struct {
	Err error
}

func (e *RecordError) Error() string { return "gyre/tls: " + e.Err.Error() }

// Unwrap returns Err and, when there is one, the TLS alert as tls.AlertError.
func (e *RecordError) Unwrap() []error { return withAlert(e.Err) }

func withAlert(err error) []error {
	if a, ok := alertOf(err); ok {
		return []error{err, a}
	}
	return []error{err}
}

// alertOf finds the TLS alert crypto/tls wraps in a *net.OpError ("remote
// error": received from the peer; "local error": sent by crypto/tls). The
// alert's type is unexported (crypto/tls.alert, a uint8), hence reflect.
func alertOf(err error) (ctls.AlertError, bool) {
	if a, ok := errors.AsType[ctls.AlertError](err); ok {
		return a, true
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Err == nil {
		return 0, false
	}
	if op.Op != "remote error" && op.Op != "local error" {
		return 0, false
	}
	v := reflect.ValueOf(op.Err)
	if v.Kind() != reflect.Uint8 || v.Type().PkgPath() != "crypto/tls" || v.Type().Name() != "alert" {
		return 0, false
	}
	return ctls.AlertError(v.Uint()), true
}
