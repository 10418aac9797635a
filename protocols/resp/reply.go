package resp

import "strconv"

// Reply encoding. Every helper appends one RESP2 value to b and returns the
// extended slice; none of them allocates unless b has to grow.

var (
	replyOK    = []byte("+OK\r\n")
	replyPong  = []byte("+PONG\r\n")
	replyNull  = []byte("$-1\r\n")
	replyZero  = []byte(":0\r\n")
	replyOne   = []byte(":1\r\n")
	replyEmpty = []byte("*0\r\n")
)

// appendSimple appends a simple string (+s). s must not contain CR or LF.
func appendSimple(b []byte, s string) []byte {
	b = append(b, '+')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

// appendError appends an error reply (-msg). CR and LF inside msg are turned
// into spaces, as Redis does, so a client-supplied name can never break the
// framing of the reply stream.
func appendError(b []byte, msg string) []byte {
	b = append(b, '-')
	start := len(b)
	b = append(b, msg...)
	sanitize(b[start:])
	return append(b, '\r', '\n')
}

// sanitize replaces CR and LF by spaces in place.
func sanitize(p []byte) {
	for i, c := range p {
		if c == '\r' || c == '\n' {
			p[i] = ' '
		}
	}
}

// appendInt appends an integer reply (:n).
func appendInt(b []byte, n int64) []byte {
	switch n {
	case 0:
		return append(b, replyZero...)
	case 1:
		return append(b, replyOne...)
	}
	b = append(b, ':')
	b = strconv.AppendInt(b, n, 10)
	return append(b, '\r', '\n')
}

// appendBulk appends a bulk string ($len payload).
func appendBulk(b, p []byte) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(p)), 10)
	b = append(b, '\r', '\n')
	b = append(b, p...)
	return append(b, '\r', '\n')
}

// appendBulkString is appendBulk for a string.
func appendBulkString(b []byte, s string) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, '\r', '\n')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

// appendArray appends an array header (*n).
func appendArray(b []byte, n int) []byte {
	if n == 0 {
		return append(b, replyEmpty...)
	}
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}
