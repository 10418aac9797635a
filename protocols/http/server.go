package http

import (
	"net"
	"time"

	"github.com/gyre-io/gyre/transports"
)

// Handler answers one request (Go's net/http shape). ServeHTTP runs on the
// connection's loop goroutine and must not block; the response is complete
// when it returns. r and w are valid only until it returns.
type Handler interface {
	ServeHTTP(w ResponseWriter, r *Request)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(w ResponseWriter, r *Request)

// ServeHTTP calls f(w, r).
func (f HandlerFunc) ServeHTTP(w ResponseWriter, r *Request) { f(w, r) }

// ResponseWriter builds the response to one request. It is reused for the
// next request on the connection, so it is valid only until ServeHTTP
// returns. Not goroutine-safe. The concrete value also implements Flusher and
// io.StringWriter.
type ResponseWriter interface {
	// Header is the response header, sent when the head goes out (at the
	// first flush or when ServeHTTP returns). Changing it after WriteHeader
	// or Write has no defined effect. Content-Length set here is honoured
	// (the body is then sent as is and checked against it);
	// Transfer-Encoding is decided by the server and dropped; Date and
	// Server are added unless set.
	Header() *Header
	// WriteHeader sets the status code; only the first call counts. A code
	// outside 100..999 is replaced by 500. Informational (1xx) codes are not
	// supported (100 Continue is sent by the server itself) and are ignored.
	WriteHeader(status int)
	// Write appends to the body, calling WriteHeader(200) first if needed.
	// Up to Options.ResponseBufferBytes the body is buffered and sent with a
	// Content-Length; past that (or after Flush) it is streamed, chunked for
	// HTTP/1.1 and close-delimited for HTTP/1.0. For HEAD the bytes are
	// counted but not sent. p is copied; Write returns ErrBodyNotAllowed for
	// 1xx/204/205/304 and ErrContentLength past a declared Content-Length.
	Write(p []byte) (int, error)
}

// Flusher is implemented by the server's ResponseWriter.
type Flusher interface {
	// Flush sends the head and the body written so far to the transport now,
	// committing the response to streaming (chunked for HTTP/1.1).
	Flush() error
}

// Options configure the server. Zero fields take the defaults given; a
// negative timeout disables that timeout.
type Options struct {
	// MaxRequestLineBytes limits the request line (414). Default 8 KiB.
	MaxRequestLineBytes int
	// MaxHeaderBytes limits the whole request head, request line included
	// (431). Default 16 KiB.
	MaxHeaderBytes int
	// MaxHeaderCount limits the number of header fields (431). Default 100.
	MaxHeaderCount int
	// MaxBodyBytes limits a request body, declared or decoded (413).
	// Default 4 MiB.
	MaxBodyBytes int64
	// ResponseBufferBytes is how much body a handler may write before the
	// response switches from Content-Length to streaming. Default 4 KiB.
	ResponseBufferBytes int
	// IdleTimeout closes a connection that receives nothing for this long
	// while waiting for a request, or in the middle of a request body.
	// Default 60 s.
	IdleTimeout time.Duration
	// HeaderTimeout answers 408 and closes when a request head is not
	// complete this long after its first bytes arrived. Default 10 s.
	HeaderTimeout time.Duration
	// Server, if not empty, is sent as the Server header.
	Server string
}

func (o Options) withDefaults() Options {
	if o.MaxRequestLineBytes <= 0 {
		o.MaxRequestLineBytes = 8 << 10
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 16 << 10
	}
	if o.MaxHeaderCount <= 0 {
		o.MaxHeaderCount = 100
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 4 << 20
	}
	if o.ResponseBufferBytes <= 0 {
		o.ResponseBufferBytes = 4 << 10
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.HeaderTimeout == 0 {
		o.HeaderTimeout = 10 * time.Second
	}
	return o
}

// NewFactory returns a factory whose protocols serve HTTP/1.1 with h. The
// factory's BuildProtocol is goroutine-safe, so listeners on several loops may
// share it; each protocol it builds belongs to its connection's loop, and h is
// then called from every one of those loops (h must be safe for that if it
// keeps shared state).
func NewFactory(h Handler, o Options) transports.Factory {
	opts := o.withDefaults()
	return transports.FactoryFunc(func(addr net.Addr) transports.Protocol {
		return newConn(h, &opts)
	})
}
