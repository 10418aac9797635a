package endpoint

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// fileParams are the parameters whose values name files ParseServer and
// ParseClient read; FuzzParse keeps the fuzzer away from them (it could name
// /dev/zero), and the TLS tests cover them.
var fileParams = []string{"privateKey", "certKey", "extraCertChain", "trustRoots", "caCertsDir", "certificate"}

// FuzzParse: Parse, ParseServer and ParseClient never panic and fail only
// with errors matching ErrBadDescription; a description that parses,
// rebuilt from its parts with Quote, parses to the same parts; and Quote
// round-trips any string as one argument and as one value.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"tcp:80", "tcp:80:interface=127.0.0.1:backlog=128:reusePort=yes", `tcp6:80:interface=\:\:1`,
		"unix:/tmp/s:mode=660:removeStale=0", "unix:@abstract", `unix:/tmp/a\:b\=c\\d`,
		"systemd:domain=INET:index=0", "systemd:domain=unix:name=web", "tcp:host=example.com:port=443:timeout=1.5s",
		"tcp:[::1]:80:bindAddress=127.0.0.1", "ssl:443", "tls:example.com:443:hostname=x",
		"a:b:d=1:c", "x:k=a=b", "x::y", "", ":", `tcp:80\`, "tcp:80:=x", "x:k=1:k=2", "TCP:0", "tcp:99999",
		"unix:/tmp/s:mode=7777", "tcp:80:backlog=-1", "systemd:domain=INET:index=0:name=a",
	} {
		f.Add(s, "a:b=c\\")
	}
	f.Fuzz(func(t *testing.T, desc, s string) {
		// Quote round-trips any string, as an argument and as a value.
		args, kw, err := Parse("x:" + Quote(s) + ":k=" + Quote(s))
		if err != nil || !slices.Equal(args, []string{"x", s}) || len(kw) != 1 || kw["k"] != s {
			t.Fatalf("Quote(%q): args %q kw %q err %v", s, args, kw, err)
		}

		args, kw, err = Parse(desc)
		if err != nil {
			if !errors.Is(err, ErrBadDescription) {
				t.Fatalf("Parse(%q): error %v does not match ErrBadDescription", desc, err)
			}
		} else {
			if len(args) == 0 || args[0] == "" {
				t.Fatalf("Parse(%q) gave no type: %q", desc, args)
			}
			// Rebuilt from its parts, quoted, it parses the same.
			parts := make([]string, 0, len(args)+len(kw))
			for _, a := range args {
				parts = append(parts, Quote(a))
			}
			keys := make([]string, 0, len(kw))
			for k := range kw {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				parts = append(parts, Quote(k)+"="+Quote(kw[k]))
			}
			re := strings.Join(parts, ":")
			args2, kw2, err := Parse(re)
			if err != nil || !slices.Equal(args, args2) || len(kw) != len(kw2) {
				t.Fatalf("Parse(%q) = %q %q; rebuilt %q parses to %q %q %v", desc, args, kw, re, args2, kw2, err)
			}
			for k, v := range kw {
				if v2, ok := kw2[k]; !ok || v2 != v {
					t.Fatalf("Parse(%q): %s=%q; rebuilt %q gives %q", desc, k, v, re, v2)
				}
			}
			kind := strings.ToLower(args[0])
			if kind == "ssl" || kind == "tls" {
				// Files are read from here on: only without file names.
				if len(args) > 5 {
					return
				}
				for _, p := range fileParams {
					if _, ok := kw[p]; ok {
						return
					}
				}
			}
		}
		if s, err := ParseServer(desc); err != nil {
			if !errors.Is(err, ErrBadDescription) {
				t.Fatalf("ParseServer(%q): error %v does not match ErrBadDescription", desc, err)
			}
		} else if s.Description != desc || s.Kind == "" || s.Kind != "systemd" && s.Addr == "" {
			t.Fatalf("ParseServer(%q) = %+v", desc, s)
		}
		if c, err := ParseClient(desc); err != nil {
			if !errors.Is(err, ErrBadDescription) {
				t.Fatalf("ParseClient(%q): error %v does not match ErrBadDescription", desc, err)
			}
		} else if c.Description != desc || c.Kind == "" || c.Addr == "" {
			t.Fatalf("ParseClient(%q) = %+v", desc, c)
		}
	})
}
