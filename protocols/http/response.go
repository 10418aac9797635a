package http

import "strconv"

// response is the connection's ResponseWriter, reused for every request.
type response struct {
	c      *conn
	req    *Request
	header Header
	buf    []byte // body buffered before the head is sent

	status      int
	declared    int64 // Content-Length set by the handler, -1 if none
	written     int64 // body bytes accepted
	wroteHeader bool
	headSent    bool
	chunked     bool // streaming with chunked coding
	head        bool // HEAD request: no body goes out
	closeAfter  bool

	// Fields of the handler's header the server looks at.
	haveDate, haveServer, userClose bool
}

var _ Flusher = (*response)(nil)

func (w *response) begin(r *Request) {
	w.req = r
	w.header.Reset()
	w.buf = w.buf[:0]
	w.status = 0
	w.declared = -1
	w.written = 0
	w.wroteHeader, w.headSent, w.chunked = false, false, false
	w.head = r.Method == "HEAD"
	w.closeAfter = r.Close
	w.haveDate, w.haveServer, w.userClose = false, false, false
}

// Header implements ResponseWriter.
func (w *response) Header() *Header { return &w.header }

// WriteHeader implements ResponseWriter.
func (w *response) WriteHeader(status int) {
	if w.wroteHeader || status >= 100 && status < 200 {
		return // informational responses are not supported: ignored
	}
	if status < 200 || status > 999 {
		status = StatusInternalServerError
	}
	w.wroteHeader = true
	w.status = status
	for i := range w.header.f {
		f := &w.header.f[i]
		switch len(f.name) {
		case 4:
			if equalFold(f.name, "date") {
				w.haveDate = true
			}
		case 6:
			if equalFold(f.name, "server") {
				w.haveServer = true
			}
		case 10:
			if equalFold(f.name, "connection") {
				forEachToken(bytesOf(f.value), func(t []byte) {
					if equalFold(view(t), "close") {
						w.userClose = true
					}
				})
			}
		case 14:
			if equalFold(f.name, "content-length") && bodyAllowed(status) {
				if n, err := strconv.ParseInt(f.value, 10, 64); err == nil && n >= 0 {
					w.declared = n
				}
			}
		}
	}
	if w.userClose {
		w.closeAfter = true
	}
}

// WriteString implements io.StringWriter.
func (w *response) WriteString(s string) (int, error) { return w.Write(bytesOf(s)) }

// Write implements ResponseWriter.
func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, ErrBodyNotAllowed
	}
	var err error
	n := len(p)
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		p = p[:w.declared-w.written]
		err = ErrContentLength
	}
	w.written += int64(len(p))
	if w.head {
		return n, err
	}
	if !w.headSent {
		if w.declared < 0 && len(w.buf)+len(p) <= w.c.o.ResponseBufferBytes {
			w.buf = append(w.buf, p...)
			return n, err
		}
		w.sendHead(false)
		w.body(w.buf)
		w.buf = w.buf[:0]
	}
	w.body(p)
	if len(w.c.out) >= outFlush {
		w.c.flushOut()
	}
	return n, err
}

// Flush implements Flusher.
func (w *response) Flush() error {
	if !w.wroteHeader {
		w.WriteHeader(StatusOK)
	}
	if !w.headSent {
		w.sendHead(false)
		w.body(w.buf)
		w.buf = w.buf[:0]
	}
	w.c.flushOut()
	return nil
}

// body appends body bytes in the chosen framing.
func (w *response) body(p []byte) {
	if len(p) == 0 || w.head || !bodyAllowed(w.status) {
		return
	}
	c := w.c
	if w.chunked {
		c.out = strconv.AppendUint(c.out, uint64(len(p)), 16)
		c.out = append(c.out, "\r\n"...)
		c.out = append(c.out, p...)
		c.out = append(c.out, "\r\n"...)
		return
	}
	c.out = append(c.out, p...)
}

// finish completes the response after the handler returned.
func (w *response) finish() {
	if !w.wroteHeader {
		w.WriteHeader(StatusOK)
	}
	if !w.headSent {
		w.sendHead(true)
		w.body(w.buf)
		w.buf = w.buf[:0]
	} else if w.chunked && !w.head {
		w.c.out = append(w.c.out, "0\r\n\r\n"...)
	}
	if w.declared >= 0 && w.written < w.declared && !w.head {
		// The body is shorter than declared: the framing is broken, so the
		// connection cannot carry another response.
		w.closeAfter = true
	}
	if cap(w.buf) > keepBuf {
		w.buf = nil
	}
}

// sendHead appends the status line and header. final: the whole body is
// known (in buf), so it goes out with a Content-Length; otherwise the body
// streams (chunked for HTTP/1.1, close-delimited for HTTP/1.0) unless the
// handler declared a Content-Length.
func (w *response) sendHead(final bool) {
	w.headSent = true
	c := w.c
	b := appendStatusLine(c.out, w.status)
	for i := range w.header.f {
		f := &w.header.f[i]
		switch len(f.name) {
		case 14:
			if equalFold(f.name, "content-length") && (w.status < 200 || w.status == 204 || w.status == 205) {
				continue // 205's is always 0, sent below
			}
		case 17:
			if equalFold(f.name, "transfer-encoding") {
				continue
			}
		}
		if !validFieldName(f.name) {
			continue
		}
		b = append(b, f.name...)
		b = append(b, ": "...)
		b = appendFieldValue(b, f.value)
		b = append(b, "\r\n"...)
	}
	b = c.appendCommon(b, w.haveDate, w.haveServer)
	switch {
	case w.status == StatusResetContent:
		// A 205 carries no content, but unlike 204 and 304 its framing is
		// not implied by the status (RFC 9112 §6.3): without a length the
		// client would read until the close.
		b = append(b, "Content-Length: 0\r\n"...)
	case !bodyAllowed(w.status) || w.declared >= 0:
	case final:
		if !w.head || w.written > 0 {
			b = append(b, "Content-Length: "...)
			b = appendInt(b, w.written)
			b = append(b, "\r\n"...)
		}
	case w.req.ProtoMinor >= 1:
		w.chunked = true
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	default:
		// HTTP/1.0 has no chunked coding: the end of the body is the close.
		w.closeAfter = true
	}
	switch {
	case w.closeAfter && !w.userClose:
		b = append(b, "Connection: close\r\n"...)
	case !w.closeAfter && w.req.ProtoMinor == 0:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	c.out = append(b, "\r\n"...)
}

func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if class[s[i]]&cTchar == 0 {
			return false
		}
	}
	return true
}

// appendFieldValue appends v with CR, LF and NUL replaced by spaces, so a
// handler cannot split the response.
func appendFieldValue(b []byte, v string) []byte {
	start := len(b)
	b = append(b, v...)
	for i := start; i < len(b); i++ {
		if c := b[i]; c == '\r' || c == '\n' || c == 0 {
			b[i] = ' '
		}
	}
	return b
}
