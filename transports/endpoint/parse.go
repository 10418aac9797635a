package endpoint

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrBadDescription is returned (wrapped) for a description that cannot be
// parsed or names an unknown type, parameter or value; the message names
// the bad part.
var ErrBadDescription = errors.New("gyre/endpoint: bad endpoint description")

// ErrFile is returned (wrapped) when a file a well-formed description names
// — a TLS certificate, key, chain or CA file (privateKey, certKey,
// certificate, extraCertChain, trustRoots, caCertsDir) — cannot be read or
// does not hold what it should. The message quotes the description and
// names the parameter and the file; the cause is wrapped too (errors.Is
// matches fs.ErrNotExist, fs.ErrPermission, …). It does not match
// ErrBadDescription: the description is right, the file system is not (a
// program reports it as a start-up failure, not a usage error).
var ErrFile = errors.New("gyre/endpoint: unusable file in description")

// fileErr is an error matching ErrFile and cause that quotes desc and names
// the parameter(s) and file(s) in what.
func fileErr(desc, what string, cause error) error {
	return fmt.Errorf("%w %q: %s: %w", ErrFile, desc, what, cause)
}

// loadKeyPair loads a PEM certificate chain and its key, naming the
// parameters (certParam, keyParam: the same name when one parameter gave
// both files) in errors.
func loadKeyPair(desc, certParam, certFile, keyParam, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fileErr(desc, certParam+" "+certFile, err)
	}
	keyPEM := certPEM
	if keyFile != certFile {
		if keyPEM, err = os.ReadFile(keyFile); err != nil {
			return tls.Certificate{}, fileErr(desc, keyParam+" "+keyFile, err)
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		what := certParam + " " + certFile + " / " + keyParam + " " + keyFile
		if certParam == keyParam {
			what = keyParam + " " + keyFile
		}
		return tls.Certificate{}, fileErr(desc, what, err)
	}
	return cert, nil
}

// badf is an error matching ErrBadDescription that quotes desc and says
// what is wrong with it.
func badf(desc, format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", ErrBadDescription, desc, fmt.Sprintf(format, args...))
}

// Parse splits a description into its positional arguments (the first is
// the endpoint type) and its key=value parameters, by the rules of
// Twisted's twisted.internet.endpoints._parse:
//
//   - ':' separates arguments; an argument holding an '=' is a key=value
//     parameter, split at its first '=' (later ones belong to the value:
//     "a=b=c" is a=("b=c"));
//   - '\' makes the next character literal: "\:" is a colon, "\=" an equals
//     sign, "\\" a backslash;
//   - positional arguments and parameters may be mixed in any order.
//
// Unlike Twisted, a key given twice, an empty key, a description with no
// type and a trailing lone '\' are errors (matching ErrBadDescription)
// rather than a silent overwrite or a Python exception.
func Parse(desc string) (args []string, kw map[string]string, err error) {
	kw = map[string]string{}
	var cur strings.Builder
	var key string // the key of the current argument, once its '=' is seen
	haveKey := false
	end := func() error {
		if haveKey {
			if key == "" {
				return badf(desc, "parameter with an empty name (=%s)", cur.String())
			}
			if _, dup := kw[key]; dup {
				return badf(desc, "parameter %s given twice", key)
			}
			kw[key] = cur.String()
		} else {
			args = append(args, cur.String())
		}
		cur.Reset()
		key, haveKey = "", false
		return nil
	}
	for i := 0; i < len(desc); i++ {
		switch c := desc[i]; {
		case c == '\\':
			if i+1 == len(desc) {
				return nil, nil, badf(desc, "ends with a lone backslash")
			}
			i++
			cur.WriteByte(desc[i])
		case c == ':':
			if err := end(); err != nil {
				return nil, nil, err
			}
		case c == '=' && !haveKey:
			key, haveKey = cur.String(), true
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if err := end(); err != nil {
		return nil, nil, err
	}
	if len(args) == 0 || args[0] == "" { // "k=v" alone has no type
		return nil, nil, badf(desc, "no endpoint type (expected e.g. tcp:8080)")
	}
	return args, kw, nil
}

// Quote escapes s for use as one argument or value of a description: '\',
// ':' and '=' get a backslash ("unix:" + Quote(path) describes the socket
// at path whatever it holds).
func Quote(s string) string {
	if !strings.ContainsAny(s, `\:=`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == ':' || c == '=' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// params binds the arguments of one description to the parameter names of
// its endpoint type: positional argument i (after the type) is parameter
// names[i]; a name given both ways, a positional argument beyond names, and
// a key not in names are errors naming the part.
type params struct {
	desc string
	vals map[string]string
}

func bind(desc string, args []string, kw map[string]string, names ...string) (params, error) {
	p := params{desc: desc, vals: map[string]string{}}
	pos := args[1:]
	if len(pos) > len(names) {
		return p, badf(desc, "too many positional arguments for %s (%q is extra; positional parameters: %s)",
			args[0], pos[len(names)], strings.Join(names, ", "))
	}
	for i, v := range pos {
		p.vals[names[i]] = v
	}
	for k, v := range kw {
		known := false
		for _, n := range names {
			known = known || n == k
		}
		if !known {
			return p, badf(desc, "unknown parameter %s for %s (known: %s)", k, args[0], strings.Join(names, ", "))
		}
		if _, dup := p.vals[k]; dup {
			i := 0
			for names[i] != k {
				i++
			}
			return p, badf(desc, "parameter %s given both by position (%q, positional argument %d of %s: %s) and by name (%s=%s); name the others too, or drop one",
				k, pos[i], i+1, args[0], strings.Join(names[:len(pos)], ", "), k, v)
		}
		p.vals[k] = v
	}
	return p, nil
}

func (p params) get(name string) (string, bool) {
	v, ok := p.vals[name]
	return v, ok
}

// need returns a parameter that must be present and not empty.
func (p params) need(kind, name string) (string, error) {
	v, ok := p.vals[name]
	if !ok || v == "" {
		return "", badf(p.desc, "%s needs %s", kind, name)
	}
	return v, nil
}
