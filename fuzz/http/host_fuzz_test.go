package httpfuzz

import (
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/gyre-io/gyre/protocols/http"
)

// An independent oracle for RFC 9110 §7.2's Host = uri-host [ ":" port ]
// (RFC 3986 §3.2.2): reg-name and IPvFuture by regular expression, the IPv6
// literal by net/netip (without a zone, which RFC 3986 does not have).
var (
	reRegName  = regexp.MustCompile(`^(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$`)
	reIPFuture = regexp.MustCompile(`^[vV][0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+$`)
	rePort     = regexp.MustCompile(`^[0-9]*$`)
)

func hostOK(v string) bool {
	port := ""
	if strings.HasPrefix(v, "[") {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return false
		}
		lit, rest := v[1:end], v[end+1:]
		if reIPFuture.MatchString(lit) {
		} else if a, err := netip.ParseAddr(lit); err != nil || !a.Is6() || a.Zone() != "" {
			return false
		}
		if rest != "" {
			if rest[0] != ':' {
				return false
			}
			port = rest[1:]
		}
	} else {
		host := v
		if i := strings.IndexByte(v, ':'); i >= 0 {
			host, port = v[:i], v[i+1:]
		}
		if !reRegName.MatchString(host) {
			return false
		}
	}
	return rePort.MatchString(port)
}

// FuzzHost: the server accepts a Host value exactly when the oracle does,
// and answers any other with 400.
func FuzzHost(f *testing.F) {
	for _, s := range []string{
		"example.com", "example.com:8080", "example.com:", "127.0.0.1:80", "a%41b", "",
		"[::1]", "[::1]:80", "[v1.x]", "[::ffff:192.0.2.1]", "[1:2:3:4:5:6:7::]",
		"x:abc", "[::1", "a:1:2", "user@host", "a%4", "[::1]x", "[1::2::3]",
		"[::01.2.3.4]", "[fe80::1%25eth0]", "[v1]", "[127.0.0.1]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for i := 0; i < len(v); i++ {
			if v[i] < 0x21 || v[i] > 0x7e {
				t.Skip("not a visible ASCII character: the field-value check's business")
			}
		}
		var r http.Request
		_, err := http.ParseHead(&r, []byte("GET / HTTP/1.1\r\nHost: "+v+"\r\n\r\n"), http.Options{})
		want := hostOK(v)
		if (err == nil) != want {
			t.Fatalf("Host %q: err=%v, oracle says valid=%v", v, err, want)
		}
		if err != nil && !errors.Is(err, http.ErrBadRequest) {
			t.Fatalf("Host %q: %v is not a 400", v, err)
		}
		if err == nil && r.Host != v {
			t.Fatalf("Host %q seen as %q", v, r.Host)
		}
	})
}
