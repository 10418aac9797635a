package netconn_test

import (
	"io"
	"testing"

	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports/netconn"
)

// TestSteadyStateAllocs: once warmed up, a 1 KiB echo round trip (two
// Writes, two Reads, the loop's work for them) allocates nothing,
// process-wide — reused read buffers and write requests, a loop.Call of a
// method value made once.
func TestSteadyStateAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("counts allocations over 2,000 round trips")
	}
	each(t, func(t *testing.T, h *reactortest.Loop, network string) {
		a, b, stop := pipe(t, h.Loop, network, netconn.Config{})
		defer stop()
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 1024)
			for {
				if _, err := io.ReadFull(b, buf); err != nil {
					return
				}
				if _, err := b.Write(buf); err != nil {
					return
				}
			}
		}()
		msg := make([]byte, 1024)
		in := make([]byte, 1024)
		trip := func() {
			if _, err := a.Write(msg); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(a, in); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 200; i++ {
			trip()
		}
		if avg := testing.AllocsPerRun(2000, trip); avg > 0.05 {
			t.Fatalf("%.3f allocations per round trip, want 0", avg)
		}
		_ = a.Close()
		<-done
	})
}
