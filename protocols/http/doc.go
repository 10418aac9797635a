// Package http is an HTTP/1.1 server written as a gyre Protocol.
//
// NewFactory turns a Handler into a transports.Factory; every connection the
// factory builds parses requests, calls the handler on the connection's loop
// goroutine, and writes the responses back in request order:
//
//	f := http.NewFactory(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//		w.Header().Set("Content-Type", "text/plain")
//		w.Write([]byte("Hello, World!"))
//	}), http.Options{})
//	// hand f to a listener, e.g. tcp.Listen(loop, "127.0.0.1:8080", f)
//
// # What is supported
//
// Keep-alive (the HTTP/1.1 default; HTTP/1.0 only with "Connection: keep-alive"),
// "Connection: close", pipelining, Content-Length and chunked request bodies
// (trailers are parsed and dropped), Content-Length and chunked responses, HEAD,
// "Expect: 100-continue", a Date header cached per second, an optional Server
// header, limits with 400/413/414/431 answers, and idle and header-read
// timeouts on the transport's clock.
//
// Message framing follows RFC 9112 §6: a request with both Content-Length and
// Transfer-Encoding, differing Content-Length values, a Transfer-Encoding whose
// final coding is not chunked, a bad chunk size, obs-fold, whitespace between a
// field name and its colon, or an HTTP/1.1 request without exactly one Host is
// answered with 400 (501 for a transfer coding other than chunked) and the
// connection is closed after the answer.
//
// # Threading and lifetimes
//
// Handlers run synchronously on the connection's loop goroutine, one request
// at a time; a handler must not block. The request body is read completely
// (up to Options.MaxBodyBytes) before the handler runs.
//
// To avoid per-request allocation, a Request, its Header, its string fields
// and its Body are views into the connection's receive buffer, and the
// ResponseWriter is reused for the next request: all of them are valid only
// until ServeHTTP returns. Copy what you keep (strings.Clone, bytes.Clone).
//
// A handler that panics ends its connection the way the transport treats
// any panicking protocol (the tcp transport reports it and resets the
// connection); nothing is answered.
//
// # Not supported (v1)
//
// Handlers that answer later (asynchronously), informational (1xx) answers
// from handlers, Upgrade and CONNECT tunnels, streaming request bodies to the
// handler, and content codings.
package http
