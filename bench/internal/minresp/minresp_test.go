package minresp

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func run(t *testing.T, s *Store, in string) string {
	t.Helper()
	buf := []byte(in)
	var out []byte
	var args [][]byte
	for len(buf) > 0 {
		var n int
		var err error
		args, n, err = Parse(buf, args)
		require.NoError(t, err)
		require.NotZero(t, n, "incomplete: %q", buf)
		out, _ = s.Exec(args, out)
		buf = buf[n:]
	}
	return string(out)
}

func TestCommands(t *testing.T) {
	s := NewStore()
	require.Equal(t, "+PONG\r\n", run(t, s, "*1\r\n$4\r\nPING\r\n"))
	require.Equal(t, "+PONG\r\n", run(t, s, "ping\r\n"))
	require.Equal(t, "+OK\r\n$3\r\nbar\r\n$-1\r\n",
		run(t, s, "*3\r\n$3\r\nSET\r\n$3\r\nfoo\r\n$3\r\nbar\r\n*2\r\n$3\r\nget\r\n$3\r\nfoo\r\n*2\r\n$3\r\nGET\r\n$1\r\nx\r\n"))
	require.Equal(t, ":1\r\n:2\r\n", run(t, s, "INCR n\r\nINCR n\r\n"))
	require.Equal(t, "-ERR value is not an integer or out of range\r\n", run(t, s, "INCR foo\r\n"))
	require.Equal(t, "+OK\r\n*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n", run(t, s, "MSET a 1 b 2\r\nMGET a b c\r\n"))
	require.Equal(t, ":2\r\n:0\r\n", run(t, s, "DEL a b\r\nEXISTS a\r\n"))
	require.Contains(t, run(t, s, "FOO\r\n"), "-ERR unknown command")
	require.Contains(t, run(t, s, "SET x\r\n"), "wrong number")
}

func TestParseIncompleteAndErrors(t *testing.T) {
	full := "*3\r\n$3\r\nSET\r\n$3\r\nfoo\r\n$3\r\nbar\r\n"
	for i := 0; i < len(full); i++ {
		_, n, err := Parse([]byte(full[:i]), nil)
		require.NoError(t, err, "prefix %d", i)
		require.Zero(t, n, "prefix %d", i)
	}
	args, n, err := Parse([]byte(full), nil)
	require.NoError(t, err)
	require.Equal(t, len(full), n)
	require.Len(t, args, 3)
	for _, bad := range []string{"*x\r\n", "*1\r\n+PING\r\n", "*1\r\n$4\r\nPINGxx", "*-5\r\n"} {
		_, _, err := Parse([]byte(bad), nil)
		require.ErrorIs(t, err, ErrProtocol, "%q", bad)
	}
}

func BenchmarkParseExecPing(b *testing.B) {
	b.ReportAllocs()
	s := NewStore()
	in := []byte("*1\r\n$4\r\nPING\r\n")
	var args [][]byte
	out := make([]byte, 0, 64)
	for i := 0; i < b.N; i++ {
		args, _, _ = Parse(in, args)
		out, _ = s.Exec(args, out[:0])
	}
}
