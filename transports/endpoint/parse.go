package endpoint

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadDescription is returned (wrapped) for a description that cannot be
// parsed or names an unknown type, parameter or value; the message names
// the bad part.
var ErrBadDescription = errors.New("gyre/endpoint: bad endpoint description")

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
			return p, badf(desc, "parameter %s given both by position and by name", k)
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
