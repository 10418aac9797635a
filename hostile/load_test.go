package hostile_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports/tcp"
)

// TestTenThousandConnections: 10,000 connections open at once against a TCP echo server on one
// gyre loop, each makes a round trip, all stay open together, then all
// close; twice. After each cycle the loop's open-connection gauge, its ops in flight and
// the process's descriptors are back to their baseline exactly (a few
// descriptors of tolerance for the runtime), and resident memory is back
// near its baseline (well under the growth at the peak; under -race, whose
// shadow memory is not returned, only the second cycle's growth is
// bounded).
//
// The clients are a child process (this test binary, see clientProcess):
// raw non-blocking sockets multiplexed with epoll on one goroutine. Each
// process then needs one descriptor per connection; RLIMIT_NOFILE is raised
// for that where needed (skipping, with the reason, where it may not).
func TestTenThousandConnections(t *testing.T) {
	const n = 10000
	raiseNOFILE(t, uint64(n+1024))
	const msg = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		p, err := tcp.Listen(h.Loop, "127.0.0.1:0", echo.Factory{}, tcp.ListenOptions{Backlog: 4096})
		require.NoError(t, err)
		defer h.Do(func() { _ = p.Close() })
		addr := p.Addr().String()

		// Warm up (pools, maps, the runtime's own descriptors), then take
		// the baseline.
		startClients(t, addr, 200, 200, msg).closeAll(t)
		require.True(t, reactortest.WaitUntil(10*time.Second, func() bool { return h.Stats().ConnsOpen == 0 }))
		base := h.Stats()
		fd0 := reactortest.FDCount()
		rss0 := rss(t)

		var after []int64
		for cycle := 1; cycle <= 2; cycle++ {
			s0 := h.Stats()
			start := time.Now()
			clients := startClients(t, addr, n, 1024, msg)
			require.True(t, reactortest.WaitUntil(10*time.Second, func() bool { return h.Stats().ConnsOpen == int64(n) }), "%+v", h.Stats())
			fdPeak := reactortest.FDCount()
			rssPeak := rss(t)
			require.GreaterOrEqual(t, fdPeak, fd0+n)
			opened := time.Since(start)

			clients.closeAll(t)
			require.True(t, reactortest.WaitUntil(20*time.Second, func() bool {
				s := h.Stats()
				return s.ConnsOpen == 0 && s.OpsInFlight == base.OpsInFlight
			}), "after close: %+v (baseline ops in flight %d)", h.Stats(), base.OpsInFlight)
			require.True(t, reactortest.WaitUntil(5*time.Second, func() bool { return reactortest.FDCount() <= fd0+4 }),
				"descriptors: baseline %d, peak %d, now %d", fd0, fdPeak, reactortest.FDCount())
			s := h.Stats()
			require.EqualValues(t, n, s.ConnsTotal-s0.ConnsTotal)
			require.EqualValues(t, n*len(msg), s.BytesIn-s0.BytesIn)
			require.EqualValues(t, n*len(msg), s.BytesOut-s0.BytesOut)
			require.Zero(t, s.Panics)
			require.Empty(t, h.Errors())

			rss1 := rss(t)
			after = append(after, rss1)
			t.Logf("%s cycle %d: %d conns opened+exchanged in %v; fds %d -> %d -> %d; RSS %d MiB -> %d MiB (peak, %+d B/conn) -> %d MiB",
				kind, cycle, n, opened.Round(time.Millisecond), fd0, fdPeak, reactortest.FDCount(),
				rss0>>20, rssPeak>>20, (rssPeak-rss0)/int64(n), rss1>>20)
			if !raceEnabled {
				// Near baseline: what stays resident after the close is at
				// most half the peak's growth plus 16 MiB of slack for the
				// heap's retained spans.
				require.LessOrEqual(t, rss1-rss0, (rssPeak-rss0)/2+16<<20,
					"RSS baseline %d, peak %d, after %d", rss0, rssPeak, rss1)
			}
		}
		// A second cycle reuses what the first left resident: no growth
		// per cycle beyond 16 MiB of slack (the race detector included).
		require.LessOrEqual(t, after[1]-after[0], int64(16<<20), "RSS after cycle 1 %d, after cycle 2 %d", after[0], after[1])
	})
}
