package basic_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/protocols/basic"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// eachChunking runs f for every chunk size from 1 to len(data), with a fresh
// transport each time; f returns what it recorded.
func eachChunking(t *testing.T, data []byte, build func() transports.Protocol, check func(t *testing.T, size int, p transports.Protocol, tr *transporttest.StringTransport)) {
	t.Helper()
	for size := 1; size <= max(len(data), 1); size++ {
		p := build()
		tr := transporttest.NewStringTransport(nil)
		transporttest.Connect(p, tr)
		transporttest.FeedChunks(p, data, size)
		check(t, size, p, tr)
	}
}

func TestLineReceiverLines(t *testing.T) {
	cases := []struct {
		name  string
		delim string
		input string
		want  []string
	}{
		{"crlf", "", "hello\r\nworld\r\n\r\nlast\r\npartial", []string{"hello", "world", "", "last"}},
		{"lf", "\n", "a\nbb\n\nccc\n", []string{"a", "bb", "", "ccc"}},
		{"cr-alone-is-data", "", "a\rb\r\nc\n\r\n", []string{"a\rb", "c\n"}},
		{"overlapping", "aab", "xaaab" + "aab" + "aaaab", []string{"xa", "", "aa"}},
		{"long-delim", "--END--", "one--END--two-END---END--", []string{"one", "two-END-"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			eachChunking(t, []byte(tc.input), func() transports.Protocol {
				got = nil
				r := &basic.LineReceiver{OnLine: func(l []byte) { got = append(got, string(l)) }}
				if tc.delim != "" {
					r.Delimiter = []byte(tc.delim)
				}
				return r
			}, func(t *testing.T, size int, p transports.Protocol, tr *transporttest.StringTransport) {
				require.Equal(t, tc.want, got, "chunk size %d", size)
				require.False(t, tr.Disconnecting())
			})
		})
	}
}

func TestLineOnlyReceiverLines(t *testing.T) {
	in := "alpha\r\nbeta\r\n\r\ngamma\r\ntail"
	var got []string
	eachChunking(t, []byte(in), func() transports.Protocol {
		got = nil
		return &basic.LineOnlyReceiver{OnLine: func(l []byte) { got = append(got, string(l)) }}
	}, func(t *testing.T, size int, _ transports.Protocol, _ *transporttest.StringTransport) {
		require.Equal(t, []string{"alpha", "beta", "", "gamma"}, got, "chunk size %d", size)
	})
}

func TestLineReceiverMaxLength(t *testing.T) {
	// Exactly MaxLength is fine; one more is not.
	in := "12345\r\n123456\r\nok\r\n"
	var got []string
	var tooLong []string
	eachChunking(t, []byte(in), func() transports.Protocol {
		got, tooLong = nil, nil
		return &basic.LineReceiver{
			MaxLength:     5,
			OnLine:        func(l []byte) { got = append(got, string(l)) },
			OnLineTooLong: func(l []byte) { tooLong = append(tooLong, string(l)) },
		}
	}, func(t *testing.T, size int, _ transports.Protocol, tr *transporttest.StringTransport) {
		require.Equal(t, "12345", got[0], "size %d", size)
		require.NotEmpty(t, tooLong, "size %d", size)
		require.True(t, strings.HasPrefix(tooLong[0], "123456"), "size %d: %q", size, tooLong[0])
		// What follows the long line is either handed to the hook with it or
		// parsed as a line afterwards, never lost silently.
		rest := strings.Join(tooLong, "") + strings.Join(got[1:], "")
		require.Contains(t, rest, "ok", "size %d", size)
		require.False(t, tr.Disconnecting())
	})
}

func TestLineReceiverMaxLengthWithoutDelimiter(t *testing.T) {
	// MaxLength+len(delim) bytes without a delimiter trip the limit before the
	// line ends.
	r := &basic.LineReceiver{MaxLength: 4}
	tr := transporttest.NewStringTransport(nil)
	transporttest.Connect(r, tr)
	r.DataReceived([]byte("12345"))
	require.False(t, tr.Disconnecting())
	r.DataReceived([]byte("6"))
	require.True(t, tr.Disconnecting(), "default hook loses the connection")
	r.DataReceived([]byte("\r\nmore\r\n")) // ignored once disconnecting
	require.Zero(t, r.Buffered())
}

func TestLineReceiverDefaultTooLongLosesConnection(t *testing.T) {
	in := "ab\r\n" + strings.Repeat("x", basic.DefaultMaxLineLength+1) + "\r\nnever\r\n"
	var got []string
	for _, size := range []int{1, 7, 1000, len(in)} {
		got = nil
		r := &basic.LineReceiver{OnLine: func(l []byte) { got = append(got, string(l)) }}
		tr := transporttest.NewStringTransport(nil)
		transporttest.Connect(r, tr)
		transporttest.FeedChunks(r, []byte(in), size)
		require.Equal(t, []string{"ab"}, got, "size %d", size)
		require.True(t, tr.Disconnecting())
	}
}

// rawProto reads "RAW n" lines, then n raw bytes, then lines again.
type rawProto struct {
	basic.LineReceiver
	events []string
	want   int
}

func newRawProto() *rawProto {
	p := &rawProto{}
	p.OnLine = p.line
	p.OnRawData = p.rawData
	return p
}

func (p *rawProto) line(l []byte) {
	p.events = append(p.events, "line:"+string(l))
	if n, ok := strings.CutPrefix(string(l), "RAW "); ok {
		p.want, _ = strconv.Atoi(n)
		p.SetRawMode()
	}
}

func (p *rawProto) rawData(d []byte) {
	n := min(len(d), p.want)
	p.want -= n
	if len(p.events) > 0 && strings.HasPrefix(p.events[len(p.events)-1], "raw:") {
		p.events[len(p.events)-1] += string(d[:n])
	} else {
		p.events = append(p.events, "raw:"+string(d[:n]))
	}
	if p.want == 0 {
		p.SetLineMode(d[n:])
	}
}

func TestLineReceiverRawModeAndBack(t *testing.T) {
	in := "hello\r\nRAW 9\r\nab\r\ncd\r\nxafter\r\nRAW 0\r\nRAW 3\r\n\r\n\r\nend\r\n"
	want := []string{"line:hello", "line:RAW 9", "raw:ab\r\ncd\r\nx", "line:after", "line:RAW 0", "raw:", "line:RAW 3", "raw:\r\n\r", "line:\nend"}
	eachChunking(t, []byte(in), func() transports.Protocol { return newRawProto() },
		func(t *testing.T, size int, p transports.Protocol, _ *transporttest.StringTransport) {
			ev := p.(*rawProto).events
			// "RAW 0" switches to raw mode with nothing to read; the empty raw
			// event only shows up when more bytes were already buffered.
			ev = dropEmptyRaw(ev)
			require.Equal(t, dropEmptyRaw(want), ev, "size %d", size)
		})
}

func dropEmptyRaw(ev []string) []string {
	var out []string
	for _, e := range ev {
		if e != "raw:" {
			out = append(out, e)
		}
	}
	return out
}

func TestLineReceiverSetLineModeOutsideCallback(t *testing.T) {
	var got []string
	r := &basic.LineReceiver{OnLine: func(l []byte) { got = append(got, string(l)) }}
	var raw []byte
	r.OnRawData = func(d []byte) { raw = append(raw, d...) }
	transporttest.Connect(r, transporttest.NewStringTransport(nil))
	r.SetRawMode()
	require.True(t, r.RawMode())
	r.DataReceived([]byte("raw bytes\r\n"))
	require.Equal(t, "raw bytes\r\n", string(raw))
	r.SetLineMode([]byte("x\r\ny"))
	require.False(t, r.RawMode())
	require.Equal(t, []string{"x"}, got)
	r.DataReceived([]byte("z\r\n"))
	require.Equal(t, []string{"x", "yz"}, got)
}

func TestLineReceiverClearLineBuffer(t *testing.T) {
	var got []string
	var cleared []byte
	r := &basic.LineReceiver{}
	r.OnLine = func(l []byte) {
		got = append(got, string(l))
		if string(l) == "CLEAR" {
			cleared = r.ClearLineBuffer()
		}
	}
	transporttest.Connect(r, transporttest.NewStringTransport(nil))
	r.DataReceived([]byte("a\r\nCLEAR\r\nb\r\nc"))
	require.Equal(t, []string{"a", "CLEAR"}, got)
	require.Equal(t, "b\r\nc", string(cleared))
	require.Zero(t, r.Buffered())
	r.DataReceived([]byte("d\r\ne"))
	require.Equal(t, []string{"a", "CLEAR", "d"}, got)
	require.Equal(t, 1, r.Buffered())
	require.Equal(t, "e", string(r.ClearLineBuffer()))
	require.Nil(t, r.ClearLineBuffer())
}

func TestLineReceiverClearAtEveryChunking(t *testing.T) {
	// Whatever the chunking, the lines (with their delimiters put back), the
	// cleared bytes and what is left buffered rebuild the input exactly.
	in := "a\r\nCLEAR\r\nb\r\nc\r\nCLEAR\r\nd"
	var rebuilt []byte
	eachChunking(t, []byte(in), func() transports.Protocol {
		rebuilt = nil
		r := &basic.LineReceiver{}
		r.OnLine = func(l []byte) {
			rebuilt = append(append(rebuilt, l...), "\r\n"...)
			if string(l) == "CLEAR" {
				rebuilt = append(rebuilt, r.ClearLineBuffer()...)
			}
		}
		return r
	}, func(t *testing.T, size int, p transports.Protocol, _ *transporttest.StringTransport) {
		rebuilt = append(rebuilt, p.(*basic.LineReceiver).ClearLineBuffer()...)
		require.Equal(t, in, string(rebuilt), "size %d", size)
	})
}

func TestLineReceiverPauseStopsBufferedLines(t *testing.T) {
	var got []string
	r := &basic.LineReceiver{}
	r.OnLine = func(l []byte) {
		got = append(got, string(l))
		if string(l) == "pause" {
			r.PauseProducing()
		}
	}
	tr := transporttest.NewStringTransport(nil)
	transporttest.Connect(r, tr)
	r.DataReceived([]byte("a\r\npause\r\nb\r\nc\r\n"))
	require.Equal(t, []string{"a", "pause"}, got)
	require.True(t, tr.ReadingPaused())
	r.DataReceived([]byte("d\r\n")) // a transport that ignores the pause
	require.Equal(t, []string{"a", "pause"}, got)
	require.Equal(t, len("b\r\nc\r\nd\r\n"), r.Buffered())
	r.ResumeProducing()
	require.False(t, tr.ReadingPaused())
	require.Equal(t, []string{"a", "pause", "b", "c", "d"}, got)
	require.Zero(t, r.Buffered())
}

func TestLineReceiverPauseAtEveryChunking(t *testing.T) {
	in := "a\r\npause\r\nb\r\npause\r\nc\r\n"
	var got []string
	eachChunking(t, []byte(in), func() transports.Protocol {
		got = nil
		r := &basic.LineReceiver{}
		r.OnLine = func(l []byte) {
			got = append(got, string(l))
			if string(l) == "pause" {
				r.PauseProducing()
			}
		}
		return r
	}, func(t *testing.T, size int, p transports.Protocol, tr *transporttest.StringTransport) {
		r := p.(*basic.LineReceiver)
		// The string transport holds what arrives while reading is paused.
		require.Equal(t, []string{"a", "pause"}, got, "size %d", size)
		r.ResumeProducing()
		require.Equal(t, []string{"a", "pause", "b", "pause"}, got, "size %d", size)
		r.ResumeProducing()
		require.Equal(t, []string{"a", "pause", "b", "pause", "c"}, got, "size %d", size)
	})
}

func TestLineReceiverReentrantDataReceived(t *testing.T) {
	var got []string
	r := &basic.LineReceiver{}
	r.OnLine = func(l []byte) {
		got = append(got, string(l))
		if string(l) == "inject" {
			r.DataReceived([]byte("x\r\n"))
		}
	}
	transporttest.Connect(r, transporttest.NewStringTransport(nil))
	r.DataReceived([]byte("inject\r\nb\r\npart"))
	r.DataReceived([]byte("ial\r\n"))
	// Injected bytes come after everything already received.
	require.Equal(t, []string{"inject", "b", "partx", "ial"}, got)
}

func TestLineReceiverStopsOnDisconnect(t *testing.T) {
	in := "a\r\nquit\r\nb\r\n"
	var got []string
	eachChunking(t, []byte(in), func() transports.Protocol {
		got = nil
		r := &basic.LineReceiver{}
		r.OnLine = func(l []byte) {
			got = append(got, string(l))
			if string(l) == "quit" {
				_ = r.Transport().LoseConnection() // the transport's, not the receiver's
			}
		}
		return r
	}, func(t *testing.T, size int, _ transports.Protocol, tr *transporttest.StringTransport) {
		require.Equal(t, []string{"a", "quit"}, got, "size %d", size)
		require.True(t, tr.Disconnecting())
	})
}

func TestLineReceiverSendLine(t *testing.T) {
	r := &basic.LineReceiver{Delimiter: []byte("\n")}
	require.ErrorIs(t, r.SendLine([]byte("x")), transports.ErrNotConnected)
	tr := transporttest.NewStringTransport(nil)
	transporttest.Connect(r, tr)
	require.Same(t, transports.Transport(tr), r.Transport())
	require.NoError(t, r.SendLine([]byte("hello")))
	require.NoError(t, r.SendLine(nil))
	require.Equal(t, "hello\n\n", tr.String())
	tr.EndConnection(nil)
	require.Nil(t, r.Transport())
	require.ErrorIs(t, r.SendLine([]byte("x")), transports.ErrNotConnected)
	r.DataReceived([]byte("ignored\n"))
}

func TestLineReceiverStopProducing(t *testing.T) {
	r := &basic.LineReceiver{OnLine: func([]byte) { t.Fatal("line after StopProducing") }}
	tr := transporttest.NewStringTransport(nil)
	transporttest.Connect(r, tr)
	r.StopProducing()
	require.True(t, tr.Disconnecting())
	r.DataReceived([]byte("a\r\n"))
	r.ResumeProducing()
}

func TestLineReceiverBorrowedLineIsIntact(t *testing.T) {
	// A callback that feeds more data re-entrantly must not see its own line
	// change underneath it.
	r := &basic.LineReceiver{}
	var bad []string
	r.OnLine = func(l []byte) {
		before := string(l)
		r.DataReceived(bytes.Repeat([]byte("Z"), 64))
		if string(l) != before {
			bad = append(bad, before)
		}
	}
	transporttest.Connect(r, transporttest.NewStringTransport(nil))
	for size := 1; size < 40; size++ {
		transporttest.FeedChunks(r, []byte("\r\nline one\r\nline two\r\n"), size)
		r.ClearLineBuffer()
	}
	require.Empty(t, bad)
}

func TestLineReceiverDelimiterChangeMidStream(t *testing.T) {
	var got []string
	r := &basic.LineReceiver{}
	r.OnLine = func(l []byte) {
		got = append(got, string(l))
		if string(l) == "switch" {
			r.Delimiter = []byte("\n")
		}
	}
	transporttest.Connect(r, transporttest.NewStringTransport(nil))
	transporttest.FeedChunks(r, []byte("a\r\nswitch\r\nb\nc\r\n"), 1)
	require.Equal(t, []string{"a", "switch", "b", "c\r"}, got)
}
