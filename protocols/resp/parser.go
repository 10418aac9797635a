package resp

import (
	"bytes"
	"strconv"
)

// Results of parser.next.
const (
	needMore   = iota // the buffer ends inside a request
	gotRequest        // a multibulk request: its arguments are in parser.args
	gotInline         // an inline request: its line is parser.line
	gotEmpty          // "*0", "*-1": nothing to run
	gotError          // protocol error: parser.err says why; the connection must close
)

// span is an argument as offsets into the receive buffer, so a request stays
// valid when the buffer is compacted or grows between two DataReceived calls.
type span struct{ lo, hi int }

// parser is a resumable RESP request parser. It never copies: it reports
// offsets into the caller's buffer. It keeps its place across calls, so a
// request arriving one byte at a time is scanned in linear time.
//
// The framing follows Redis's processMultibulkBuffer and processInlineBuffer:
// "*<n>\r\n" then n times "$<len>\r\n<len bytes>\r\n", or an inline line ending
// in "\n" (an optional "\r" before it is dropped). Like Redis, the two bytes
// after a length line's CR and after a bulk payload are skipped, not checked.
// Unlike Redis, a line longer than the inline limit is refused even when its
// end arrived in the same read, so the outcome never depends on how the input
// was split.
type parser struct {
	maxBulk   int64
	maxArgs   int64
	maxInline int

	start int // offset of the request being parsed
	pos   int // offset of the next unread byte
	scan  int // bytes from pos already searched for a line end without success
	n     int // arguments expected; -1 while the array header is unread
	bulk  int // length of the bulk being read; -1 while its header is unread

	args []span // arguments parsed so far
	line span   // the line of an inline request
	err  string // the protocol error, for gotError
}

func (p *parser) init(maxBulk, maxArgs int64, maxInline int) {
	p.maxBulk, p.maxArgs, p.maxInline = maxBulk, maxArgs, maxInline
	p.n, p.bulk = -1, -1
}

// shift moves every offset d bytes down, after the caller dropped the first d
// bytes of its buffer.
func (p *parser) shift(d int) {
	if d == 0 {
		return
	}
	p.start -= d
	p.pos -= d
	for i := range p.args {
		p.args[i].lo -= d
		p.args[i].hi -= d
	}
}

// next parses the next request of b. b must hold at least the bytes the
// previous calls saw, at the same offsets (after shift).
func (p *parser) next(b []byte) int {
	if p.n < 0 {
		if p.pos >= len(b) {
			return needMore
		}
		if b[p.pos] != '*' {
			return p.inline(b)
		}
		count, r := p.lengthLine(b, "too big mbulk count string")
		if r != gotRequest {
			return r
		}
		if count > p.maxArgs {
			return p.fail("invalid multibulk length")
		}
		if count <= 0 {
			p.start = p.pos
			return gotEmpty
		}
		p.n = int(count)
		p.args = p.args[:0]
		p.bulk = -1
	}
	for len(p.args) < p.n {
		if p.bulk < 0 {
			if p.pos >= len(b) {
				return needMore
			}
			if c := b[p.pos]; c != '$' {
				return p.fail("expected '$', got '" + string(rune(c)) + "'")
			}
			l, r := p.lengthLine(b, "too big bulk count string")
			if r != gotRequest {
				return r
			}
			if l < 0 || l > p.maxBulk {
				return p.fail("invalid bulk length")
			}
			p.bulk = int(l)
		}
		if len(b)-p.pos < p.bulk+2 {
			return needMore
		}
		p.args = append(p.args, span{p.pos, p.pos + p.bulk})
		p.pos += p.bulk + 2
		p.bulk = -1
	}
	p.n = -1
	return gotRequest
}

// lengthLine reads "<c><integer>\r?" at pos. It returns gotRequest with the
// integer and pos past the line, needMore, or gotError.
func (p *parser) lengthLine(b []byte, tooBig string) (int64, int) {
	// Fast path: up to 18 digits (no overflow possible) and the CR and the
	// byte after it, all present. Anything else takes the general path.
	if p.scan == 0 {
		start := p.pos + 1
		j := start
		var v int64
		for j < len(b) && j-start < 18 {
			c := b[j]
			if c < '0' || c > '9' {
				break
			}
			v = v*10 + int64(c-'0')
			j++
		}
		if j > start && j+1 < len(b) && b[j] == '\r' && j-p.pos <= p.maxInline &&
			(b[start] != '0' || j == start+1) {
			p.pos = j + 2
			return v, gotRequest
		}
	}
	from := p.pos + p.scan
	i := bytes.IndexByte(b[from:], '\r')
	if i < 0 {
		if len(b)-p.pos > p.maxInline {
			return 0, p.fail(tooBig)
		}
		p.scan = len(b) - p.pos
		return 0, needMore
	}
	cr := from + i
	if cr-p.pos > p.maxInline {
		return 0, p.fail(tooBig)
	}
	if cr+1 >= len(b) {
		// Redis wants the CR and one more byte before it reads the line.
		return 0, needMore
	}
	v, ok := parseInt(b[p.pos+1 : cr])
	if !ok {
		if b[p.pos] == '*' {
			return 0, p.fail("invalid multibulk length")
		}
		return 0, p.fail("invalid bulk length")
	}
	p.pos = cr + 2
	p.scan = 0
	return v, gotRequest
}

func (p *parser) inline(b []byte) int {
	from := p.pos + p.scan
	i := bytes.IndexByte(b[from:], '\n')
	if i < 0 {
		if len(b)-p.pos > p.maxInline {
			return p.fail("too big inline request")
		}
		p.scan = len(b) - p.pos
		return needMore
	}
	nl := from + i
	if nl-p.pos > p.maxInline {
		return p.fail("too big inline request")
	}
	end := nl
	if end > p.pos && b[end-1] == '\r' {
		end--
	}
	p.line = span{p.pos, end}
	p.pos = nl + 1
	p.scan = 0
	return gotInline
}

func (p *parser) fail(msg string) int {
	p.err = "ERR Protocol error: " + msg
	return gotError
}

// reset forgets any partial request (after a protocol error or QUIT).
func (p *parser) reset() {
	p.start, p.pos, p.scan = 0, 0, 0
	p.n, p.bulk = -1, -1
	p.args = p.args[:0]
}

// parseInt parses a decimal int64 the way Redis's string2ll does: an optional
// '-', no '+', no leading zeros, no spaces, nothing else.
func parseInt(s []byte) (int64, bool) {
	if len(s) == 0 || len(s) > 20 {
		return 0, false
	}
	if len(s) == 1 && s[0] == '0' {
		return 0, true
	}
	neg := false
	if s[0] == '-' {
		neg = true
		s = s[1:]
		if len(s) == 0 {
			return 0, false
		}
	}
	if s[0] < '1' || s[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return int64(-v), true
	}
	if v > 1<<63-1 {
		return 0, false
	}
	return int64(v), true
}

// isSpace is C's isspace in the "C" locale.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// splitInline splits an inline request line into arguments the way Redis's
// sdssplitargs does, appending them to argv. Unquoted arguments point into
// line; when the line has quotes, arguments are unescaped into scratch (which
// is grown once to len(line), so earlier arguments stay valid). ok is false for
// unbalanced quotes.
func splitInline(line []byte, argv [][]byte, scratch *[]byte) ([][]byte, bool) {
	if bytes.IndexByte(line, '"') < 0 && bytes.IndexByte(line, '\'') < 0 {
		i := 0
		for {
			for i < len(line) && isSpace(line[i]) {
				i++
			}
			if i == len(line) {
				return argv, true
			}
			j := i
			for j < len(line) && !isSpace(line[j]) {
				j++
			}
			argv = append(argv, line[i:j:j])
			i = j
		}
	}
	if cap(*scratch) < len(line) {
		*scratch = make([]byte, 0, len(line))
	}
	out := (*scratch)[:0]
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return argv, true
		}
		start := len(out)
		inq, insq := false, false
	arg:
		for {
			if i >= len(line) {
				if inq || insq {
					return argv, false
				}
				break
			}
			c := line[i]
			switch {
			case inq:
				switch {
				case c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
					out = append(out, fromHex(line[i+2])<<4|fromHex(line[i+3]))
					i += 3
				case c == '\\' && i+1 < len(line):
					i++
					switch line[i] {
					case 'n':
						out = append(out, '\n')
					case 'r':
						out = append(out, '\r')
					case 't':
						out = append(out, '\t')
					case 'b':
						out = append(out, '\b')
					case 'a':
						out = append(out, '\a')
					default:
						out = append(out, line[i])
					}
				case c == '"':
					// A closing quote must be followed by a space or the end.
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return argv, false
					}
					i++
					break arg
				default:
					out = append(out, c)
				}
			case insq:
				switch {
				case c == '\\' && i+1 < len(line) && line[i+1] == '\'':
					i++
					out = append(out, '\'')
				case c == '\'':
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return argv, false
					}
					i++
					break arg
				default:
					out = append(out, c)
				}
			default:
				switch {
				case isSpace(c):
					break arg
				case c == '"':
					inq = true
				case c == '\'':
					insq = true
				default:
					out = append(out, c)
				}
			}
			i++
		}
		argv = append(argv, out[start:len(out):len(out)])
	}
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func fromHex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// formatInt is strconv.AppendInt base 10, named for symmetry with parseInt.
func formatInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }
