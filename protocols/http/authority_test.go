package http

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// hostCases are Host field values by the grammar of RFC 9110 §7.2 /
// RFC 3986 §3.2.
var hostCases = []struct {
	v  string
	ok bool
}{
	{"example.com", true},
	{"example.com:8080", true},
	{"example.com:", true}, // port = *DIGIT
	{"127.0.0.1", true},
	{"127.0.0.1:80", true},
	{"999.1.1.1", true}, // not an IPv4address, but a valid reg-name
	{"a%41b", true},
	{"a-b_c~d.e!$&'()*+,;=", true},
	{"", true}, // empty: RFC 9112 §3.2, for a target URI without authority
	{":80", true},
	{"[::1]", true},
	{"[::1]:80", true},
	{"[::]", true},
	{"[1:2:3:4:5:6:7:8]", true},
	{"[1:2:3:4:5:6:7::]", true},
	{"[::2:3:4:5:6:7:8]", true},
	{"[1::8]", true},
	{"[fe80::1:2]:443", true},
	{"[::ffff:192.0.2.1]", true},
	{"[1:2:3:4:5:6:1.2.3.4]", true},
	{"[v1.x]", true},
	{"[V1F.a:b!]", true},
	{"[v1.x]:8080", true},

	{"x:abc", false},
	{"[::1", false},
	{"a:1:2", false},
	{"user@host", false},
	{"user:pw@host:80", false},
	{"a b", false},
	{"a%4", false},
	{"a%zz", false},
	{"a/b", false},
	{"a?b", false},
	{"a#b", false},
	{"a\"b", false},
	{"[]", false},
	{"[::1]x", false},
	{"[::1]:8x", false},
	{"[::1]]", false},
	{"::1", false},
	{"[1:2:3:4:5:6:7:8:9]", false},
	{"[1:2:3:4:5:6:7]", false},
	{"[1:2:3:4:5:6:7:8::]", false},
	{"[1::2::3]", false},
	{"[:1:2:3:4:5:6:7]", false},
	{"[1:2:3:4:5:6:7:]", false},
	{"[12345::]", false},
	{"[::g]", false},
	{"[::1.2.3]", false},
	{"[::1.2.3.256]", false},
	{"[::01.2.3.4]", false},
	{"[1:2:3:4:5:6:7:1.2.3.4]", false},
	{"[::1.2.3.4:5]", false},
	{"[127.0.0.1]", false},
	{"[v1]", false},
	{"[v.x]", false},
	{"[v1.]", false},
	{"[vg.x]", false},
	{"[v1.x/]", false},
	{"[example.com]", false},
}

func TestParseAuthority(t *testing.T) {
	for _, c := range hostCases {
		_, _, _, ok := parseAuthority([]byte(c.v))
		require.Equal(t, c.ok, ok, "%q", c.v)
	}
	host, port, hasPort, ok := parseAuthority([]byte("[::1]:80"))
	require.True(t, ok && hasPort)
	require.Equal(t, "[::1]", string(host))
	require.Equal(t, "80", string(port))
	host, port, hasPort, ok = parseAuthority([]byte("a.b"))
	require.True(t, ok)
	require.False(t, hasPort)
	require.Equal(t, "a.b", string(host))
	require.Empty(t, port)
}

// TestHostHeaderGrammar: an invalid Host value is answered 400 and closes
// (RFC 9112 §3.2); a valid one is served, and the handler sees it.
func TestHostHeaderGrammar(t *testing.T) {
	for _, c := range hostCases {
		for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
			var got string
			tr, _, p := dial(t, HandlerFunc(func(w ResponseWriter, r *Request) { got = r.Host }), Options{})
			p.DataReceived([]byte("GET / " + proto + "\r\nHost: " + c.v + "\r\n\r\n"))
			out := tr.String()
			if c.ok {
				require.True(t, strings.HasPrefix(out, proto+" 200 OK\r\n") || strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n"), "%q %s: %q", c.v, proto, out)
				require.Equal(t, c.v, got)
			} else {
				require.True(t, strings.HasPrefix(out, "HTTP/1.1 400 Bad Request\r\n"), "%q %s: %q", c.v, proto, out)
				require.True(t, tr.WriteClosed())
			}
		}
	}
}

// TestRequestTargetAuthority: the authority of an absolute-form target, and
// CONNECT's authority-form, by the same grammar (RFC 9112 §3.2.2, §3.2.3).
func TestRequestTargetAuthority(t *testing.T) {
	cases := []struct {
		line string
		host string // r.Host seen by the handler; "" with ok false: 400
		ok   bool
	}{
		{"GET http://example.com/x HTTP/1.1", "example.com", true},
		{"GET http://example.com:8080?q HTTP/1.1", "example.com:8080", true},
		{"GET HTTPS://[::1]:443/ HTTP/1.1", "[::1]:443", true},
		{"GET http://[v1.x]/ HTTP/1.1", "[v1.x]", true},
		{"GET http://a%41b/ HTTP/1.1", "a%41b", true},
		{"GET http://example.com:/ HTTP/1.1", "example.com:", true},
		{"GET ftp:///x HTTP/1.1", "h", true}, // empty authority is fine outside http(s)
		{"GET http:///x HTTP/1.1", "", false},
		{"GET https://:443/x HTTP/1.1", "", false},
		{"GET http:// HTTP/1.1", "", false},
		{"GET http://user@host/ HTTP/1.1", "", false},
		{"GET http://user:pw@host/ HTTP/1.1", "", false},
		{"GET http://x:abc/ HTTP/1.1", "", false},
		{"GET http://[::1/ HTTP/1.1", "", false},
		{"GET http://a:1:2/ HTTP/1.1", "", false},
		{"GET 1http://a/ HTTP/1.1", "", false},
		{"CONNECT example.com:443 HTTP/1.1", "h", true},
		{"CONNECT [::1]:443 HTTP/1.1", "h", true},
		{"CONNECT example.com HTTP/1.1", "", false},
		{"CONNECT example.com: HTTP/1.1", "", false},
		{"CONNECT :443 HTTP/1.1", "", false},
		{"CONNECT user@example.com:443 HTTP/1.1", "", false},
	}
	for _, c := range cases {
		var got string
		tr, _, p := dial(t, HandlerFunc(func(w ResponseWriter, r *Request) { got = r.Host }), Options{})
		p.DataReceived([]byte(c.line + "\r\nHost: h\r\n\r\n"))
		out := tr.String()
		if c.ok {
			require.True(t, strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n"), "%s: %q", c.line, out)
			require.Equal(t, c.host, got, c.line)
		} else {
			require.True(t, strings.HasPrefix(out, "HTTP/1.1 400 Bad Request\r\n"), "%s: %q", c.line, out)
		}
	}
}

// TestEmptyHost: HTTP/1.1 requires a Host field (400 without one, RFC 9112
// §3.2) but its value may be empty; HTTP/1.0 needs none.
func TestEmptyHost(t *testing.T) {
	for _, c := range []struct {
		in     string
		status string
	}{
		{"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 "},
		{"GET / HTTP/1.1\r\nHost:\r\n\r\n", "HTTP/1.1 200 "},
		{"GET / HTTP/1.1\r\nHost:  \r\n\r\n", "HTTP/1.1 200 "},
		{"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", "HTTP/1.1 400 "},
		{"GET / HTTP/1.1\r\nHost:\r\nHost:\r\n\r\n", "HTTP/1.1 400 "},
		{"GET / HTTP/1.0\r\n\r\n", "HTTP/1.1 200 "},
		{"GET / HTTP/1.0\r\nHost:\r\n\r\n", "HTTP/1.1 200 "},
	} {
		tr, _, p := dial(t, HandlerFunc(testHandler), Options{})
		p.DataReceived([]byte(c.in))
		require.True(t, strings.HasPrefix(tr.String(), c.status), "%q: %q", c.in, tr.String())
	}
}

func TestParseAuthorityAllocs(t *testing.T) {
	vals := [][]byte{[]byte("example.com:8080"), []byte("[fe80::1:2]:443"), []byte("[::ffff:192.0.2.1]"), []byte("[v1.x]"), []byte("a%41b")}
	require.Zero(t, testing.AllocsPerRun(100, func() {
		for _, v := range vals {
			parseAuthority(v)
		}
	}))
}

func BenchmarkParseAuthority(b *testing.B) {
	vals := [][]byte{[]byte("example.com:8080"), []byte("[fe80::1:2]:443"), []byte("127.0.0.1:8080")}
	b.ReportAllocs()
	for b.Loop() {
		for _, v := range vals {
			if _, _, _, ok := parseAuthority(v); !ok {
				b.Fatal("rejected")
			}
		}
	}
}

// TestResetContentHasNoContent: a 205 response carries no content (RFC 9110
// §15.3.6) — writes fail like for 204 and 304, a handler's Content-Length is
// not sent — and says so with Content-Length: 0, since its status alone does
// not frame it (RFC 9112 §6.3); the next response follows.
func TestResetContentHasNoContent(t *testing.T) {
	var errs []error
	h := HandlerFunc(func(w ResponseWriter, r *Request) {
		if r.Path == "/" {
			_, _ = w.Write([]byte("ok"))
			return
		}
		w.Header().Set("Content-Length", "5")
		w.WriteHeader(StatusResetContent)
		_, err := w.Write([]byte("hello"))
		errs = append(errs, err)
		if r.Path == "/flush" {
			_ = w.(Flusher).Flush()
		}
	})
	tr, _, p := dial(t, h, Options{})
	p.DataReceived([]byte("POST /reset HTTP/1.1\r\nHost: h\r\n\r\nPOST /flush HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"))
	reset := "HTTP/1.1 205 Reset Content\r\n" + date + "Content-Length: 0\r\n\r\n"
	require.Equal(t, reset+reset+"HTTP/1.1 200 OK\r\n"+date+"Content-Length: 2\r\n\r\nok", tr.String())
	require.Equal(t, []error{ErrBodyNotAllowed, ErrBodyNotAllowed}, errs)
}
