package resp

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// server is one connection to a fresh store, on a fake clock.
type server struct {
	clk *clock.Fake
	f   *Factory
	tr  *transporttest.StringTransport
	c   *conn
}

func newServer(opts Options) *server {
	clk := clock.NewFake()
	f := NewFactory(NewStore(), opts)
	tr := transporttest.NewStringTransport(clk)
	c := f.BuildProtocol(transporttest.DefaultRemoteAddr).(*conn)
	transporttest.Connect(c, tr)
	return &server{clk: clk, f: f, tr: tr, c: c}
}

// send feeds in at chunk size (0: at once) and returns and clears the output.
func (s *server) send(in string, chunk int) string {
	transporttest.FeedChunks(s.c, []byte(in), chunk)
	out := s.tr.String()
	s.tr.Clear()
	return out
}

// step is one exchange of a script: input, the exact expected output, then
// how far to move the clock.
type step struct {
	in, want string
	advance  time.Duration
}

// runScript plays steps against a fresh server at every chunk size from 1 to
// the longest input, and whole, and checks every output. It returns the last
// server (whole-input run) for further checks.
func runScript(t *testing.T, opts Options, steps []step) *server {
	t.Helper()
	longest := 0
	for _, st := range steps {
		longest = max(longest, len(st.in))
	}
	var s *server
	for size := 1; size <= longest+1; size++ {
		chunk := size
		if size > longest {
			chunk = 0 // all at once
		}
		s = newServer(opts)
		for i, st := range steps {
			got := s.send(st.in, chunk)
			require.Equal(t, st.want, got, "step %d (%q) at chunk size %d", i, st.in, chunk)
			if st.advance > 0 {
				s.clk.Advance(st.advance)
			}
		}
	}
	return s
}

// mb encodes a multibulk request.
func mb(args ...string) string {
	var b strings.Builder
	b.WriteString("*")
	b.WriteString(itoa(len(args)))
	b.WriteString("\r\n")
	for _, a := range args {
		b.WriteString("$")
		b.WriteString(itoa(len(a)))
		b.WriteString("\r\n")
		b.WriteString(a)
		b.WriteString("\r\n")
	}
	return b.String()
}

func itoa(n int) string { return string(formatInt(nil, int64(n))) }

func bulk(s string) string { return "$" + itoa(len(s)) + "\r\n" + s + "\r\n" }

func arr(items ...string) string { return "*" + itoa(len(items)) + "\r\n" + strings.Join(items, "") }

const (
	ok   = "+OK\r\n"
	null = "$-1\r\n"
)

func num(n int) string { return ":" + itoa(n) + "\r\n" }

func TestCommands(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
	}{
		{"ping", []step{
			{in: mb("PING"), want: "+PONG\r\n"},
			{in: mb("ping", "hi there"), want: bulk("hi there")},
			{in: mb("PING", "a", "b"), want: "-ERR wrong number of arguments for 'ping' command\r\n"},
			{in: "PING\r\n", want: "+PONG\r\n"},
			{in: "ping\n", want: "+PONG\r\n"},
		}},
		{"echo", []step{
			{in: mb("ECHO", "x\r\ny"), want: bulk("x\r\ny")},
			{in: mb("ECHO", ""), want: bulk("")},
			{in: mb("ECHO"), want: "-ERR wrong number of arguments for 'echo' command\r\n"},
		}},
		{"set get", []step{
			{in: mb("GET", "k"), want: null},
			{in: mb("SET", "k", "v"), want: ok},
			{in: mb("GET", "k"), want: bulk("v")},
			{in: mb("SET", "k", "a much longer value than before"), want: ok},
			{in: mb("GET", "k"), want: bulk("a much longer value than before")},
			{in: mb("SET", "k", ""), want: ok},
			{in: mb("GET", "k"), want: bulk("")},
			{in: mb("SET", "bin", "\x00\r\n\xff"), want: ok},
			{in: mb("GET", "bin"), want: bulk("\x00\r\n\xff")},
			{in: mb("SET", "k"), want: "-ERR wrong number of arguments for 'set' command\r\n"},
			{in: mb("GET", "k", "x"), want: "-ERR wrong number of arguments for 'get' command\r\n"},
		}},
		{"set nx xx get", []step{
			{in: mb("SET", "k", "1", "XX"), want: null},
			{in: mb("SET", "k", "1", "nx"), want: ok},
			{in: mb("SET", "k", "2", "NX"), want: null},
			{in: mb("SET", "k", "3", "XX"), want: ok},
			{in: mb("SET", "k", "4", "GET"), want: bulk("3")},
			{in: mb("SET", "k", "5", "NX", "GET"), want: bulk("4")},
			{in: mb("GET", "k"), want: bulk("4")},
			{in: mb("SET", "n", "1", "XX", "GET"), want: null},
			{in: mb("SET", "n", "1", "GET"), want: null},
			{in: mb("SET", "k", "1", "NX", "XX"), want: "-ERR syntax error\r\n"},
			{in: mb("SET", "k", "1", "bogus"), want: "-ERR syntax error\r\n"},
			{in: mb("SET", "k", "1", "EX"), want: "-ERR syntax error\r\n"},
			{in: mb("SET", "k", "1", "EX", "1", "PX", "1"), want: "-ERR syntax error\r\n"},
			{in: mb("SET", "k", "1", "EX", "1", "KEEPTTL"), want: "-ERR syntax error\r\n"},
			{in: mb("SET", "k", "1", "EX", "x"), want: "-ERR value is not an integer or out of range\r\n"},
			{in: mb("SET", "k", "1", "EX", "0"), want: "-ERR invalid expire time in 'set' command\r\n"},
			{in: mb("SET", "k", "1", "PX", "-5"), want: "-ERR invalid expire time in 'set' command\r\n"},
			{in: mb("SET", "k", "1", "EX", "9223372036854775807"), want: "-ERR invalid expire time in 'set' command\r\n"},
			{in: mb("GET", "k"), want: bulk("4")},
		}},
		{"set expiry", []step{
			{in: mb("SET", "k", "v", "EX", "10"), want: ok},
			{in: mb("TTL", "k") + mb("PTTL", "k"), want: num(10) + num(10000), advance: 9500 * time.Millisecond},
			{in: mb("TTL", "k") + mb("PTTL", "k"), want: num(1) + num(500), advance: 500 * time.Millisecond},
			{in: mb("GET", "k") + mb("PTTL", "k"), want: bulk("v") + num(0), advance: time.Millisecond},
			{in: mb("GET", "k") + mb("TTL", "k") + mb("EXISTS", "k"), want: null + num(-2) + num(0)},
			{in: mb("SET", "p", "v", "px", "100"), want: ok},
			{in: mb("SET", "p", "w", "KEEPTTL") + mb("PTTL", "p"), want: ok + num(100)},
			{in: mb("SET", "p", "x") + mb("PTTL", "p"), want: ok + num(-1), advance: time.Hour},
			{in: mb("GET", "p"), want: bulk("x")},
			{in: mb("SET", "a", "v", "EXAT", "1") + mb("EXISTS", "a"), want: ok + num(0)},
			// The clock has moved 1h10.001s by now.
			{in: mb("SET", "a", "v", "PXAT", itoa(int(clock.FakeEpoch.Add(time.Hour+15*time.Second+time.Millisecond).UnixMilli()))) + mb("TTL", "a"), want: ok + num(5)},
			{in: mb("SET", "a", "v", "EXAT", itoa(int(clock.FakeEpoch.Add(time.Hour+20*time.Second).Unix()))) + mb("PTTL", "a"), want: ok + num(9999)},
		}},
		{"setnx setex psetex getset getdel", []step{
			{in: mb("SETNX", "k", "1"), want: num(1)},
			{in: mb("SETNX", "k", "2"), want: num(0)},
			{in: mb("GETSET", "k", "3"), want: bulk("1")},
			{in: mb("GETSET", "new", "3"), want: null},
			{in: mb("GETDEL", "k") + mb("GETDEL", "k"), want: bulk("3") + null},
			{in: mb("SETEX", "e", "5", "v") + mb("TTL", "e"), want: ok + num(5)},
			{in: mb("PSETEX", "e", "1500", "v") + mb("PTTL", "e"), want: ok + num(1500)},
			{in: mb("SETEX", "e", "0", "v"), want: "-ERR invalid expire time in 'setex' command\r\n"},
			{in: mb("PSETEX", "e", "x", "v"), want: "-ERR value is not an integer or out of range\r\n"},
			{in: mb("GETSET", "e", "w") + mb("TTL", "e"), want: bulk("v") + num(-1)},
		}},
		{"append strlen type", []step{
			{in: mb("APPEND", "k", "ab") + mb("APPEND", "k", "cd") + mb("GET", "k"), want: num(2) + num(4) + bulk("abcd")},
			{in: mb("STRLEN", "k") + mb("STRLEN", "none"), want: num(4) + num(0)},
			{in: mb("TYPE", "k") + mb("TYPE", "none"), want: "+string\r\n+none\r\n"},
		}},
		{"del exists", []step{
			{in: mb("MSET", "a", "1", "b", "2", "c", "3"), want: ok},
			{in: mb("EXISTS", "a", "a", "b", "z"), want: num(3)},
			{in: mb("DEL", "a", "a", "z", "b"), want: num(2)},
			{in: mb("UNLINK", "c"), want: num(1)},
			{in: mb("EXISTS", "a", "b", "c"), want: num(0)},
			{in: mb("DEL"), want: "-ERR wrong number of arguments for 'del' command\r\n"},
			{in: mb("EXISTS"), want: "-ERR wrong number of arguments for 'exists' command\r\n"},
		}},
		{"incr decr", []step{
			{in: mb("INCR", "n") + mb("INCR", "n") + mb("DECR", "n") + mb("DECR", "m"), want: num(1) + num(2) + num(1) + num(-1)},
			{in: mb("INCRBY", "n", "100") + mb("DECRBY", "n", "-10") + mb("GET", "n"), want: num(101) + num(111) + bulk("111")},
			{in: mb("INCRBY", "n", "x"), want: "-ERR value is not an integer or out of range\r\n"},
			{in: mb("SET", "s", "abc") + mb("INCR", "s"), want: ok + "-ERR value is not an integer or out of range\r\n"},
			{in: mb("SET", "s", "01") + mb("INCR", "s"), want: ok + "-ERR value is not an integer or out of range\r\n"},
			{in: mb("SET", "s", " 1") + mb("INCR", "s"), want: ok + "-ERR value is not an integer or out of range\r\n"},
			{in: mb("SET", "big", "9223372036854775807") + mb("INCR", "big"), want: ok + "-ERR increment or decrement would overflow\r\n"},
			{in: mb("SET", "small", "-9223372036854775808") + mb("DECR", "small"), want: ok + "-ERR increment or decrement would overflow\r\n"},
			{in: mb("DECRBY", "n", "-9223372036854775808"), want: "-ERR decrement would overflow\r\n"},
			{in: mb("INCRBY", "n", "9223372036854775808"), want: "-ERR value is not an integer or out of range\r\n"},
			{in: mb("SET", "t", "5", "EX", "100") + mb("INCR", "t") + mb("TTL", "t"), want: ok + num(6) + num(100)},
			{in: mb("INCR"), want: "-ERR wrong number of arguments for 'incr' command\r\n"},
		}},
		{"mset mget msetnx", []step{
			{in: mb("MSET", "a", "1", "b", "2"), want: ok},
			{in: mb("MGET", "a", "x", "b"), want: arr(bulk("1"), null, bulk("2"))},
			{in: mb("MSET", "a", "1", "b"), want: "-ERR wrong number of arguments for 'mset' command\r\n"},
			{in: mb("MSET", "a"), want: "-ERR wrong number of arguments for 'mset' command\r\n"},
			{in: mb("MSETNX", "a", "9", "c", "3"), want: num(0)},
			{in: mb("MSETNX", "c", "3", "d", "4"), want: num(1)},
			{in: mb("MGET", "a", "c", "d"), want: arr(bulk("1"), bulk("3"), bulk("4"))},
			{in: mb("MGET"), want: "-ERR wrong number of arguments for 'mget' command\r\n"},
		}},
		{"expire ttl persist", []step{
			{in: mb("EXPIRE", "k", "10"), want: num(0)},
			{in: mb("SET", "k", "v") + mb("TTL", "k"), want: ok + num(-1)},
			{in: mb("EXPIRE", "k", "10") + mb("TTL", "k"), want: num(1) + num(10)},
			{in: mb("PEXPIRE", "k", "2500") + mb("PTTL", "k") + mb("TTL", "k"), want: num(1) + num(2500) + num(3)},
			{in: mb("EXPIRE", "k", "100", "NX") + mb("EXPIRE", "k", "100", "XX"), want: num(0) + num(1)},
			{in: mb("EXPIRE", "k", "50", "GT") + mb("EXPIRE", "k", "200", "GT") + mb("TTL", "k"), want: num(0) + num(1) + num(200)},
			{in: mb("EXPIRE", "k", "300", "LT") + mb("EXPIRE", "k", "20", "LT") + mb("TTL", "k"), want: num(0) + num(1) + num(20)},
			{in: mb("PERSIST", "k") + mb("PERSIST", "k") + mb("TTL", "k"), want: num(1) + num(0) + num(-1)},
			{in: mb("EXPIRE", "k", "5", "GT") + mb("EXPIRE", "k", "5", "XX") + mb("EXPIRE", "k", "5", "LT"), want: num(0) + num(0) + num(1)},
			{in: mb("EXPIRE", "k", "5", "NX", "XX"), want: "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"},
			{in: mb("EXPIRE", "k", "5", "GT", "LT"), want: "-ERR GT and LT options at the same time are not compatible\r\n"},
			{in: mb("EXPIRE", "k", "5", "FOO"), want: "-ERR Unsupported option FOO\r\n"},
			{in: mb("EXPIRE", "k", "x"), want: "-ERR value is not an integer or out of range\r\n"},
			{in: mb("EXPIRE", "k", "9223372036854775807"), want: "-ERR invalid expire time in 'expire' command\r\n"},
			{in: mb("PEXPIRE", "k", "9223372036854775807"), want: "-ERR invalid expire time in 'pexpire' command\r\n"},
			{in: mb("TTL", "k"), want: num(5), advance: 5 * time.Second},
			{in: mb("PTTL", "k"), want: num(0), advance: time.Millisecond},
			{in: mb("PTTL", "k") + mb("PERSIST", "k"), want: num(-2) + num(0)},
			{in: mb("SET", "k", "v") + mb("EXPIRE", "k", "0") + mb("EXISTS", "k"), want: ok + num(1) + num(0)},
			{in: mb("SET", "k", "v") + mb("PEXPIRE", "k", "-1") + mb("EXISTS", "k"), want: ok + num(1) + num(0)},
			{in: mb("SET", "k", "v") + mb("EXPIREAT", "k", "1") + mb("EXISTS", "k"), want: ok + num(1) + num(0)},
			{in: mb("SET", "k", "v") + mb("PEXPIREAT", "k", itoa(int(clock.FakeEpoch.Add(5*time.Second+time.Millisecond+time.Minute).UnixMilli()))) + mb("TTL", "k"), want: ok + num(1) + num(60)},
			{in: mb("TTL"), want: "-ERR wrong number of arguments for 'ttl' command\r\n"},
			{in: mb("EXPIRE", "k"), want: "-ERR wrong number of arguments for 'expire' command\r\n"},
		}},
		{"dbsize flush select", []step{
			{in: mb("DBSIZE"), want: num(0)},
			{in: mb("MSET", "a", "1", "b", "2") + mb("DBSIZE"), want: ok + num(2)},
			{in: mb("FLUSHALL") + mb("DBSIZE"), want: ok + num(0)},
			{in: mb("SET", "a", "1") + mb("FLUSHDB", "ASYNC") + mb("DBSIZE"), want: ok + ok + num(0)},
			{in: mb("FLUSHALL", "now"), want: "-ERR syntax error\r\n"},
			{in: mb("SELECT", "0"), want: ok},
			{in: mb("SELECT", "1"), want: "-ERR DB index is out of range\r\n"},
			{in: mb("SELECT", "x"), want: "-ERR value is not an integer or out of range\r\n"},
			{in: mb("DBSIZE", "x"), want: "-ERR wrong number of arguments for 'dbsize' command\r\n"},
		}},
		{"keys", []step{
			{in: mb("MSET", "user:1", "a", "user:2", "b", "other", "c"), want: ok},
			{in: mb("KEYS", "other"), want: arr(bulk("other"))},
			{in: mb("KEYS", "user:[1]"), want: arr(bulk("user:1"))},
			{in: mb("KEYS", "nomatch*"), want: "*0\r\n"},
		}},
		{"client hello reset", []step{
			{in: mb("CLIENT", "SETNAME", "bench") + mb("CLIENT", "GETNAME"), want: ok + bulk("bench")},
			{in: mb("CLIENT", "SETNAME", "a b"), want: "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"},
			{in: mb("CLIENT", "ID"), want: num(1)},
			{in: mb("CLIENT", "SETINFO", "LIB-NAME", "x"), want: ok},
			{in: mb("CLIENT", "KILL"), want: "-ERR unknown subcommand 'KILL'. Try CLIENT HELP.\r\n"},
			{in: mb("CLIENT"), want: "-ERR wrong number of arguments for 'client' command\r\n"},
			{in: mb("HELLO", "3"), want: "-NOPROTO unsupported protocol version\r\n"},
			{in: mb("HELLO", "x"), want: "-ERR Protocol version is not an integer or out of range\r\n"},
			{in: mb("RESET") + mb("CLIENT", "GETNAME"), want: "+RESET\r\n" + null},
		}},
		{"config", []step{
			{in: mb("CONFIG", "GET", "save"), want: arr(bulk("save"), bulk(""))},
			{in: mb("CONFIG", "GET", "appendonly"), want: arr(bulk("appendonly"), bulk("no"))},
			{in: mb("config", "get", "SAVE", "appendonly"), want: arr(bulk("appendonly"), bulk("no"), bulk("save"), bulk(""))},
			{in: mb("CONFIG", "GET", "nosuch"), want: "*0\r\n"},
			{in: mb("CONFIG", "GET", "app*"), want: arr(bulk("appendonly"), bulk("no"))},
			{in: mb("CONFIG", "GET"), want: "-ERR wrong number of arguments for 'config|get' command\r\n"},
			{in: mb("CONFIG", "SET", "save", ""), want: "-ERR Unknown option or number of arguments for CONFIG SET - 'save'\r\n"},
			{in: mb("CONFIG", "RESETSTAT"), want: ok},
			{in: mb("CONFIG", "FOO"), want: "-ERR unknown subcommand 'FOO'. Try CONFIG HELP.\r\n"},
		}},
		{"command", []step{
			{in: mb("COMMAND", "COUNT"), want: num(len(commandNames))},
			{in: mb("COMMAND", "INFO", "get", "nosuch"), want: arr(arr(bulk("get"), num(2), arr("+readonly\r\n", "+fast\r\n"), num(1), num(1), num(1), "*0\r\n", "*0\r\n", "*0\r\n", "*0\r\n"), null)},
			{in: mb("COMMAND", "DOCS", "ping"), want: arr(bulk("ping"), arr(bulk("summary"), bulk("Returns the server's liveliness response."), bulk("since"), bulk("1.0.0"), bulk("group"), bulk("connection")))},
			{in: mb("COMMAND", "NOPE"), want: "-ERR unknown subcommand 'NOPE'. Try COMMAND HELP.\r\n"},
		}},
		{"unknown command", []step{
			{in: mb("FOO"), want: "-ERR unknown command 'FOO', with args beginning with: \r\n"},
			{in: mb("foo", "a", "b c"), want: "-ERR unknown command 'foo', with args beginning with: 'a' 'b c' \r\n"},
			{in: mb("f\r\no", "x\ny"), want: "-ERR unknown command 'f  o', with args beginning with: 'x y' \r\n"},
			{in: mb(strings.Repeat("x", 200)), want: "-ERR unknown command '" + strings.Repeat("x", 128) + "', with args beginning with: \r\n"},
			{in: mb("foo", strings.Repeat("a", 100), strings.Repeat("b", 100), "c"), want: "-ERR unknown command 'foo', with args beginning with: '" + strings.Repeat("a", 100) + "' '" + strings.Repeat("b", 25) + "' \r\n"},
			{in: "bar baz\r\n", want: "-ERR unknown command 'bar', with args beginning with: 'baz' \r\n"},
		}},
		{"inline", []step{
			{in: "SET k \"hello world\"\r\nGET k\r\n", want: ok + bulk("hello world")},
			{in: "SET k 'it''s'\r\n", want: "-ERR Protocol error: unbalanced quotes in request\r\n"},
		}},
		{"inline quoting", []step{
			{in: "ECHO \"a\\x41\\n\\\"\"\r\n", want: bulk("aA\n\"")},
			{in: "ECHO 'it\\'s'\r\n", want: bulk("it's")},
			{in: "ECHO \"\"\r\n", want: bulk("")},
			{in: "  \t ECHO   x  \r\n", want: bulk("x")},
			{in: "\r\n\n   \r\n", want: ""},
			{in: "ECHO a\"b c\"d\r\n", want: "-ERR Protocol error: unbalanced quotes in request\r\n"},
		}},
		{"empty multibulk", []step{
			{in: "*0\r\n*-1\r\n" + mb("PING"), want: "+PONG\r\n"},
		}},
		{"quit", []step{
			{in: mb("PING") + mb("QUIT") + mb("PING"), want: "+PONG\r\n" + ok},
			{in: mb("PING"), want: ""},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runScript(t, Options{}, tc.steps) })
	}
}
