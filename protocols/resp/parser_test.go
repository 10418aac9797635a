package resp

import (
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseInt(t *testing.T) {
	good := []int64{0, 1, -1, 9, 10, 123456789, math.MaxInt64, math.MinInt64, -10}
	for _, v := range good {
		got, ok := parseInt([]byte(strconv.FormatInt(v, 10)))
		require.True(t, ok, v)
		require.Equal(t, v, got)
	}
	for _, s := range []string{"", "-", "+1", "01", "-0", "00", " 1", "1 ", "1x", "9223372036854775808",
		"-9223372036854775809", "99999999999999999999", "18446744073709551616", "1.5"} {
		_, ok := parseInt([]byte(s))
		require.False(t, ok, "%q", s)
	}
}

func TestSplitInline(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", nil, true},
		{"   ", nil, true},
		{"a", []string{"a"}, true},
		{" set  k\tv ", []string{"set", "k", "v"}, true},
		{`"a b" c`, []string{"a b", "c"}, true},
		{`"" ''`, []string{"", ""}, true},
		{`"\x41\x4a\x7a\n\r\t\b\a\\\"\q"`, []string{"AJz\n\r\t\b\a\\\"q"}, true},
		{`"\x4"`, []string{"x4"}, true},
		{`'a\'b' 'c\d'`, []string{"a'b", `c\d`}, true},
		{`a"b c"d`, nil, false},
		{`"abc`, nil, false},
		{`'abc`, nil, false},
		{`"abc\`, nil, false},
		{`'a'b`, nil, false},
		{`x"y z"`, []string{"xy z"}, true},
	}
	for _, tc := range cases {
		var scratch []byte
		argv, ok := splitInline([]byte(tc.in), nil, &scratch)
		require.Equal(t, tc.ok, ok, "%q", tc.in)
		if !ok {
			continue
		}
		got := make([]string, len(argv))
		for i, a := range argv {
			got[i] = string(a)
		}
		if tc.want == nil {
			tc.want = []string{}
		}
		require.Equal(t, tc.want, got, "%q", tc.in)
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		pat, s string
		want   bool
	}{
		{"*", "", true},
		{"*", "abc", true},
		{"a*", "abc", true},
		{"*c", "abc", true},
		{"a*c", "abbbc", true},
		{"a*c", "abbbd", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"h[ae]llo", "hello", true},
		{"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false},
		{"h[a-c]llo", "hbllo", true},
		{"h[c-a]llo", "hbllo", true},
		{"h[a-c]llo", "hdllo", false},
		{`h\*llo`, "h*llo", true},
		{`h\*llo`, "hello", false},
		{"[", "x", false},
		{"[abc", "b", true},
		{"*a*b*c*", "xxaxxbxxcxx", true},
		{"*a*b*c*", "xxaxxcxxbxx", false},
		{"**", "x", true},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, globMatch([]byte(tc.pat), tc.s), "%q ~ %q", tc.pat, tc.s)
	}
	require.True(t, globMatchFold([]byte("APPEND*"), "appendonly"))
	require.True(t, globMatchFold([]byte("[A-Z]ave"), "save"))
	require.False(t, globMatch([]byte("APPEND*"), "appendonly"))
}

func TestLookupCommand(t *testing.T) {
	for _, name := range commandNames {
		require.Same(t, commandTable[name], lookupCommand([]byte(name)))
	}
	require.Equal(t, "get", lookupCommand([]byte("GeT")).name)
	for _, s := range []string{"", "x", "gett", "1get", "\xffget", "verylongcommandnamethatisnt"} {
		require.Nil(t, lookupCommand([]byte(s)), "%q", s)
	}
}
