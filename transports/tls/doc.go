// Package gyretls layers TLS, with Go's crypto/tls and nothing else (no cgo, no
// fork, no hand-written cryptography), over any gyre stream transport — TCP
// today, UNIX stream sockets unchanged — as Twisted's TLSMemoryBIOProtocol
// layers OpenSSL over any transport. Its import path ends in tls, but the
// package is named gyretls, so that it sits next to crypto/tls without an
// alias and its types print as *gyretls.Conn, *gyretls.HandshakeError (%T,
// logs), never to be mistaken for crypto/tls's *tls.Conn:
//
//	import "github.com/gyre-io/gyre/transports/tls" // package gyretls
//
// # API
//
//   - Listen / Connect: tcp.Listen / tcp.Connect with a *tls.Config
//     (Twisted's listenSSL / connectSSL).
//   - WrapFactory / WrapClientFactory: the same over any stream transport's
//     listen or connect; with a nil config connections start in plaintext.
//   - Wrap: the layer for one connection.
//   - Transport (implemented by *Conn; what the protocol's ConnectionMade
//     receives): StartTLS (Twisted's startTLS), StartTLSWith (the same with
//     bytes the peer sent after its STARTTLS command in the same chunk) and
//     ConnectionState.
//   - HandshakeListener: optional protocol interface, told when the
//     handshake completed, with tls.ConnectionState (version, cipher suite,
//     ALPN NegotiatedProtocol, SNI ServerName, peer certificates).
//
// # Behaviour
//
// ConnectionMade precedes the handshake (as in Twisted); writes made before
// it completes are held and encrypted afterwards. A failed handshake, a
// handshake that does not finish within Options.HandshakeTimeout (10 s by
// default), or a peer that leaves during it ends the connection with
// transports.Lost(&HandshakeError{…}); errors.As reaches
// *tls.CertificateVerificationError and tls.AlertError where that is what
// happened — also when the peer sent its alert and then reset the connection
// (the alert is the reason, the reset HandshakeError.Lost). LoseConnection:
// flush, close_notify, FIN, close, without waiting
// for the peer's close_notify, bounded by Options.CloseTimeout (5 s). Abort
// skips close_notify. The peer's close_notify — or its FIN at a record
// boundary, which crypto/tls itself reports as io.EOF (readRecordOrCCS) —
// ends the stream cleanly (ReadConnectionLost for a HalfCloseableProtocol,
// else the connection closes with transports.ErrConnectionDone); a FIN in the
// middle of a record is transports.Lost(&RecordError{io.ErrUnexpectedEOF}).
// Producers are registered on the underlying transport, whose queue holds the
// records; pause/resume, CloseWrite (close_notify + FIN) and
// ConnectionLost-exactly-once follow the transports contracts. Plaintext
// given to DataReceived is borrowed (valid until it returns), at most 16 KiB
// (one record) per call. When the loop stops, the underlying transport's
// shutdown closes the connection without close_notify (its reason is
// passed on).
//
// # Design, and what it costs
//
// crypto/tls has no memory-BIO API for TLS over a stream (QUICConn exists,
// but speaks QUIC's handshake without the record layer). It only drives a
// net.Conn. Two facts of Go 1.26's crypto/tls (conn.go) shape this package:
//
//   - A handshake error is sticky (Conn.handshakeErr), and the handshake
//     reads through readRecordOrCCS like any other read, so a handshake cannot
//     be driven on the loop by returning "would block" from the net.Conn: the
//     first would-block would fail it for good.
//   - After the handshake, readRecordOrCCS does not record a read error that
//     is a net.Error with Temporary() == true (it sets c.in.err only for
//     others), and partially read records stay in c.rawInput, so a Read that
//     hit "would block" can simply be retried with more input.
//
// Hence: the handshake runs on a goroutine (one per connection, only during
// the handshake) over an in-memory net.Conn (pipe) that the loop feeds from
// DataReceived, never waiting itself (a mutex held for a copy; the goroutine
// waits on a condition variable); the goroutine's output reaches the
// underlying transport through the reactor's Call. When the handshake ends,
// the goroutine's last act posts the result to the loop, and from then on
// the same tls.Conn is used on the loop only: DataReceived hands the borrowed
// chunk to crypto/tls through the pipe, which answers "would block"
// (Temporary) when empty, and Write encrypts synchronously into the
// underlying transport's queue. The goroutine ends when the handshake does,
// and at the latest when the connection ends (its ConnectionLost closes the
// pipe), including at loop Stop.
//
// Cost, measured on a noisy shared 2-core machine (BenchmarkTLSEcho,
// BenchmarkTLSHandshake; a crypto/tls client in the benchmark goroutine
// against a gyre server and against net + crypto/tls with a goroutine per
// connection): handshakes cost about the same (gyre/net ≈ 1.1 in time, the
// goroutine start and three or four cross-goroutine hops are noise next to
// the key exchange); one-connection echo is ≈ 1.2× net's time for 64 B and
// 16 KiB round trips — a single connection is net's best case, as its
// goroutine blocks in read with nothing else to do. Steady-state
// allocations: one small object per batch of records received (crypto/tls's
// atLeastReader, which escapes in readFromUntil each time its buffer runs
// short: Go 1.26 conn.go) and nothing else — net + crypto/tls pays the same
// one, and no caller of tls.Conn.Read can avoid it. The pipe frames records
// after the handshake so that it is one per batch, not one per TCP chunk a
// record spans plus one for a final "would block" read (see pipe.go;
// TestSteadyStateAllocs counts them).
//
// Alternatives considered: the handshake and the reads on a goroutine for
// the connection's whole life (as net does) costs a goroutine hop per
// received batch and a goroutine per idle connection; re-running a failed
// handshake is impossible (sticky error, consumed randomness and transcript).
//
// # Threading
//
// Every method runs on the connection's loop, as for every transport; the
// only other goroutine is the handshake's, which touches nothing but the
// tls.Conn and the pipe.
package gyretls
