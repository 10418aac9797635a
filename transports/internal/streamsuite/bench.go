package streamsuite

import (
	"io"
	"net"
	"testing"
)

// PingPong times b.N round trips of size bytes over c (a Go net client of an
// echo server) after 100 untimed ones, so buffers, slots and queues reach
// their steady size: one op is one round trip. Allocations are counted for
// the whole process; the client's Read/Write allocate nothing, so allocs/op
// is the server's steady-state data path. around, if set, runs just before
// and just after the timed part (before == true, then false).
func PingPong(b *testing.B, c net.Conn, size int, around func(before bool)) {
	msg := make([]byte, size)
	got := make([]byte, size)
	for i := 0; i < 100; i++ {
		_, _ = c.Write(msg)
		_, _ = io.ReadFull(c, got)
	}
	if around != nil {
		around(true)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if around != nil {
		around(false)
	}
}
