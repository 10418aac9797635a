package http

import "bytes"

// Character classes (RFC 9110 §5.6.2 tchar, §5.5 field-vchar, request-target).
const (
	cTchar  = 1 << iota // token character
	cValue              // allowed inside a field value: VCHAR, obs-text, SP, HTAB
	cTarget             // allowed in a request-target: VCHAR, obs-text
)

var class = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		if c >= 0x21 && c != 0x7f {
			t[c] |= cValue | cTarget
		}
		if c == ' ' || c == '\t' {
			t[c] |= cValue
		}
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			t[c] |= cTchar
		}
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] |= cTchar
	}
	return t
}()

// maxEmptyLines is how many empty lines may precede a request line (RFC 9112
// §2.2 asks servers to ignore at least one).
const maxEmptyLines = 8

// headScan remembers, across calls on a growing buffer, how far the search
// for the end of the head got, so a head arriving a byte at a time is scanned
// once, not once per byte.
type headScan struct {
	pos    int  // resume the search for the empty line here
	lineOK bool // the request line is complete and within its limit
}

// ParseHead parses the request head (request line, header fields, empty line)
// at the start of buf into r and returns the number of bytes it took. It
// returns ErrIncomplete when buf holds only part of a head that is still
// within the limits, and otherwise an error matching one of the package's
// sentinels (see StatusOf). The zero-valued fields of o take their defaults.
//
// r's strings and Header are views into buf, valid while buf is unchanged.
// ParseHead does not touch the body; ContentLength and Chunked say what
// follows. Not goroutine-safe for one r.
func ParseHead(r *Request, buf []byte, o Options) (int, error) {
	o = o.withDefaults()
	var s headScan
	return parseHead(r, buf, &o, &s)
}

func parseHead(r *Request, buf []byte, o *Options, s *headScan) (int, error) {
	r.reset()
	// Skip empty lines before the request line.
	start := 0
	for k := 0; ; k++ {
		if start < len(buf) && buf[start] == '\n' {
			start++
		} else if start+1 < len(buf) && buf[start] == '\r' && buf[start+1] == '\n' {
			start += 2
		} else if start+1 == len(buf) && buf[start] == '\r' {
			return 0, ErrIncomplete
		} else {
			break
		}
		if k >= maxEmptyLines {
			return 0, errEmptyLine
		}
	}
	b := buf[start:]
	if s.pos < start {
		s.pos = start
	}
	if !s.lineOK {
		lf := bytes.IndexByte(b, '\n')
		if lf < 0 {
			if len(b) > o.MaxRequestLineBytes+1 {
				return 0, errLineTooLong
			}
			return 0, ErrIncomplete
		}
		if n := trimCR(b[:lf]); len(n) > o.MaxRequestLineBytes {
			return 0, errLineTooLong
		}
		s.lineOK = true
		if s.pos < start+lf {
			s.pos = start + lf // the empty line cannot start earlier
		}
	}
	end, next := findHeadEnd(buf, s.pos)
	if end < 0 {
		s.pos = next
		if len(buf)-start > o.MaxHeaderBytes {
			return 0, errHeadTooLarge
		}
		return 0, ErrIncomplete
	}
	if end-start > o.MaxHeaderBytes {
		return 0, errHeadTooLarge
	}
	if err := parseLines(r, buf[start:end], o); err != nil {
		return 0, err
	}
	return end, nil
}

// findHeadEnd looks for the empty line ending a head, starting at from. It
// returns the index just past it, or -1 and where to resume.
func findHeadEnd(b []byte, from int) (end, next int) {
	i := from
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1, len(b)
		}
		i += j
		switch {
		case i+1 >= len(b):
			return -1, i
		case b[i+1] == '\n':
			return i + 2, 0
		case b[i+1] == '\r':
			if i+2 >= len(b) {
				return -1, i
			}
			if b[i+2] == '\n' {
				return i + 3, 0
			}
		}
		i++
	}
}

func trimCR(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		return line[:n-1]
	}
	return line
}

// nextLine splits b at the first LF; the line excludes CR LF.
func nextLine(b []byte) (line, rest []byte) {
	lf := bytes.IndexByte(b, '\n')
	return trimCR(b[:lf]), b[lf+1:]
}

// parseLines parses a complete head: request line, fields, empty line.
func parseLines(r *Request, head []byte, o *Options) error {
	line, rest := nextLine(head)
	if err := parseRequestLine(r, line); err != nil {
		return err
	}
	var (
		hosts                 int
		haveCL, haveTE        bool
		cl                    int64
		closeTok, keepAliveTk bool
	)
	count := 0
	for {
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errObsFold
		}
		colon := 0
		for colon < len(line) && class[line[colon]]&cTchar != 0 {
			colon++
		}
		if colon == len(line) {
			return errNoColon
		}
		if line[colon] != ':' {
			if line[colon] == ' ' || line[colon] == '\t' {
				return errSpaceBeforeColon
			}
			return errFieldName
		}
		if colon == 0 {
			return errFieldName
		}
		v := line[colon+1:]
		for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
			v = v[1:]
		}
		for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
			v = v[:len(v)-1]
		}
		for _, c := range v {
			if class[c]&cValue == 0 {
				return errFieldValue
			}
		}
		count++
		if count > o.MaxHeaderCount {
			return errTooManyHeaders
		}
		name := view(line[:colon])
		value := view(v)
		r.Header.f = append(r.Header.f, field{name: name, value: value})

		switch len(name) {
		case 4:
			if equalFold(name, "host") {
				hosts++
				// Host = uri-host [ ":" port ] (RFC 9110 §7.2); an
				// invalid value is a 400 (RFC 9112 §3.2). An empty value
				// is valid: a client sends it when the target URI has no
				// authority (RFC 9112 §3.2).
				if _, _, _, ok := parseAuthority(v); !ok {
					return errBadHost
				}
				if r.Host == "" {
					r.Host = value
				}
			}
		case 6:
			if equalFold(name, "expect") && r.ProtoMinor >= 1 {
				if !equalFold(value, "100-continue") {
					return errExpect
				}
				r.expectContinue = true
			}
		case 10:
			if equalFold(name, "connection") {
				forEachToken(v, func(t []byte) {
					if equalFold(view(t), "close") {
						closeTok = true
					} else if equalFold(view(t), "keep-alive") {
						keepAliveTk = true
					}
				})
			}
		case 14:
			if equalFold(name, "content-length") {
				n, err := parseContentLength(v)
				if err != nil {
					return err
				}
				if haveCL && n != cl {
					return errCLConflict
				}
				haveCL, cl = true, n
			}
		case 17:
			if equalFold(name, "transfer-encoding") {
				haveTE = true
			}
		}
	}
	if hosts > 1 {
		return errManyHosts
	}
	if hosts == 0 && r.ProtoMinor >= 1 {
		return errNoHost
	}
	if r.ProtoMinor >= 1 {
		r.Close = closeTok
	} else {
		r.Close = closeTok || !keepAliveTk
	}
	if haveTE {
		if r.ProtoMinor == 0 {
			return errTEHTTP10
		}
		if haveCL {
			return errCLAndTE
		}
		if err := checkTransferEncoding(&r.Header); err != nil {
			return err
		}
		r.Chunked = true
		r.ContentLength = -1
		return nil
	}
	if haveCL {
		if cl > o.MaxBodyBytes {
			return errBodyTooLarge
		}
		r.ContentLength = cl
	}
	return nil
}

// forEachToken calls f with each non-empty, OWS-trimmed element of a
// comma-separated list.
func forEachToken(v []byte, f func(t []byte)) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var t []byte
		if i < 0 {
			t, v = v, nil
		} else {
			t, v = v[:i], v[i+1:]
		}
		for len(t) > 0 && (t[0] == ' ' || t[0] == '\t') {
			t = t[1:]
		}
		for len(t) > 0 && (t[len(t)-1] == ' ' || t[len(t)-1] == '\t') {
			t = t[:len(t)-1]
		}
		if len(t) > 0 {
			f(t)
		}
	}
}

// parseContentLength accepts 1*DIGIT, or a list of identical such values
// (RFC 9110 §8.6).
func parseContentLength(v []byte) (int64, error) {
	n := int64(-1)
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var t []byte
		if i < 0 {
			t, v = v, nil
		} else {
			t, v = v[:i], v[i+1:]
			if len(v) == 0 {
				return 0, errContentLength
			}
		}
		for len(t) > 0 && (t[0] == ' ' || t[0] == '\t') {
			t = t[1:]
		}
		for len(t) > 0 && (t[len(t)-1] == ' ' || t[len(t)-1] == '\t') {
			t = t[:len(t)-1]
		}
		if len(t) == 0 || len(t) > 18 {
			return 0, errContentLength
		}
		var x int64
		for _, c := range t {
			if c < '0' || c > '9' {
				return 0, errContentLength
			}
			x = x*10 + int64(c-'0')
		}
		if n >= 0 && x != n {
			return 0, errCLConflict
		}
		n = x
	}
	if n < 0 {
		return 0, errContentLength
	}
	return n, nil
}

// checkTransferEncoding applies RFC 9112 §6.1/§6.3 to every
// Transfer-Encoding field: the final coding must be chunked (else 400),
// chunked only once (else 400), and no other coding (else 501).
func checkTransferEncoding(h *Header) error {
	var last []byte
	chunked, other := 0, false
	for i := range h.f {
		if len(h.f[i].name) != 17 || !equalFold(h.f[i].name, "transfer-encoding") {
			continue
		}
		forEachToken(bytesOf(h.f[i].value), func(t []byte) {
			last = t
			if equalFold(view(t), "chunked") {
				chunked++
			} else {
				other = true
			}
		})
	}
	switch {
	case last == nil || !equalFold(view(last), "chunked"):
		return errTENotChunked
	case chunked > 1:
		return errTEChunkedTwice
	case other:
		return errTEUnknown
	}
	return nil
}

func parseRequestLine(r *Request, line []byte) error {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return errRequestLine
	}
	method := line[:sp1]
	for _, c := range method {
		if class[c]&cTchar == 0 {
			return errMethod
		}
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return errRequestLine
	}
	target := rest[:sp2]
	for _, c := range target {
		if class[c]&cTarget == 0 {
			return errTarget
		}
	}
	ver := rest[sp2+1:]
	if len(ver) != 8 || string(ver[:5]) != "HTTP/" || ver[6] != '.' ||
		ver[5] < '0' || ver[5] > '9' || ver[7] < '0' || ver[7] > '9' {
		return errVersion
	}
	if ver[5] != '1' {
		return errVersionMajor
	}
	r.ProtoMajor, r.ProtoMinor = 1, int(ver[7]-'0')
	switch ver[7] {
	case '1':
		r.Proto = "HTTP/1.1"
	case '0':
		r.Proto = "HTTP/1.0"
	default:
		r.Proto = view(ver)
	}
	r.Method = internMethod(method)
	r.Target = view(target)
	return splitTarget(r, target)
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func internMethod(m []byte) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "HEAD":
		return "HEAD"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "OPTIONS":
		return "OPTIONS"
	case "PATCH":
		return "PATCH"
	case "CONNECT":
		return "CONNECT"
	}
	return view(m)
}

// splitTarget fills Path, Query and (absolute form) Host from the target,
// one of RFC 9112 §3.2's four forms.
func splitTarget(r *Request, t []byte) error {
	switch {
	case t[0] == '/':
	case len(t) == 1 && t[0] == '*':
		r.Path = "*"
		return nil
	case r.Method == "CONNECT":
		// authority-form = uri-host ":" port (RFC 9112 §3.2.3).
		host, port, _, ok := parseAuthority(t)
		if !ok || len(host) == 0 || len(port) == 0 {
			return errTargetAuthority
		}
		return nil
	default:
		// absolute-form: scheme "://" authority path-abempty [ "?" query ]
		// (RFC 9112 §3.2.2, RFC 3986 §3).
		i := bytes.Index(t, []byte("://"))
		if i <= 0 || !isAlpha(t[0]) {
			return errTarget
		}
		for _, c := range t[:i] {
			if !(isAlpha(c) || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
				return errTarget
			}
		}
		scheme := t[:i]
		t = t[i+3:]
		j := bytes.IndexAny(t, "/?")
		if j < 0 {
			j = len(t)
		}
		// No userinfo ("@" is not in the grammar: RFC 9110 §4.2.4), and an
		// "http" or "https" URI must have a host (RFC 9110 §4.2.1, §4.2.2).
		host, _, _, ok := parseAuthority(t[:j])
		if !ok || len(host) == 0 && (equalFold(view(scheme), "http") || equalFold(view(scheme), "https")) {
			return errTargetAuthority
		}
		r.Host = view(t[:j])
		t = t[j:]
		if len(t) == 0 || t[0] == '?' {
			r.Path = "/"
			if len(t) > 0 {
				r.Query = view(t[1:])
			}
			return nil
		}
	}
	if q := bytes.IndexByte(t, '?'); q >= 0 {
		r.Path, r.Query = view(t[:q]), view(t[q+1:])
	} else {
		r.Path = view(t)
	}
	return nil
}
