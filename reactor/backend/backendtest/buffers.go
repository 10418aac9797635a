package backendtest

import (
	"bytes"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor/backend"
)

// bufferScenarios: provided buffers and multishot receive.
func bufferScenarios() []scenario {
	small := backend.Config{BufferCount: 4, BufferSize: 64}
	return []scenario{
		{name: "recv_buffer_select", fn: testRecvBufferSelect},
		{name: "multishot_recv_many", cfg: backend.Config{BufferCount: 64, BufferSize: 256}, fn: testMultishotMany},
		{name: "buffer_pool_exhaustion", cfg: small, fn: testPoolExhaustion},
		{name: "multishot_recv_cancel", fn: testMultishotCancel},
		{name: "many_streams_tiny_batches", cfg: backend.Config{Entries: 4, BufferCount: 32, BufferSize: 512}, fn: testManyStreams},
	}
}

// msRecv drives a multishot recv with provided buffers, re-arming it when it
// ends early (ENOBUFS, or a final completion that still carried data).
type msRecv struct {
	h      *harness
	fd     int
	op     backend.Op
	tok    backend.Token
	got    []byte
	held   []uint16 // buffers kept when hold is set
	hold   bool
	eof    bool
	nobufs int
	rearms int
}

func (m *msRecv) arm() {
	m.op = backend.Op{Kind: backend.KindRecv, Fd: int32(m.fd), BufferSelect: true, Multishot: true}
	m.tok = m.h.submit(&m.op)
}

// pump handles every completion of the current multishot op that has arrived.
// It reports whether the op ended (and was not re-armed).
func (m *msRecv) pump(rearm bool) bool {
	h := m.h
	for h.pending(m.tok) {
		c := h.next(m.tok)
		if c.Flags&backend.FlagBuffer != 0 {
			require.Greater(h.t, c.Res, int32(0), "a provided buffer with no data")
			m.got = append(m.got, c.Buf...)
			if m.hold {
				m.held = append(m.held, c.BufID)
			} else {
				h.release(c.BufID)
			}
		} else {
			require.LessOrEqual(h.t, c.Res, int32(0), "data without FlagBuffer on a BufferSelect recv")
		}
		if c.More() {
			require.GreaterOrEqual(h.t, c.Res, int32(0), "an error completion with FlagMore")
			continue
		}
		switch {
		case c.Res == 0 && c.Flags&backend.FlagBuffer == 0:
			m.eof = true
			return true
		case c.Res == eNOBUFS:
			m.nobufs++
		case c.Res < 0:
			require.Failf(h.t, "multishot recv failed", "%s", errText(c.Res))
		}
		if !rearm {
			return true
		}
		m.rearms++
		m.arm()
	}
	return false
}

func (m *msRecv) releaseHeld() {
	for _, id := range m.held {
		m.h.release(id)
	}
	m.held = m.held[:0]
}

func testRecvBufferSelect(h *harness) {
	a, b := h.socketpair()
	h.writeAll(a, []byte("provided"))
	tok := h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(b), BufferSelect: true})
	c := h.expectRes(tok, 8)
	require.NotZero(h.t, c.Flags&backend.FlagBuffer)
	require.Equal(h.t, "provided", string(c.Buf))
	h.release(c.BufID)
	// Parked first, then data.
	tok = h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(b), BufferSelect: true})
	h.settle()
	require.False(h.t, h.pending(tok))
	h.writeAll(a, []byte("later"))
	c = h.expectRes(tok, 5)
	require.Equal(h.t, "later", string(c.Buf))
	h.release(c.BufID)
}

// Many messages of varied sizes through one multishot recv, releasing each
// buffer as it is consumed; then end of stream ends it with Res 0.
func testMultishotMany(h *harness) {
	a, b := h.socketpair()
	m := &msRecv{h: h, fd: b}
	m.arm()
	h.settle()
	var want []byte
	deadline := time.Now().Add(waitLimit)
	for i := 0; i < 300; i++ {
		msg := pattern(1+(i*37)%700, byte(i))
		want = append(want, msg...)
		h.writeAll(a, msg)
		if i%10 == 9 {
			for len(m.got) < len(want) {
				require.True(h.t, time.Now().Before(deadline), "multishot recv stalled at %d of %d bytes", len(m.got), len(want))
				h.wait(100 * time.Millisecond)
				m.pump(true)
			}
		}
	}
	h.closeNow(a)
	for !m.eof {
		require.True(h.t, time.Now().Before(deadline), "multishot recv never saw end of stream")
		h.wait(100 * time.Millisecond)
		m.pump(true)
	}
	require.True(h.t, bytes.Equal(want, m.got), "multishot stream corrupted")
	h.t.Logf("multishot recv: %d bytes, %d re-arms (%d ENOBUFS)", len(want), m.rearms, m.nobufs)
}

// With every buffer held, a multishot recv ends with -ENOBUFS and loses no
// data: releasing the buffers and re-arming delivers the rest, in order.
func testPoolExhaustion(h *harness) {
	a, b := h.socketpair()
	data := pattern(1000, 5)
	h.writeAll(a, data)
	m := &msRecv{h: h, fd: b, hold: true}
	m.arm()
	deadline := time.Now().Add(waitLimit)
	for !m.pump(false) {
		require.True(h.t, time.Now().Before(deadline), "multishot recv with an exhausted pool did not end")
		h.wait(100 * time.Millisecond)
	}
	require.Equal(h.t, 1, m.nobufs, "an exhausted pool must end the multishot recv with -ENOBUFS")
	require.Len(h.t, m.held, 4, "all 4 buffers should be in use")
	require.Equal(h.t, data[:len(m.got)], m.got)

	// A single-shot BufferSelect recv fails the same way while the pool is empty.
	single := h.submit(&backend.Op{Kind: backend.KindRecv, Fd: int32(b), BufferSelect: true})
	h.expectRes(single, eNOBUFS)

	for len(m.got) < len(data) {
		require.True(h.t, time.Now().Before(deadline), "data lost after ENOBUFS: %d of %d bytes", len(m.got), len(data))
		m.releaseHeld()
		m.arm()
		for !m.pump(false) && len(m.got) < len(data) {
			require.True(h.t, time.Now().Before(deadline), "re-armed recv stalled")
			h.wait(100 * time.Millisecond)
		}
	}
	require.True(h.t, bytes.Equal(data, m.got), "data lost or reordered across ENOBUFS")
	m.hold = false
	m.releaseHeld()
	if !h.ops[m.tok].final {
		cancel := h.submit(&backend.Op{Kind: backend.KindCancel, Target: m.tok})
		last, _ := h.final(m.tok)
		require.Contains(h.t, []int32{eCANCELED, eNOBUFS}, last.Res)
		c, _ := h.final(cancel)
		require.Contains(h.t, []int32{0, eNOENT, eALREADY}, c.Res)
		m.pump(false)
	}
}

// Cancelling an armed multishot recv ends it with a final -ECANCELED.
func testMultishotCancel(h *harness) {
	a, b := h.socketpair()
	m := &msRecv{h: h, fd: b}
	m.arm()
	h.writeAll(a, []byte("one"))
	for len(m.got) < 3 {
		h.wait(100 * time.Millisecond)
		m.pump(false)
		require.False(h.t, h.ops[m.tok].final, "multishot recv ended after one message")
	}
	cancel := h.submit(&backend.Op{Kind: backend.KindCancel, Target: m.tok})
	last, more := h.final(m.tok)
	require.Empty(h.t, more)
	require.Equal(h.t, eCANCELED, last.Res, "cancelled multishot: %s", errText(last.Res))
	h.expectRes(cancel, 0)
}

// Many connections, each with its own multishot recv, on a backend sized to
// tiny batches (Entries 4) and a small pool: every stream arrives whole and in
// order, whatever the interleaving, re-arming after ENOBUFS as needed.
func testManyStreams(h *harness) {
	const conns, rounds, size = 24, 8, 300
	type stream struct {
		w    int
		m    *msRecv
		want []byte
	}
	ss := make([]*stream, conns)
	for i := range ss {
		a, b := h.socketpair()
		ss[i] = &stream{w: a, m: &msRecv{h: h, fd: b}}
		ss[i].m.arm()
	}
	deadline := time.Now().Add(waitLimit)
	for r := 0; r < rounds; r++ {
		for i, s := range ss {
			msg := pattern(size+i, byte(r*conns+i))
			s.want = append(s.want, msg...)
			h.writeAll(s.w, msg)
		}
		for {
			behind := 0
			for _, s := range ss {
				s.m.pump(true)
				if len(s.m.got) < len(s.want) {
					behind++
				}
			}
			if behind == 0 {
				break
			}
			require.True(h.t, time.Now().Before(deadline), "%d streams behind in round %d", behind, r)
			h.wait(100 * time.Millisecond)
		}
	}
	for _, s := range ss {
		require.True(h.t, bytes.Equal(s.want, s.m.got), "stream corrupted")
		h.closeNow(s.w)
	}
	for _, s := range ss {
		for s.m.pump(true); !s.m.eof; s.m.pump(true) {
			require.True(h.t, time.Now().Before(deadline), "a stream never saw its end")
			h.wait(100 * time.Millisecond)
		}
	}
}
