package http

import "errors"

// Sentinel errors. Every error the parser returns matches exactly one of the
// first seven with errors.Is; StatusOf maps it to the answer the server sends.
var (
	// ErrIncomplete: the buffer does not hold a complete request head yet.
	ErrIncomplete = errors.New("http: incomplete request head")
	// ErrBadRequest: the request is malformed or its framing is ambiguous (400).
	ErrBadRequest = errors.New("http: bad request")
	// ErrRequestLineTooLong: the request line exceeds Options.MaxRequestLineBytes (414).
	ErrRequestLineTooLong = errors.New("http: request line too long")
	// ErrHeaderTooLarge: the head exceeds Options.MaxHeaderBytes or
	// Options.MaxHeaderCount (431).
	ErrHeaderTooLarge = errors.New("http: request header too large")
	// ErrBodyTooLarge: the body exceeds Options.MaxBodyBytes (413).
	ErrBodyTooLarge = errors.New("http: request body too large")
	// ErrNotImplemented: a transfer coding other than chunked was used (501).
	ErrNotImplemented = errors.New("http: transfer coding not implemented")
	// ErrVersionNotSupported: the HTTP major version is not 1 (505).
	ErrVersionNotSupported = errors.New("http: HTTP version not supported")
	// ErrExpectationFailed: an Expect header other than 100-continue (417).
	ErrExpectationFailed = errors.New("http: expectation failed")

	// ErrBodyNotAllowed is returned by ResponseWriter.Write for a status code
	// that has no body (1xx, 204, 205, 304); the bytes are dropped.
	ErrBodyNotAllowed = errors.New("http: response status does not allow a body")
	// ErrContentLength is returned by ResponseWriter.Write when the handler
	// writes more than the Content-Length it declared; the excess is dropped.
	ErrContentLength = errors.New("http: wrote more than the declared Content-Length")
)

// protoError is a parse failure: a sentinel plus the reason. The values are
// package-level, so failing allocates nothing.
type protoError struct {
	base error
	why  string
}

func (e *protoError) Error() string { return e.base.Error() + ": " + e.why }
func (e *protoError) Unwrap() error { return e.base }

func perr(base error, why string) error { return &protoError{base: base, why: why} }

var (
	errEmptyLine        = perr(ErrBadRequest, "too many empty lines before request line")
	errRequestLine      = perr(ErrBadRequest, "malformed request line")
	errMethod           = perr(ErrBadRequest, "invalid method")
	errTarget           = perr(ErrBadRequest, "invalid request-target")
	errTargetAuthority  = perr(ErrBadRequest, "invalid authority in request-target")
	errVersion          = perr(ErrBadRequest, "malformed HTTP version")
	errVersionMajor     = perr(ErrVersionNotSupported, "HTTP major version is not 1")
	errObsFold          = perr(ErrBadRequest, "obs-fold (line folding) in header")
	errFieldName        = perr(ErrBadRequest, "invalid header field name")
	errSpaceBeforeColon = perr(ErrBadRequest, "whitespace between field name and colon")
	errNoColon          = perr(ErrBadRequest, "header line without colon")
	errFieldValue       = perr(ErrBadRequest, "invalid character in header field value")
	errTooManyHeaders   = perr(ErrHeaderTooLarge, "too many header fields")
	errHeadTooLarge     = perr(ErrHeaderTooLarge, "request head too large")
	errLineTooLong      = perr(ErrRequestLineTooLong, "request line too long")
	errContentLength    = perr(ErrBadRequest, "invalid Content-Length")
	errCLConflict       = perr(ErrBadRequest, "differing Content-Length values")
	errCLAndTE          = perr(ErrBadRequest, "both Content-Length and Transfer-Encoding")
	errTENotChunked     = perr(ErrBadRequest, "final transfer coding is not chunked")
	errTEUnknown        = perr(ErrNotImplemented, "unsupported transfer coding")
	errTEChunkedTwice   = perr(ErrBadRequest, "chunked applied more than once")
	errTEHTTP10         = perr(ErrBadRequest, "Transfer-Encoding in an HTTP/1.0 request")
	errNoHost           = perr(ErrBadRequest, "missing Host header")
	errManyHosts        = perr(ErrBadRequest, "more than one Host header")
	errBadHost          = perr(ErrBadRequest, "invalid Host header")
	errExpect           = perr(ErrExpectationFailed, "unsupported expectation")
	errBodyTooLarge     = perr(ErrBodyTooLarge, "body exceeds the limit")

	errChunkSize     = perr(ErrBadRequest, "invalid chunk size")
	errChunkOverflow = perr(ErrBadRequest, "chunk size overflows")
	errChunkExt      = perr(ErrBadRequest, "invalid chunk extension")
	errChunkLine     = perr(ErrBadRequest, "chunk line too long")
	errChunkCRLF     = perr(ErrBadRequest, "missing CRLF after chunk")
	errTrailer       = perr(ErrBadRequest, "invalid trailer field")
	errTrailerSize   = perr(ErrBadRequest, "trailer section too large")
)

// StatusOf returns the status code the server answers a parse error with:
// 400, 413, 414, 417, 431, 501 or 505; 400 for an error it does not know.
func StatusOf(err error) int {
	switch {
	case errors.Is(err, ErrRequestLineTooLong):
		return StatusURITooLong
	case errors.Is(err, ErrHeaderTooLarge):
		return StatusRequestHeaderFieldsTooLarge
	case errors.Is(err, ErrBodyTooLarge):
		return StatusRequestEntityTooLarge
	case errors.Is(err, ErrNotImplemented):
		return StatusNotImplemented
	case errors.Is(err, ErrVersionNotSupported):
		return StatusHTTPVersionNotSupported
	case errors.Is(err, ErrExpectationFailed):
		return StatusExpectationFailed
	}
	return StatusBadRequest
}
