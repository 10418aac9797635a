package endpoint

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/transports/tls/tlstest"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		args []string
		kw   map[string]string
	}{
		{"tcp:80", []string{"tcp", "80"}, map[string]string{}},
		{"tcp:80:interface=127.0.0.1", []string{"tcp", "80"}, map[string]string{"interface": "127.0.0.1"}},
		// Twisted's docstring example: a:b:d=1:c
		{"a:b:d=1:c", []string{"a", "b", "c"}, map[string]string{"d": "1"}},
		// A second '=' belongs to the value.
		{"x:k=a=b", []string{"x"}, map[string]string{"k": "a=b"}},
		// Backslash escapes a colon, a backslash, an equals sign, anything.
		{`unix:/tmp/a\:b`, []string{"unix", "/tmp/a:b"}, map[string]string{}},
		{`unix:C\\dir`, []string{"unix", `C\dir`}, map[string]string{}},
		{`unix:/tmp/a\=b`, []string{"unix", "/tmp/a=b"}, map[string]string{}},
		{`tcp6:80:interface=\:\:1`, []string{"tcp6", "80"}, map[string]string{"interface": "::1"}},
		{`x:k\=v`, []string{"x", "k=v"}, map[string]string{}},
		{`x:\q`, []string{"x", "q"}, map[string]string{}},
		{"x:k=", []string{"x"}, map[string]string{"k": ""}},
		{"x::y", []string{"x", "", "y"}, map[string]string{}},
		{"systemd:domain=INET:index=0", []string{"systemd"}, map[string]string{"domain": "INET", "index": "0"}},
	}
	for _, c := range cases {
		args, kw, err := Parse(c.in)
		require.NoError(t, err, c.in)
		require.Equal(t, c.args, args, c.in)
		require.Equal(t, c.kw, kw, c.in)
	}
	bad := map[string]string{
		"":              "no endpoint type",
		":80":           "no endpoint type",
		`tcp:80\`:       "lone backslash",
		"tcp:80:=x":     "empty name",
		"x:k=1:k=2":     "k given twice",
		"x:a=1:b=2:a=3": "a given twice",
	}
	for in, want := range bad {
		_, _, err := Parse(in)
		require.ErrorIs(t, err, ErrBadDescription, in)
		require.ErrorContains(t, err, want, in)
	}
}

func TestQuoteRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "/tmp/a:b=c\\d", "@abs:name", `\\`, "::"} {
		args, kw, err := Parse("unix:" + Quote(s))
		require.NoError(t, err, s)
		require.Empty(t, kw)
		require.Equal(t, []string{"unix", s}, args)
	}
}

func TestParseServer(t *testing.T) {
	pki, err := tlstest.New(t.TempDir(), "localhost")
	require.NoError(t, err)
	combined := filepath.Join(t.TempDir(), "both.pem")
	key, err := os.ReadFile(pki.KeyFile)
	require.NoError(t, err)
	cert, err := os.ReadFile(pki.CertFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(combined, append(cert, key...), 0o600))

	s, err := ParseServer("tcp:8080:interface=127.0.0.1:backlog=128")
	require.NoError(t, err)
	require.Equal(t, "tcp", s.Kind)
	require.Equal(t, "127.0.0.1:8080", s.Addr)
	require.Equal(t, 128, s.TCP.Backlog)
	require.False(t, s.TCP.ReusePort)

	s, err = ParseServer("TCP:port=0:reusePort=yes")
	require.NoError(t, err)
	require.Equal(t, ":0", s.Addr)
	require.True(t, s.TCP.ReusePort)
	require.True(t, s.Shareable())

	s, err = ParseServer("tcp:80:127.0.0.1:5") // positional interface and backlog
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:80", s.Addr)
	require.Equal(t, 5, s.TCP.Backlog)

	s, err = ParseServer(`tcp6:443:interface=\:\:1`)
	require.NoError(t, err)
	require.Equal(t, "[::1]:443", s.Addr)
	s, err = ParseServer("tcp6:443")
	require.NoError(t, err)
	require.Equal(t, "[::]:443", s.Addr)

	s, err = ParseServer("unix:/run/x.sock:mode=0660")
	require.NoError(t, err)
	require.Equal(t, "/run/x.sock", s.Addr)
	require.Equal(t, os.FileMode(0o660), s.UNIX.Mode)
	require.True(t, s.UNIX.RemoveStale)
	require.False(t, s.Shareable())
	s, err = ParseServer(`unix:address=@abs\:1:removeStale=0:backlog=7`)
	require.NoError(t, err)
	require.Equal(t, "@abs:1", s.Addr)
	require.False(t, s.UNIX.RemoveStale)
	require.Equal(t, 7, s.UNIX.Backlog)

	for _, typ := range []string{"ssl", "tls"} {
		s, err = ParseServer(typ + ":8443:privateKey=" + Quote(pki.KeyFile) + ":certKey=" + Quote(pki.CertFile))
		require.NoError(t, err)
		require.Equal(t, "ssl", s.Kind)
		require.Equal(t, ":8443", s.Addr)
		require.Len(t, s.TLS.Certificates, 1)
	}
	s, err = ParseServer("ssl:8443:privateKey=" + Quote(combined)) // certKey defaults to privateKey
	require.NoError(t, err)
	require.Len(t, s.TLS.Certificates[0].Certificate, 1)
	s, err = ParseServer("ssl:8443:privateKey=" + Quote(pki.KeyFile) + ":certKey=" + Quote(pki.CertFile) + ":extraCertChain=" + Quote(pki.CAFile))
	require.NoError(t, err)
	require.Len(t, s.TLS.Certificates[0].Certificate, 2)

	s, err = ParseServer("systemd:domain=inet:index=2")
	require.NoError(t, err)
	require.Equal(t, SystemdSelector{Domain: "INET", Index: 2}, s.Systemd)
	require.True(t, s.Shareable())
	s, err = ParseServer("systemd:domain=UNIX:name=web")
	require.NoError(t, err)
	require.Equal(t, SystemdSelector{Domain: "UNIX", Name: "web"}, s.Systemd)

	bad := map[string]string{
		"http:80":                          `unknown endpoint type "http"`,
		"127.0.0.1:80":                     `unknown endpoint type "127.0.0.1"`,
		"tcp":                              "tcp needs port",
		"tcp:http":                         `port "http"`,
		"tcp:70000":                        `port "70000"`,
		"tcp:80:interface=1.2.3.4:port=81": `parameter port given both by position ("80", positional argument 1 of tcp: port) and by name (port=81)`,
		"tcp:0:interface=127.0.0.1:backlog=1:extra": `parameter interface given both by position ("extra", positional argument 2 of tcp: port, interface) and by name (interface=127.0.0.1)`,
		"tcp:80:bogus=1":                     "unknown parameter bogus",
		"tcp:80:backlog=-1":                  `backlog "-1"`,
		"tcp:80:reusePort=maybe":             `reusePort "maybe"`,
		"tcp:1:2:3:4:5":                      `"5" is extra`,
		"tcp6:80:interface=127.0.0.1":        `tcp6 interface "127.0.0.1"`,
		"unix:":                              "unix needs address",
		"unix:/x:mode=rw":                    `mode "rw"`,
		"unix:/x:mode=1777":                  `mode "1777"`,
		"unix:/x:lockfile=1":                 "unknown parameter lockfile",
		"ssl:443":                            "ssl needs privateKey",
		"ssl:443:sslmethod=TLSv1_2_METHOD":   "unknown parameter sslmethod",
		"systemd:index=0":                    "systemd needs domain",
		"systemd:domain=INET":                "exactly one of index and name",
		"systemd:domain=INET:index=0:name=a": "exactly one of index and name",
		"systemd:domain=IPX:index=0":         `domain "IPX"`,
		"systemd:domain=INET:index=-1":       `index "-1"`,
	}
	for in, want := range bad {
		_, err := ParseServer(in)
		require.ErrorIs(t, err, ErrBadDescription, in)
		require.ErrorContains(t, err, want, in)
	}
}

// A file a well-formed description names that cannot be read or parsed is
// ErrFile (not ErrBadDescription), naming the parameter and wrapping the
// cause.
func TestParseFileErrors(t *testing.T) {
	pki, err := tlstest.New(t.TempDir(), "localhost")
	require.NoError(t, err)
	empty := t.TempDir()
	garbage := filepath.Join(empty, "garbage.pem")
	require.NoError(t, os.WriteFile(garbage, []byte("not PEM"), 0o600))
	cases := []struct {
		desc   string
		client bool
		want   string
		cause  error
	}{
		{"ssl:443:privateKey=/nonexistent/k.pem", false, "privateKey /nonexistent/k.pem: open /nonexistent/k.pem", fs.ErrNotExist},
		{"ssl:443:privateKey=" + Quote(pki.KeyFile) + ":certKey=/nonexistent/c.pem", false, "certKey /nonexistent/c.pem: open", fs.ErrNotExist},
		{"ssl:443:privateKey=/nonexistent/k.pem:certKey=" + Quote(pki.CertFile), false, "privateKey /nonexistent/k.pem: open", fs.ErrNotExist},
		{"ssl:443:privateKey=" + Quote(garbage), false, "privateKey " + garbage + ": tls:", nil},
		{"ssl:443:privateKey=" + Quote(pki.KeyFile) + ":certKey=" + Quote(pki.CertFile) + ":extraCertChain=/nonexistent/x", false, "extraCertChain: open /nonexistent/x", fs.ErrNotExist},
		{"tls:h:443:trustRoots=/nonexistent", true, "trustRoots: stat /nonexistent", fs.ErrNotExist},
		{"tls:h:443:caCertsDir=" + Quote(empty), true, "holds no PEM certificate", nil},
		{"tls:h:443:caCertsDir=" + Quote(pki.CAFile), true, "is not a directory", nil},
		{"tls:h:443:certificate=/nonexistent/c.pem", true, "certificate /nonexistent/c.pem: open", fs.ErrNotExist},
	}
	for _, c := range cases {
		if c.client {
			_, err = ParseClient(c.desc)
		} else {
			_, err = ParseServer(c.desc)
		}
		require.ErrorIs(t, err, ErrFile, c.desc)
		require.NotErrorIs(t, err, ErrBadDescription, c.desc)
		require.ErrorContains(t, err, c.want, c.desc)
		if c.cause != nil {
			require.ErrorIs(t, err, c.cause, c.desc)
		}
	}
}

func TestParseClient(t *testing.T) {
	pki, err := tlstest.New(t.TempDir(), "localhost")
	require.NoError(t, err)

	c, err := ParseClient("tcp:host=example.com:port=80:timeout=5:bindAddress=127.0.0.1")
	require.NoError(t, err)
	require.Equal(t, "example.com:80", c.Addr)
	require.Equal(t, 5*time.Second, c.TCP.Timeout)
	require.Equal(t, "127.0.0.1:0", c.TCP.BindAddr.String())
	c, err = ParseClient(`tcp:\:\:1:443:timeout=1.5s:bindAddress=[\:\:1]\:9000`)
	require.NoError(t, err)
	require.Equal(t, "[::1]:443", c.Addr)
	require.Equal(t, 1500*time.Millisecond, c.TCP.Timeout)
	require.Equal(t, "[::1]:9000", c.TCP.BindAddr.String())

	c, err = ParseClient("unix:path=/run/x.sock:timeout=2")
	require.NoError(t, err)
	require.Equal(t, "/run/x.sock", c.Addr)
	require.Equal(t, 2*time.Second, c.UNIX.Timeout)
	c, err = ParseClient("unix:@abs")
	require.NoError(t, err)
	require.Equal(t, "@abs", c.Addr)

	c, err = ParseClient("tls:host=127.0.0.1:port=8443:hostname=localhost:trustRoots=" + Quote(pki.CAFile))
	require.NoError(t, err)
	require.Equal(t, "ssl", c.Kind)
	require.Equal(t, "localhost", c.TLS.ServerName)
	require.NotNil(t, c.TLS.RootCAs)
	c, err = ParseClient("ssl:example.com:443:caCertsDir=" + Quote(filepath.Dir(pki.CAFile)) +
		":certKey=" + Quote(pki.CertFile) + ":privateKey=" + Quote(pki.KeyFile))
	require.NoError(t, err)
	require.Equal(t, "example.com", c.TLS.ServerName)
	require.NotNil(t, c.TLS.RootCAs)
	require.Len(t, c.TLS.Certificates, 1)
	c, err = ParseClient("tls:example.com:443")
	require.NoError(t, err)
	require.Nil(t, c.TLS.RootCAs, "system roots")

	bad := map[string]string{
		"tcp:example.com":                   "tcp needs port",
		"tcp:port=80":                       "tcp needs host",
		"tcp:h:0":                           `port "0"`,
		"tcp:h:80:timeout=soon":             `timeout "soon"`,
		"tcp:h:80:timeout=0":                `timeout "0"`,
		"tcp:h:80:bindAddress=localhost":    `bindAddress "localhost"`,
		"tcp:h:80:checkPID=1":               "unknown parameter checkPID",
		"unix:timeout=1":                    "unix needs path",
		"tls:h:443:privateKey=k.pem":        "privateKey without certificate",
		"tls:h:443:certificate=a:certKey=b": "give one",
		"udp:h:53":                          `unknown endpoint type "udp"`,
	}
	for in, want := range bad {
		_, err := ParseClient(in)
		require.ErrorIs(t, err, ErrBadDescription, in)
		require.ErrorContains(t, err, want, in)
	}
}
