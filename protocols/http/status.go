package http

import "strconv"

// Status codes the server itself uses, plus the common ones handlers need.
const (
	StatusContinue                    = 100
	StatusSwitchingProtocols          = 101
	StatusOK                          = 200
	StatusCreated                     = 201
	StatusAccepted                    = 202
	StatusNoContent                   = 204
	StatusResetContent                = 205
	StatusMovedPermanently            = 301
	StatusFound                       = 302
	StatusNotModified                 = 304
	StatusBadRequest                  = 400
	StatusUnauthorized                = 401
	StatusForbidden                   = 403
	StatusNotFound                    = 404
	StatusMethodNotAllowed            = 405
	StatusRequestTimeout              = 408
	StatusLengthRequired              = 411
	StatusRequestEntityTooLarge       = 413
	StatusURITooLong                  = 414
	StatusExpectationFailed           = 417
	StatusRequestHeaderFieldsTooLarge = 431
	StatusInternalServerError         = 500
	StatusNotImplemented              = 501
	StatusServiceUnavailable          = 503
	StatusHTTPVersionNotSupported     = 505
)

// StatusText returns the reason phrase for code, or "" if it is unknown.
func StatusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 101:
		return "Switching Protocols"
	case 103:
		return "Early Hints"
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 202:
		return "Accepted"
	case 203:
		return "Non-Authoritative Information"
	case 204:
		return "No Content"
	case 205:
		return "Reset Content"
	case 206:
		return "Partial Content"
	case 300:
		return "Multiple Choices"
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 303:
		return "See Other"
	case 304:
		return "Not Modified"
	case 307:
		return "Temporary Redirect"
	case 308:
		return "Permanent Redirect"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 406:
		return "Not Acceptable"
	case 408:
		return "Request Timeout"
	case 409:
		return "Conflict"
	case 410:
		return "Gone"
	case 411:
		return "Length Required"
	case 412:
		return "Precondition Failed"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 415:
		return "Unsupported Media Type"
	case 416:
		return "Range Not Satisfiable"
	case 417:
		return "Expectation Failed"
	case 421:
		return "Misdirected Request"
	case 422:
		return "Unprocessable Content"
	case 426:
		return "Upgrade Required"
	case 428:
		return "Precondition Required"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return ""
}

// appendStatusLine appends "HTTP/1.1 <code> <reason>\r\n".
func appendStatusLine(b []byte, code int) []byte {
	switch code {
	case 200:
		return append(b, "HTTP/1.1 200 OK\r\n"...)
	case 404:
		return append(b, "HTTP/1.1 404 Not Found\r\n"...)
	}
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, StatusText(code)...)
	return append(b, "\r\n"...)
}

// bodyAllowed reports whether a response with this status may carry a body:
// not 1xx, 204, 304 (RFC 9112 §6.3) nor 205 (RFC 9110 §15.3.6: a server
// MUST NOT generate content in a 205 response).
func bodyAllowed(code int) bool {
	return code >= 200 && code != 204 && code != 205 && code != 304
}
