package backendtest

import (
	"fmt"
	"strings"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
)

// fairnessScenarios: several busy connections share the backend fairly.
func fairnessScenarios() []scenario {
	return []scenario{
		{name: "multishot_recv_interleaves", cfg: backend.Config{BufferCount: 1024, BufferSize: 1024}, fn: testRecvInterleaves},
	}
}

// Several sockets already hold a lot of data when their multishot recvs are
// armed together: the completions of the streams must interleave. Before any
// stream has delivered half of its data, every stream has delivered some (a
// backend that drains one socket to EAGAIN before touching the next fails).
// The pool holds all the data, so no recv ends with ENOBUFS.
func testRecvInterleaves(h *harness) {
	const (
		streams = 4
		maxFill = 192 << 10 // per stream; 4 of them fit the 1 MiB pool
		minFill = 96 << 10  // far more than one bounded pass (io_uring: 32 buffers)
	)
	type stream struct {
		w, r   int
		op     backend.Op
		tok    backend.Token
		filled int
		got    int
		first  int // index of the first data completion, -1 before
	}
	ss := make([]*stream, streams)
	chunk := pattern(16<<10, 1)
	byTok := make(map[backend.Token]int)
	for i := range ss {
		w, r := h.socketpair()
		s := &stream{w: w, r: r, first: -1}
		// Fill without blocking: a socket holds what its buffers allow.
		for s.filled < maxFill {
			n, err := unix.Write(w, chunk[:min(len(chunk), maxFill-s.filled)])
			if err == unix.EAGAIN {
				break
			}
			require.NoError(h.t, err)
			s.filled += n
		}
		require.GreaterOrEqual(h.t, s.filled, minFill, "socket buffers too small for the scenario")
		ss[i] = s
	}
	for i, s := range ss {
		s.op = backend.Op{Kind: backend.KindRecv, Fd: int32(s.r), BufferSelect: true, Multishot: true}
		s.tok = h.submit(&s.op)
		byTok[s.tok] = i
	}
	var order strings.Builder // stream digit per data completion, for the log
	seq := 0
	deadline := time.Now().Add(waitLimit)
	for {
		done := 0
		for _, s := range ss {
			if s.got == s.filled {
				done++
			}
		}
		if done == streams {
			break
		}
		require.True(h.t, time.Now().Before(deadline), "streams stalled")
		n := h.wait(100 * time.Millisecond)
		for _, c := range h.out[:n] {
			i, ok := byTok[c.Token]
			require.True(h.t, ok)
			s := ss[i]
			require.True(h.t, c.More(), "stream %d: multishot recv ended early: %s", i, errText(c.Res))
			require.NotZero(h.t, c.Flags&backend.FlagBuffer)
			h.release(c.BufID)
			h.ops[c.Token].seen++ // handled here, not through next
			if s.first < 0 {
				s.first = seq
			}
			s.got += int(c.Res)
			seq++
			fmt.Fprint(&order, i)
			if s.got*2 >= s.filled {
				for j, o := range ss {
					require.GreaterOrEqual(h.t, o.first, 0,
						"stream %d delivered %d of %d bytes before stream %d delivered any (order %s)",
						i, s.got, s.filled, j, order.String())
				}
			}
		}
	}
	h.t.Logf("%d data completions, stream order: %s", seq, runs(order.String()))
	for _, s := range ss {
		h.closeNow(s.w)
	}
	for _, s := range ss {
		last, more := h.final(s.tok)
		require.Empty(h.t, more, "%d data completions after the streams were drained", len(more))
		require.Equal(h.t, int32(0), last.Res, "end of stream: %s", errText(last.Res))
	}
}

// runs compresses a digit string into "digit×count" runs.
func runs(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] == s[i] {
			j++
		}
		fmt.Fprintf(&b, "%c×%d ", s[i], j-i)
		i = j
	}
	return strings.TrimSpace(b.String())
}
