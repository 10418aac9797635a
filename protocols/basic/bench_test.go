package basic_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/protocols/basic"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// discard is a transport that drops writes, so benchmarks measure the framer.
type discard struct{ transports.Transport }

func (discard) Write([]byte) error          { return nil }
func (discard) WriteBuffers([][]byte) error { return nil }

// input builds n frames with enc and splits them into chunks of size bytes
// that cut frames at varying places.
func chunks(n, size int, enc func(i int) []byte) [][]byte {
	var all []byte
	for i := range n {
		all = append(all, enc(i)...)
	}
	var out [][]byte
	for len(all) > 0 {
		k := min(size, len(all))
		out = append(out, all[:k])
		all = all[k:]
	}
	return out
}

func lineFrame(i int) []byte {
	return append(bytes.Repeat([]byte{'a' + byte(i%26)}, 20+i%40), "\r\n"...)
}

func netstringFrame(i int) []byte {
	p := bytes.Repeat([]byte{'n'}, 20+i%40)
	return append(append([]byte{byte('0' + len(p)/10), byte('0' + len(p)%10), ':'}, p...), ',')
}

func int32Frame(i int) []byte {
	p := bytes.Repeat([]byte{'i'}, 20+i%40)
	return append([]byte{0, 0, 0, byte(len(p))}, p...)
}

type benchCase struct {
	name  string
	build func(count *int) transports.Protocol
	enc   func(i int) []byte
}

var benchCases = []benchCase{
	{"Line", func(c *int) transports.Protocol {
		return &basic.LineReceiver{OnLine: func([]byte) { *c++ }}
	}, lineFrame},
	{"LineOnly", func(c *int) transports.Protocol {
		return &basic.LineOnlyReceiver{OnLine: func([]byte) { *c++ }}
	}, lineFrame},
	{"Netstring", func(c *int) transports.Protocol {
		return &basic.NetstringReceiver{OnString: func([]byte) { *c++ }}
	}, netstringFrame},
	{"Int32", func(c *int) transports.Protocol {
		return basic.NewInt32Receiver(func([]byte) { *c++ })
	}, int32Frame},
}

func BenchmarkReceive(b *testing.B) {
	for _, bc := range benchCases {
		for _, size := range []int{7, 512, 16384} {
			b.Run(bc.name+"/chunk="+itoa(size), func(b *testing.B) {
				in := chunks(1000, size, bc.enc)
				var total int
				for _, c := range in {
					total += len(c)
				}
				var frames int
				p := bc.build(&frames)
				p.ConnectionMade(discard{})
				for _, c := range in { // warm the buffer
					p.DataReceived(c)
				}
				b.SetBytes(int64(total))
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					for _, c := range in {
						p.DataReceived(c)
					}
				}
				if frames%1000 != 0 {
					b.Fatalf("%d frames", frames)
				}
			})
		}
	}
}

func BenchmarkSend(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 64)
	b.Run("Line", func(b *testing.B) {
		r := &basic.LineReceiver{}
		r.ConnectionMade(discard{})
		b.ReportAllocs()
		for b.Loop() {
			_ = r.SendLine(payload)
		}
	})
	b.Run("Netstring", func(b *testing.B) {
		r := &basic.NetstringReceiver{}
		r.ConnectionMade(discard{})
		b.ReportAllocs()
		for b.Loop() {
			_ = r.SendString(payload)
		}
	})
	b.Run("Int32", func(b *testing.B) {
		r := basic.NewInt32Receiver(nil)
		r.ConnectionMade(discard{})
		b.ReportAllocs()
		for b.Loop() {
			_ = r.SendString(payload)
		}
	})
}

// TestSteadyStateAllocs pins the 0 allocs/op claim in the normal test run.
func TestSteadyStateAllocs(t *testing.T) {
	for _, bc := range benchCases {
		for _, size := range []int{1, 7, 512} {
			in := chunks(200, size, bc.enc)
			var frames int
			p := bc.build(&frames)
			p.ConnectionMade(discard{})
			feed := func() {
				for _, c := range in {
					p.DataReceived(c)
				}
			}
			feed()
			allocs := testing.AllocsPerRun(5, feed)
			require.Zero(t, allocs, "%s chunk %d", bc.name, size)
			require.Equal(t, 200*7, frames, "%s chunk %d", bc.name, size)
		}
	}
	l := &basic.LineReceiver{}
	l.ConnectionMade(discard{})
	n := &basic.NetstringReceiver{}
	n.ConnectionMade(discard{})
	i := basic.NewInt8Receiver(nil)
	i.ConnectionMade(discard{})
	msg := []byte("payload")
	require.Zero(t, testing.AllocsPerRun(10, func() {
		_ = l.SendLine(msg)
		_ = n.SendString(msg)
		_ = i.SendString(msg)
	}))
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// Raw-mode pass-through must not copy or allocate either.
func TestRawModeAllocs(t *testing.T) {
	r := &basic.LineReceiver{OnRawData: func([]byte) {}}
	r.ConnectionMade(transporttest.NewStringTransport(nil))
	r.SetRawMode()
	data := make([]byte, 4096)
	require.Zero(t, testing.AllocsPerRun(10, func() { r.DataReceived(data) }))
}
