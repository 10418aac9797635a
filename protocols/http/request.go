package http

import (
	"io"
	"net"
	"unsafe"
)

// Request is one parsed request. The server reuses one Request per
// connection: the Request, its strings, its Header and its Body are views into
// the connection's receive buffer and are valid only until ServeHTTP returns.
// Copy (strings.Clone, bytes.Clone) whatever outlives the call. Not
// goroutine-safe.
type Request struct {
	// Method is the request method, e.g. "GET".
	Method string
	// Target is the raw request-target as sent ("/a/b?x=1", "*",
	// "http://host/p", "host:443").
	Target string
	// Path is the path of the target, still percent-encoded; "*" for the
	// asterisk form and "" for the authority form (CONNECT).
	Path string
	// Query is the raw query after '?', without the '?'; "" if none.
	Query string
	// Proto is the protocol version, e.g. "HTTP/1.1".
	Proto string
	// ProtoMajor and ProtoMinor are Proto's numbers.
	ProtoMajor, ProtoMinor int
	// Host is the Host header, or the authority of an absolute-form target.
	Host string
	// Header holds the request's header fields in order.
	Header Header
	// ContentLength is the declared body length: -1 for a chunked body, 0 when
	// the request has no body.
	ContentLength int64
	// Chunked reports a chunked request body.
	Chunked bool
	// Close reports that the connection closes after this request's response
	// (Connection: close, HTTP/1.0 without keep-alive, or a server decision).
	Close bool
	// Body reads the whole request body (decoded if chunked). Never nil.
	Body io.Reader
	// RemoteAddr is the peer's address.
	RemoteAddr net.Addr

	expectContinue bool
	body           bodyReader
}

// BodyBytes returns the whole request body without copying; valid only until
// ServeHTTP returns. Reading Body does not change it.
func (r *Request) BodyBytes() []byte { return r.body.b }

func (r *Request) reset() {
	h := r.Header
	h.Reset()
	addr := r.RemoteAddr
	*r = Request{Header: h, RemoteAddr: addr}
	r.Body = &r.body
}

// bodyReader reads a byte slice; it is the Request's Body.
type bodyReader struct {
	b   []byte
	off int
}

// Read implements io.Reader.
func (b *bodyReader) Read(p []byte) (int, error) {
	if b.off >= len(b.b) {
		return 0, io.EOF
	}
	n := copy(p, b.b[b.off:])
	b.off += n
	return n, nil
}

// WriteTo implements io.WriterTo.
func (b *bodyReader) WriteTo(w io.Writer) (int64, error) {
	if b.off >= len(b.b) {
		return 0, nil
	}
	n, err := w.Write(b.b[b.off:])
	b.off += n
	return int64(n), err
}

func (b *bodyReader) set(p []byte) { b.b, b.off = p, 0 }

// view returns a string sharing p's memory (no copy). The caller guarantees p
// is not modified while the string is in use.
func view(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	return unsafe.String(&p[0], len(p))
}

// bytesOf returns s's bytes without copying; the caller must not modify them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
