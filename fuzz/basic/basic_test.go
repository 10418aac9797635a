package basic_test

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"testing"

	framers "github.com/gyre-io/gyre/protocols/basic"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// feed delivers data to p in chunks of size (0: all at once), each a fresh
// copy poisoned after use, so a framer that keeps a borrowed slice is caught.
func feed(p transports.Protocol, data []byte, size int) {
	transporttest.FeedChunks(p, data, size)
}

func connect(p transports.Protocol) *transporttest.StringTransport {
	tr := transporttest.NewStringTransport(nil)
	transporttest.Connect(p, tr)
	return tr
}

var delimiters = [][]byte{[]byte("\r\n"), []byte("\n"), []byte("aab"), []byte("--X--")}

// FuzzLineReceiver checks that, whatever the input, chunking, delimiter and
// limit, the lines (delimiters put back), the bytes handed to the too-long hook
// and what is left buffered rebuild the input exactly, in order; that no line
// is longer than MaxLength or holds a delimiter; and that, when no line is too
// long, every chunking yields the same lines.
func FuzzLineReceiver(f *testing.F) {
	f.Add([]byte("hello\r\nworld\r\n"), uint8(1), uint8(0), uint8(0))
	f.Add([]byte("aaab\naab\nxaabaab"), uint8(3), uint8(2), uint8(4))
	f.Fuzz(func(t *testing.T, data []byte, chunk, delimSel, maxLen uint8) {
		delim := delimiters[int(delimSel)%len(delimiters)]
		limit := int(maxLen) // 0: the default
		run := func(size int) (lines []string, rebuilt []byte, tooLong bool) {
			r := &framers.LineReceiver{Delimiter: delim, MaxLength: limit}
			r.OnLine = func(l []byte) {
				if limit > 0 && len(l) > limit {
					t.Fatalf("line of %d bytes over MaxLength %d", len(l), limit)
				}
				if bytes.Contains(l, delim) {
					t.Fatalf("line %q holds the delimiter", l)
				}
				lines = append(lines, string(l))
				rebuilt = append(append(rebuilt, l...), delim...)
			}
			r.OnLineTooLong = func(l []byte) {
				tooLong = true
				rebuilt = append(rebuilt, l...)
			}
			connect(r)
			feed(r, data, size)
			rebuilt = append(rebuilt, r.ClearLineBuffer()...)
			return lines, rebuilt, tooLong
		}
		whole, rebuilt, tooLong := run(0)
		if !bytes.Equal(rebuilt, data) {
			t.Fatalf("whole: rebuilt %q from %q", rebuilt, data)
		}
		lines, rebuilt, tooLong2 := run(int(chunk%16) + 1)
		if !bytes.Equal(rebuilt, data) {
			t.Fatalf("chunk %d: rebuilt %q from %q", chunk%16+1, rebuilt, data)
		}
		if !tooLong && !tooLong2 && !equal(whole, lines) {
			t.Fatalf("chunking changed the lines: %q vs %q", whole, lines)
		}
	})
}

// FuzzLineReceiverRawMode mixes line and raw mode: the line "RAW" switches to
// raw mode, and raw data hands all but its first byte back with SetLineMode.
// Lines, raw bytes used and the leftover must rebuild the input.
func FuzzLineReceiverRawMode(f *testing.F) {
	f.Add([]byte("a\r\nRAW\r\nxyz\r\nRAW\r\n\r\n"), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		for _, size := range []int{0, int(chunk%8) + 1} {
			var rebuilt []byte
			r := &framers.LineReceiver{MaxLength: 1 << 20}
			r.OnLine = func(l []byte) {
				rebuilt = append(append(rebuilt, l...), "\r\n"...)
				if string(l) == "RAW" {
					r.SetRawMode()
				}
			}
			r.OnRawData = func(d []byte) {
				rebuilt = append(rebuilt, d[:1]...)
				r.SetLineMode(d[1:])
			}
			connect(r)
			feed(r, data, size)
			rebuilt = append(rebuilt, r.ClearLineBuffer()...)
			if !bytes.Equal(rebuilt, data) {
				t.Fatalf("size %d: rebuilt %q from %q", size, rebuilt, data)
			}
		}
	})
}

// FuzzNetstring checks that the strings received, re-encoded, are a prefix of
// the input — all of it but an incomplete tail when the peer is not broken —
// and that chunking changes neither the strings nor the verdict.
func FuzzNetstring(f *testing.F) {
	f.Add([]byte("5:hello,0:,"), uint8(1), uint8(0))
	f.Add([]byte("3:abc,x"), uint8(2), uint8(0))
	f.Add([]byte("12:hello world!,1"), uint8(3), uint8(5))
	f.Fuzz(func(t *testing.T, data []byte, chunk, maxLen uint8) {
		run := func(size int) ([]string, error) {
			var got []string
			r := &framers.NetstringReceiver{MaxLength: int(maxLen)}
			var enc []byte
			r.OnString = func(s []byte) {
				got = append(got, string(s))
				enc = strconv.AppendInt(enc, int64(len(s)), 10)
				enc = append(append(append(enc, ':'), s...), ',')
			}
			tr := connect(r)
			feed(r, data, size)
			if !bytes.HasPrefix(data, enc) {
				t.Fatalf("re-encoded %q is not a prefix of %q", enc, data)
			}
			if (r.Err() != nil) != tr.Disconnecting() {
				t.Fatalf("err %v but disconnecting %v", r.Err(), tr.Disconnecting())
			}
			return got, r.Err()
		}
		a, errA := run(0)
		b, errB := run(int(chunk%16) + 1)
		if !equal(a, b) || (errA == nil) != (errB == nil) {
			t.Fatalf("chunking changed the result: %q/%v vs %q/%v", a, errA, b, errB)
		}
	})
}

// FuzzIntN checks every prefix size: re-encoded strings plus the buffered
// tail rebuild the input unless the length limit was hit, and chunking does
// not change the strings.
func FuzzIntN(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 'h', 'i', 0, 0}, uint8(1), uint16(0))
	f.Add([]byte{3, 'a', 'b', 'c', 200}, uint8(2), uint16(100))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, maxLen uint16) {
		for _, pl := range []int{1, 2, 4} {
			run := func(size int) ([]string, bool) {
				var got []string
				var enc []byte
				exceeded := false
				r := &framers.IntNReceiver{PrefixLength: pl, MaxLength: int(maxLen)}
				r.OnString = func(s []byte) {
					got = append(got, string(s))
					var p [4]byte
					binary.BigEndian.PutUint32(p[:], uint32(len(s)))
					enc = append(append(enc, p[4-pl:]...), s...)
				}
				r.OnLengthLimitExceeded = func(n int) {
					if exceeded {
						t.Fatal("limit reported twice")
					}
					exceeded = true
				}
				connect(r)
				feed(r, data, size)
				if !bytes.HasPrefix(data, enc) {
					t.Fatalf("prefix %d: re-encoded %q is not a prefix of %q", pl, enc, data)
				}
				if !exceeded && len(data)-len(enc) >= pl {
					// A whole prefix is left: the string it announces must be
					// incomplete.
					var p [4]byte
					copy(p[4-pl:], data[len(enc):])
					if n := int(binary.BigEndian.Uint32(p[:])); len(data)-len(enc)-pl >= n {
						t.Fatalf("prefix %d: complete string of %d left unparsed", pl, n)
					}
				}
				return got, exceeded
			}
			a, ea := run(0)
			b, eb := run(int(chunk%16) + 1)
			if !equal(a, b) || ea != eb {
				t.Fatalf("prefix %d: chunking changed the result: %q/%v vs %q/%v", pl, a, ea, b, eb)
			}
		}
	})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
