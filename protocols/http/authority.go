package http

import "bytes"

// Authority grammar (RFC 3986 §3.2, used by RFC 9110 §7.2 Host and RFC 9112
// §3.2 request targets). Every function works on the bytes in place and
// allocates nothing.
//
//	authority   = uri-host [ ":" port ]      ; no userinfo in HTTP
//	uri-host    = IP-literal / IPv4address / reg-name
//	IP-literal  = "[" ( IPv6address / IPvFuture ) "]"
//	IPvFuture   = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
//	reg-name    = *( unreserved / pct-encoded / sub-delims )
//	port        = *DIGIT
//
// An IPv4address is also a reg-name, so a host that is not bracketed is
// checked as a reg-name only.

// Character classes of RFC 3986 §2.
const (
	uUnreserved = 1 << iota // ALPHA DIGIT - . _ ~
	uSubDelim               // ! $ & ' ( ) * + , ; =
	uHex                    // HEXDIG
)

var uclass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c >= '0' && c <= '9':
			t[c] |= uUnreserved | uHex
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
			t[c] |= uUnreserved | uHex
		case c >= 'g' && c <= 'z', c >= 'G' && c <= 'Z':
			t[c] |= uUnreserved
		}
	}
	for _, c := range []byte("-._~") {
		t[c] |= uUnreserved
	}
	for _, c := range []byte("!$&'()*+,;=") {
		t[c] |= uSubDelim
	}
	return t
}()

// parseAuthority splits b, an authority without userinfo, into its host and
// port by the grammar above. hasPort reports whether a ":" port part is
// present (port may then be empty: "*DIGIT"). ok is false when b does not
// match the grammar.
func parseAuthority(b []byte) (host, port []byte, hasPort, ok bool) {
	var rest []byte
	if len(b) > 0 && b[0] == '[' {
		end := bytes.IndexByte(b, ']')
		if end < 0 || !validIPLiteral(b[1:end]) {
			return nil, nil, false, false
		}
		host, rest = b[:end+1], b[end+1:]
	} else {
		c := bytes.IndexByte(b, ':')
		if c < 0 {
			c = len(b)
		}
		host, rest = b[:c], b[c:]
		if !validRegName(host) {
			return nil, nil, false, false
		}
	}
	if len(rest) > 0 {
		if rest[0] != ':' {
			return nil, nil, false, false
		}
		port, hasPort = rest[1:], true
		for _, c := range port {
			if c < '0' || c > '9' {
				return nil, nil, false, false
			}
		}
	}
	return host, port, hasPort, true
}

// validRegName: *( unreserved / pct-encoded / sub-delims ); empty is valid.
func validRegName(b []byte) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if uclass[c]&(uUnreserved|uSubDelim) != 0 {
			continue
		}
		if c != '%' || i+2 >= len(b) || uclass[b[i+1]]&uHex == 0 || uclass[b[i+2]]&uHex == 0 {
			return false
		}
		i += 2
	}
	return true
}

// validIPLiteral checks what is between the brackets of an IP-literal.
func validIPLiteral(b []byte) bool {
	if len(b) > 0 && (b[0] == 'v' || b[0] == 'V') {
		return validIPvFuture(b[1:])
	}
	return validIPv6(b)
}

// validIPvFuture: 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ), after
// the "v".
func validIPvFuture(b []byte) bool {
	i := 0
	for i < len(b) && uclass[b[i]]&uHex != 0 {
		i++
	}
	if i == 0 || i >= len(b) || b[i] != '.' || i+1 == len(b) {
		return false
	}
	for _, c := range b[i+1:] {
		if uclass[c]&(uUnreserved|uSubDelim) == 0 && c != ':' {
			return false
		}
	}
	return true
}

// validIPv6 checks RFC 3986's IPv6address: eight h16 pieces (1 to 4 hex
// digits) separated by ":", the last two of which may be an IPv4address, or
// fewer with one "::" standing for at least one zero piece.
func validIPv6(b []byte) bool {
	pieces, elided := 0, false
	i := 0
	if len(b) >= 2 && b[0] == ':' && b[1] == ':' {
		elided, i = true, 2
		if i == len(b) {
			return true // "::"
		}
	}
	for {
		j := i
		for j < len(b) && j-i < 5 && uclass[b[j]]&uHex != 0 {
			j++
		}
		if j < len(b) && b[j] == '.' {
			if !validIPv4(b[i:]) {
				return false
			}
			pieces += 2
			break
		}
		if n := j - i; n == 0 || n > 4 {
			return false
		}
		pieces++
		if j == len(b) {
			break
		}
		if b[j] != ':' {
			return false
		}
		j++
		if j < len(b) && b[j] == ':' {
			if elided {
				return false
			}
			elided = true
			j++
			if j == len(b) {
				break
			}
		} else if j == len(b) {
			return false // a single trailing ":"
		}
		i = j
	}
	if elided {
		return pieces <= 7
	}
	return pieces == 8
}

// validIPv4 checks dec-octet "." dec-octet "." dec-octet "." dec-octet, where
// a dec-octet is 0 to 255 without leading zeros.
func validIPv4(b []byte) bool {
	for k := 0; k < 4; k++ {
		if k > 0 {
			if len(b) == 0 || b[0] != '.' {
				return false
			}
			b = b[1:]
		}
		n, v := 0, 0
		for n < len(b) && n < 4 && b[n] >= '0' && b[n] <= '9' {
			v = v*10 + int(b[n]-'0')
			n++
		}
		if n == 0 || n > 3 || v > 255 || n > 1 && b[0] == '0' {
			return false
		}
		b = b[n:]
	}
	return len(b) == 0
}
