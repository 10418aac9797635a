package basic_test

import (
	"testing"

	"github.com/gyre-io/gyre/fuzz/internal/split"
	framers "github.com/gyre-io/gyre/protocols/basic"
)

// FuzzSplits checks chunking invariance under arbitrary cuts (the fuzzer
// chooses every piece size, not one fixed size): the line, netstring and
// 1/2/4-byte length-prefixed receivers give the same frames, the same
// leftover and the same verdict however the input is cut.
func FuzzSplits(f *testing.F) {
	f.Add([]byte("hello\r\nworld\r\n5:hello,\x00\x02hi"), []byte{0, 1, 2, 3}, uint8(0))
	f.Add([]byte("3:abc,0:,12:hello world!,"), []byte{1, 63, 0}, uint8(4))
	f.Add([]byte{0, 0, 0, 2, 'h', 'i', 0, 0, 0, 1, 'x'}, []byte{2, 0}, uint8(3))
	f.Fuzz(func(t *testing.T, data, cuts []byte, maxLen uint8) {
		type result struct {
			frames []string
			left   string
			err    bool
		}
		lines := func(c []byte) result {
			var r result
			lr := &framers.LineReceiver{MaxLength: 1 << 20}
			lr.OnLine = func(l []byte) { r.frames = append(r.frames, string(l)) }
			connect(lr)
			split.Feed(lr, data, c)
			r.left = string(lr.ClearLineBuffer())
			return r
		}
		netstrings := func(c []byte) result {
			var r result
			ns := &framers.NetstringReceiver{MaxLength: int(maxLen)}
			ns.OnString = func(s []byte) { r.frames = append(r.frames, string(s)) }
			connect(ns)
			split.Feed(ns, data, c)
			r.err = ns.Err() != nil
			return r
		}
		intN := func(pl int) func(c []byte) result {
			return func(c []byte) result {
				var r result
				in := &framers.IntNReceiver{PrefixLength: pl, MaxLength: int(maxLen)}
				in.OnString = func(s []byte) { r.frames = append(r.frames, string(s)) }
				in.OnLengthLimitExceeded = func(int) { r.err = true }
				connect(in)
				split.Feed(in, data, c)
				return r
			}
		}
		for name, run := range map[string]func([]byte) result{
			"line": lines, "netstring": netstrings, "int8": intN(1), "int16": intN(2), "int32": intN(4),
		} {
			a, b := run(nil), run(cuts)
			if !equal(a.frames, b.frames) || a.left != b.left || a.err != b.err {
				t.Fatalf("%s: cuts %v changed the result:\nwhole %q left %q err %v\ncut   %q left %q err %v",
					name, split.Sizes(len(data), cuts), a.frames, a.left, a.err, b.frames, b.left, b.err)
			}
		}
	})
}
