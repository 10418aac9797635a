package respfuzz

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/protocols/resp"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// Small limits, so the fuzzer reaches every limit path with short inputs.
var limits = resp.Options{MaxBulkLen: 1 << 12, MaxArgs: 32, MaxInlineLen: 256, MaxQueryBuffer: 1 << 14}

// run feeds data to a fresh server in chunks of size (0: at once) and returns
// what it wrote and whether it asked to close.
func run(data []byte, size int) (string, bool) {
	f := resp.NewFactory(resp.NewStore(), limits)
	tr := transporttest.NewStringTransport(clock.NewFake())
	p := f.BuildProtocol(transporttest.DefaultRemoteAddr)
	transporttest.Connect(p, tr)
	transporttest.FeedChunks(p, data, size)
	out := tr.String()
	tr.EndConnection(nil)
	return out, tr.Disconnecting()
}

// FuzzServer feeds arbitrary bytes to a server, whole and in chunks: it must
// never panic, must answer with well-formed RESP2, and must answer the same
// however the input was split.
func FuzzServer(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		whole, closedWhole := run(data, 0)
		split, closedSplit := run(data, int(chunk%32)+1)
		require.Equal(t, whole, split, "chunk size %d", chunk%32+1)
		require.Equal(t, closedWhole, closedSplit)
		starts, err := checkReplies([]byte(whole))
		require.NoError(t, err, "reply stream %q", whole)
		for i, off := range starts {
			if strings.HasPrefix(whole[off:], "-ERR Protocol error: ") {
				require.Equal(t, len(starts)-1, i, "a protocol error is the last reply")
				require.True(t, closedWhole, "a protocol error closes the connection")
			}
		}
	})
}

// FuzzEcho checks that any argument survives a round trip through ECHO, sent
// as a multibulk request and as a quoted inline request.
func FuzzEcho(f *testing.F) {
	for _, s := range []string{"", "hello", "a b", "\"", "'", "\\", "\r\n", "\x00\xff", "\\x41", strings.Repeat("z", 200)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, arg []byte) {
		if len(arg) > 1<<10 {
			return
		}
		want := "$" + strconv.Itoa(len(arg)) + "\r\n" + string(arg) + "\r\n"
		mb := "*2\r\n$4\r\nECHO\r\n$" + strconv.Itoa(len(arg)) + "\r\n" + string(arg) + "\r\n"
		got, _ := run([]byte(mb), 0)
		require.Equal(t, want, got, "multibulk")
		inline := "ECHO " + quote(arg) + "\r\n"
		if len(inline)-1 > limits.MaxInlineLen { // the line up to its LF
			return
		}
		got, _ = run([]byte(inline), 0)
		require.Equal(t, want, got, "inline %q", inline)
	})
}

// quote writes p the way redis-cli's sdscatrepr does, which Redis's inline
// splitter reads back.
func quote(p []byte) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range p {
		switch c {
		case '\\', '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString("\\n")
		case '\r':
			b.WriteString("\\r")
		case '\t':
			b.WriteString("\\t")
		case '\a':
			b.WriteString("\\a")
		case '\b':
			b.WriteString("\\b")
		default:
			if c >= 0x20 && c < 0x7f {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "\\x%02x", c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// checkReplies parses a stream of RESP2 replies and returns the offset of
// each top-level one; any malformed or truncated reply is an error.
func checkReplies(b []byte) ([]int, error) {
	var starts []int
	off := 0
	for off < len(b) {
		starts = append(starts, off)
		rest, err := reply(b[off:], 0)
		if err != nil {
			return starts, err
		}
		off = len(b) - len(rest)
	}
	return starts, nil
}

func line(b []byte) ([]byte, []byte, error) {
	i := bytes.Index(b, []byte("\r\n"))
	if i < 0 {
		return nil, nil, fmt.Errorf("unterminated line %q", b)
	}
	return b[:i], b[i+2:], nil
}

func reply(b []byte, depth int) ([]byte, error) {
	if depth > 8 {
		return nil, fmt.Errorf("nested too deep")
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("missing reply")
	}
	kind := b[0]
	l, rest, err := line(b[1:])
	if err != nil {
		return nil, err
	}
	switch kind {
	case '+', '-':
		if bytes.ContainsAny(l, "\r\n") {
			return nil, fmt.Errorf("CR or LF inside %q", l)
		}
		return rest, nil
	case ':':
		_, err := strconv.ParseInt(string(l), 10, 64)
		return rest, err
	case '$':
		n, err := strconv.Atoi(string(l))
		if err != nil || n < -1 {
			return nil, fmt.Errorf("bad bulk length %q", l)
		}
		if n == -1 {
			return rest, nil
		}
		if len(rest) < n+2 || string(rest[n:n+2]) != "\r\n" {
			return nil, fmt.Errorf("bad bulk payload")
		}
		return rest[n+2:], nil
	case '*':
		n, err := strconv.Atoi(string(l))
		if err != nil || n < -1 {
			return nil, fmt.Errorf("bad array length %q", l)
		}
		for range n {
			if rest, err = reply(rest, depth+1); err != nil {
				return nil, err
			}
		}
		return rest, nil
	}
	return nil, fmt.Errorf("unknown reply type %q", kind)
}

// seeds are requests worth starting from: every command, options, errors,
// inline quoting and the protocol's edge cases.
var seeds = []string{
	"*1\r\n$4\r\nPING\r\n",
	"PING\r\nPING hello\r\nECHO \"a\\x41\\n\" 'b\\'c'\r\n",
	"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
	"SET k v EX 10 NX\r\nSET k w XX GET KEEPTTL\r\nTTL k\r\nPTTL k\r\nPERSIST k\r\n",
	"SET k v PXAT 1\r\nSET k v EXAT 99999999999\r\nGETSET k x\r\nGETDEL k\r\nGETDEL k\r\n",
	"INCR n\r\nINCRBY n 9223372036854775806\r\nINCR n\r\nDECRBY n -9223372036854775808\r\nDECR m\r\n",
	"MSET a 1 b 2 c\r\nMSET a 1 b 2\r\nMGET a b c\r\nMSETNX a 1 z 2\r\nDEL a b z\r\nEXISTS a a b\r\n",
	"SET k v\r\nEXPIRE k 10 NX\r\nEXPIRE k 5 GT\r\nEXPIRE k 5 LT\r\nPEXPIRE k -1\r\nEXPIREAT k 1 XX\r\nTTL k\r\n",
	"SETNX k 1\r\nSETEX k 0 v\r\nPSETEX k 100 v\r\nAPPEND k xyz\r\nSTRLEN k\r\nTYPE k\r\nKEYS *\r\nKEYS [a-z]?\r\n",
	"DBSIZE\r\nFLUSHALL\r\nFLUSHDB ASYNC\r\nSELECT 0\r\nSELECT 1\r\n",
	"COMMAND COUNT\r\nCOMMAND INFO get set\r\nCOMMAND DOCS ping\r\nCOMMAND\r\n",
	"CONFIG GET save\r\nCONFIG GET appendonly\r\nCONFIG GET *\r\nCONFIG SET a b\r\nCONFIG RESETSTAT\r\n",
	"CLIENT SETNAME x\r\nCLIENT GETNAME\r\nCLIENT ID\r\nHELLO 2\r\nHELLO 3\r\nINFO\r\nRESET\r\n",
	"FOO bar baz\r\n*1\r\n$3\r\nFOO\r\n",
	"PING\r\nQUIT\r\nPING\r\n",
	"*0\r\n*-1\r\n\r\n   \r\n*1\r\n$4\r\nPING\r\n",
	"*x\r\n",
	"*1\r\n+PING\r\n",
	"*1\r\n$-5\r\n",
	"*1\r\n$5000\r\n",
	"*33\r\n",
	"*2\r\n$4\r\nECHO\r\n$3\r\nab",
	"ECHO \"unbalanced\r\n",
	"ECHO 'x'y\r\n",
	strings.Repeat("a", 300) + "\r\n",
	"*1\r\n$" + strings.Repeat("9", 300),
	"*1\r\n$04\r\nPING\r\n",
	"*1\n$4\nPING\n",
}
