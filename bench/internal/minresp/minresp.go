// Package minresp is the small RESP server core shared by the bench's `net` and
// `gnet` servers: a request parser (multibulk and inline), a mutex-guarded
// key/value store and the commands PING, ECHO, SET, GET, INCR, MSET, MGET,
// DEL, EXISTS, CONFIG GET, COMMAND and QUIT. It is deliberately independent
// of gyre's protocols/resp so the comparison servers share no code with gyre.
package minresp

import (
	"bytes"
	"errors"
	"strconv"
	"sync"
)

// ErrProtocol is returned for a malformed request; the server replies with an
// error and closes the connection, as Redis does.
var ErrProtocol = errors.New("minresp: protocol error")

// maxLine bounds a length line or inline request; maxBulk one bulk string.
const (
	maxLine = 64 << 10
	maxBulk = 512 << 20
	maxArgs = 1 << 20
)

// Parse parses one request at the start of buf. It returns the arguments
// (appended to args[:0], aliasing buf) and the bytes consumed; n == 0 with a
// nil error means the request is incomplete. An empty inline line yields no
// arguments and n > 0.
func Parse(buf []byte, args [][]byte) (out [][]byte, n int, err error) {
	args = args[:0]
	if len(buf) == 0 {
		return args, 0, nil
	}
	if buf[0] != '*' {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			if len(buf) > maxLine {
				return args, 0, ErrProtocol
			}
			return args, 0, nil
		}
		line := buf[:i]
		line = bytes.TrimSuffix(line, []byte{'\r'})
		args = append(args, bytes.Fields(line)...)
		return args, i + 1, nil
	}
	cnt, p, ok, err := intLine(buf, 1)
	if err != nil || !ok {
		return args, 0, err
	}
	if cnt < 0 || cnt > maxArgs {
		return args, 0, ErrProtocol
	}
	for k := 0; k < cnt; k++ {
		if p >= len(buf) {
			return args, 0, nil
		}
		if buf[p] != '$' {
			return args, 0, ErrProtocol
		}
		l, q, ok, err := intLine(buf, p+1)
		if err != nil || !ok {
			return args, 0, err
		}
		if l < 0 || l > maxBulk {
			return args, 0, ErrProtocol
		}
		if q+l+2 > len(buf) {
			return args, 0, nil
		}
		if buf[q+l] != '\r' || buf[q+l+1] != '\n' {
			return args, 0, ErrProtocol
		}
		args = append(args, buf[q:q+l])
		p = q + l + 2
	}
	return args, p, nil
}

// intLine parses a decimal integer from buf[p:] up to CRLF; it returns the
// value and the offset after the CRLF.
func intLine(buf []byte, p int) (v, next int, ok bool, err error) {
	neg := false
	if p < len(buf) && buf[p] == '-' {
		neg = true
		p++
	}
	start := p
	for ; p < len(buf); p++ {
		c := buf[p]
		if c == '\r' {
			if p+1 >= len(buf) {
				return 0, 0, false, nil
			}
			if buf[p+1] != '\n' || p == start {
				return 0, 0, false, ErrProtocol
			}
			if neg {
				v = -v
			}
			return v, p + 2, true, nil
		}
		if c < '0' || c > '9' || p-start > 18 {
			return 0, 0, false, ErrProtocol
		}
		v = v*10 + int(c-'0')
	}
	if len(buf)-start > maxLine {
		return 0, 0, false, ErrProtocol
	}
	return 0, 0, false, nil
}

// Store is a goroutine-safe string key/value store.
type Store struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{m: make(map[string][]byte)} }

// Len returns the number of keys. Goroutine-safe.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// set stores a copy of v, reusing the old value's memory when it fits.
func (s *Store) setLocked(k, v []byte) {
	old, ok := s.m[string(k)]
	if ok && cap(old) >= len(v) {
		s.m[string(k)] = append(old[:0], v...)
		return
	}
	s.m[string(k)] = append([]byte(nil), v...)
}

// Exec runs one command (args as returned by Parse) and appends its reply to
// out. quit reports a QUIT: the caller sends out and closes. Goroutine-safe.
func (s *Store) Exec(args [][]byte, out []byte) (reply []byte, quit bool) {
	if len(args) == 0 {
		return out, false
	}
	cmd := args[0]
	switch {
	case eq(cmd, "PING"):
		if len(args) > 2 {
			return wrongArgs(out, "ping"), false
		}
		if len(args) == 2 {
			return bulk(out, args[1]), false
		}
		return append(out, "+PONG\r\n"...), false
	case eq(cmd, "ECHO"):
		if len(args) != 2 {
			return wrongArgs(out, "echo"), false
		}
		return bulk(out, args[1]), false
	case eq(cmd, "SET"):
		if len(args) < 3 {
			return wrongArgs(out, "set"), false
		}
		s.mu.Lock()
		s.setLocked(args[1], args[2])
		s.mu.Unlock()
		return append(out, "+OK\r\n"...), false
	case eq(cmd, "GET"):
		if len(args) != 2 {
			return wrongArgs(out, "get"), false
		}
		s.mu.Lock()
		v, ok := s.m[string(args[1])]
		if ok {
			out = bulk(out, v)
		} else {
			out = append(out, "$-1\r\n"...)
		}
		s.mu.Unlock()
		return out, false
	case eq(cmd, "INCR"):
		if len(args) != 2 {
			return wrongArgs(out, "incr"), false
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		var n int64
		if v, ok := s.m[string(args[1])]; ok {
			x, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return append(out, "-ERR value is not an integer or out of range\r\n"...), false
			}
			n = x
		}
		n++
		var tmp [24]byte
		s.setLocked(args[1], strconv.AppendInt(tmp[:0], n, 10))
		out = append(out, ':')
		out = strconv.AppendInt(out, n, 10)
		return append(out, "\r\n"...), false
	case eq(cmd, "MSET"):
		if len(args) < 3 || len(args)%2 != 1 {
			return wrongArgs(out, "mset"), false
		}
		s.mu.Lock()
		for i := 1; i < len(args); i += 2 {
			s.setLocked(args[i], args[i+1])
		}
		s.mu.Unlock()
		return append(out, "+OK\r\n"...), false
	case eq(cmd, "MGET"):
		if len(args) < 2 {
			return wrongArgs(out, "mget"), false
		}
		out = arrayHead(out, len(args)-1)
		s.mu.Lock()
		for _, k := range args[1:] {
			if v, ok := s.m[string(k)]; ok {
				out = bulk(out, v)
			} else {
				out = append(out, "$-1\r\n"...)
			}
		}
		s.mu.Unlock()
		return out, false
	case eq(cmd, "DEL"), eq(cmd, "EXISTS"):
		if len(args) < 2 {
			return wrongArgs(out, "del"), false
		}
		del := eq(cmd, "DEL")
		n := 0
		s.mu.Lock()
		for _, k := range args[1:] {
			if _, ok := s.m[string(k)]; ok {
				n++
				if del {
					delete(s.m, string(k))
				}
			}
		}
		s.mu.Unlock()
		out = append(out, ':')
		out = strconv.AppendInt(out, int64(n), 10)
		return append(out, "\r\n"...), false
	case eq(cmd, "CONFIG"), eq(cmd, "COMMAND"):
		return append(out, "*0\r\n"...), false
	case eq(cmd, "QUIT"):
		return append(out, "+OK\r\n"...), true
	}
	out = append(out, "-ERR unknown command '"...)
	out = append(out, sanitize(cmd)...)
	return append(out, "'\r\n"...), false
}

func sanitize(b []byte) []byte {
	if len(b) > 64 {
		b = b[:64]
	}
	for _, c := range b {
		if c < ' ' || c == '\'' || c > '~' {
			return []byte("?")
		}
	}
	return b
}

// eq compares a command name case-insensitively with an upper-case literal.
func eq(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func wrongArgs(out []byte, cmd string) []byte {
	out = append(out, "-ERR wrong number of arguments for '"...)
	out = append(out, cmd...)
	return append(out, "' command\r\n"...)
}

func bulk(out, v []byte) []byte {
	out = append(out, '$')
	out = strconv.AppendInt(out, int64(len(v)), 10)
	out = append(out, "\r\n"...)
	out = append(out, v...)
	return append(out, "\r\n"...)
}

func arrayHead(out []byte, n int) []byte {
	out = append(out, '*')
	out = strconv.AppendInt(out, int64(n), 10)
	return append(out, "\r\n"...)
}

// ErrorReply appends the reply for a protocol error.
func ErrorReply(out []byte) []byte {
	return append(out, "-ERR Protocol error\r\n"...)
}
