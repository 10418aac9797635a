package resp

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/transports"
)

// discard is a minimal transport for benchmarks: it counts written bytes and
// keeps nothing, so the numbers are the protocol's alone.
type discard struct {
	clk   transports.Clock
	bytes int
}

func (d *discard) Write(p []byte) error                             { d.bytes += len(p); return nil }
func (d *discard) WriteBuffers(bufs [][]byte) error                 { return nil }
func (d *discard) LoseConnection() error                            { return nil }
func (d *discard) Abort() error                                     { return nil }
func (d *discard) CloseWrite() error                                { return nil }
func (d *discard) LocalAddr() net.Addr                              { return nil }
func (d *discard) RemoteAddr() net.Addr                             { return nil }
func (d *discard) PauseReading()                                    {}
func (d *discard) ResumeReading()                                   {}
func (d *discard) RegisterProducer(transports.Producer, bool) error { return nil }
func (d *discard) UnregisterProducer()                              {}
func (d *discard) Clock() transports.Clock                          { return d.clk }
func (d *discard) SetKeepAlive(bool, time.Duration) error           { return nil }
func (d *discard) SetNoDelay(bool) error                            { return nil }

var _ transports.TCPTransport = (*discard)(nil)

func benchConn(b *testing.B, setup string) (transports.Protocol, *discard) {
	f := NewFactory(NewStore(), Options{})
	d := &discard{clk: clock.NewFake()}
	c := f.BuildProtocol(nil)
	c.ConnectionMade(d)
	if setup != "" {
		c.DataReceived([]byte(setup))
	}
	return c, d
}

// bench feeds one pipelined batch per iteration, as redis-benchmark -P 16
// does, and reports per-batch figures.
func bench(b *testing.B, setup, batch string) {
	c, d := benchConn(b, setup)
	in := []byte(batch)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c.DataReceived(in)
	}
	b.StopTimer()
	if d.bytes == 0 {
		b.Fatal("no replies")
	}
}

func BenchmarkPingMultibulkP16(b *testing.B) {
	bench(b, "", strings.Repeat(mb("PING"), 16))
}

func BenchmarkPingInlineP16(b *testing.B) {
	bench(b, "", strings.Repeat("PING\r\n", 16))
}

func BenchmarkSetP16(b *testing.B) {
	bench(b, "", strings.Repeat(mb("SET", "key:__rand_int__", "xxx"), 16))
}

func BenchmarkGetP16(b *testing.B) {
	bench(b, mb("SET", "key:__rand_int__", "xxx"), strings.Repeat(mb("GET", "key:__rand_int__"), 16))
}

func BenchmarkIncrP16(b *testing.B) {
	bench(b, "", strings.Repeat(mb("INCR", "counter:__rand_int__"), 16))
}

func BenchmarkMSetP16(b *testing.B) {
	args := []string{"MSET"}
	for range 10 {
		args = append(args, "key:__rand_int__", "xxx")
	}
	bench(b, "", strings.Repeat(mb(args...), 16))
}

func BenchmarkGetVolatileP16(b *testing.B) {
	bench(b, mb("SET", "k", "xxx", "EX", "1000"), strings.Repeat(mb("GET", "k"), 16))
}

// BenchmarkSetSplit delivers each batch in two reads split mid-request, so
// the partial-request path (copy into the connection's buffer) is measured.
func BenchmarkSetSplit(b *testing.B) {
	c, _ := benchConn(b, "")
	in := []byte(strings.Repeat(mb("SET", "key:__rand_int__", "xxx"), 16))
	half := len(in)/2 + 3
	b.ReportAllocs()
	for b.Loop() {
		c.DataReceived(in[:half])
		c.DataReceived(in[half:])
	}
}

// BenchmarkSetSharedP16 is BenchmarkSetP16 on a mutex-protected store.
func BenchmarkSetSharedP16(b *testing.B) {
	f := NewFactory(NewSharedStore(), Options{})
	d := &discard{clk: clock.NewFake()}
	c := f.BuildProtocol(nil)
	c.ConnectionMade(d)
	in := []byte(strings.Repeat(mb("SET", "key:__rand_int__", "xxx"), 16))
	b.ReportAllocs()
	for b.Loop() {
		c.DataReceived(in)
	}
}

// BenchmarkBigSetIn64KChunks sends a 16 MiB SET in 64 KiB reads: the cost
// must stay linear in the value size (no re-scan or re-copy per read).
func BenchmarkBigSetIn64KChunks(b *testing.B) {
	c, _ := benchConn(b, "")
	in := []byte(mb("SET", "k", strings.Repeat("x", 16<<20)))
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		for off := 0; off < len(in); off += 64 << 10 {
			c.DataReceived(in[off:min(off+64<<10, len(in))])
		}
	}
}
