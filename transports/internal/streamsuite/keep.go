package streamsuite

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
)

// bufAudit wraps a loop's backend (reactor.Config.WrapBackend) and audits
// its provided buffers: every BufID handed out by Wait must be given back
// exactly once with ReleaseBuffer, and none may be released that was not
// handed out.
type bufAudit struct {
	backend.Backend
	mu      sync.Mutex
	out     map[uint16]bool
	handed  int
	bad     []string
	atClose int // buffers still out when Close was called (-1: not closed)
}

func newBufAudit() *bufAudit { return &bufAudit{out: map[uint16]bool{}, atClose: -1} }

func (a *bufAudit) wrap(be backend.Backend) backend.Backend { a.Backend = be; return a }

func (a *bufAudit) Wait(out []backend.Completion, d time.Duration) (int, error) {
	n, err := a.Backend.Wait(out, d)
	a.mu.Lock()
	for i := range out[:n] {
		if out[i].Flags&backend.FlagBuffer != 0 {
			if a.out[out[i].BufID] {
				a.bad = append(a.bad, fmt.Sprintf("BufID %#x handed out while still out", out[i].BufID))
			}
			a.out[out[i].BufID] = true
			a.handed++
		}
	}
	a.mu.Unlock()
	return n, err
}

func (a *bufAudit) ReleaseBuffer(id uint16) {
	a.mu.Lock()
	if !a.out[id] {
		a.bad = append(a.bad, fmt.Sprintf("BufID %#x released but not out", id))
	}
	delete(a.out, id)
	a.mu.Unlock()
	a.Backend.ReleaseBuffer(id)
}

func (a *bufAudit) Close() error {
	a.mu.Lock()
	a.atClose = len(a.out)
	a.mu.Unlock()
	return a.Backend.Close()
}

// state is the number of buffers out now, handed out in all, the audit's
// complaints and the count at Close.
func (a *bufAudit) state() (out, handed int, bad []string, atClose int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.out), a.handed, append([]string(nil), a.bad...), a.atClose
}

// keeper is what a forwarding protocol needs of a stream transport.
type keeper interface {
	transports.BufferKeeper
	transports.OwnedWriter
	Kept() int
}

// forward is the zero-copy echo: keep the received buffer and queue it with
// WriteOwned, or copy when it cannot be kept. Loop only.
type forward struct {
	keeps, copies, maxKept int
}

func (f *forward) data(r *Recorder, p []byte) (kept bool) {
	k := r.T.(keeper)
	release, ok := k.KeepReceived()
	if !ok {
		f.copies++
		_ = r.T.Write(p)
		return false
	}
	if again, ok2 := k.KeepReceived(); !ok2 || again == nil {
		panic("a second KeepReceived in one DataReceived failed")
	}
	f.keeps++
	f.maxKept = max(f.maxKept, k.Kept())
	if err := k.WriteOwned(p, release); err != nil {
		release(nil)
	}
	return true
}

// echoCheck writes n pattern bytes to c in random chunks while reading the
// echo, and requires the echo to be the same bytes.
func echoCheck(t *testing.T, c net.Conn, n int, seed uint64) {
	t.Helper()
	in := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := range in {
		in[i] = byte(rng.Uint32())
	}
	werr := make(chan error, 1)
	go func() {
		for off := 0; off < n; {
			m := min(1+rng.IntN(20000), n-off)
			if _, err := c.Write(in[off : off+m]); err != nil {
				werr <- err
				return
			}
			off += m
		}
		werr <- nil
	}()
	got := make([]byte, n)
	_, err := io.ReadFull(c, got)
	require.NoError(t, err)
	require.NoError(t, <-werr)
	require.True(t, bytes.Equal(in, got), "echo differs from what was sent")
}

// testKeepReceivedForwards: a protocol forwarding every received buffer
// with KeepReceived + WriteOwned (no copy) echoes 8 MiB in random chunks
// exactly (the kernel never rewrote a kept buffer: with an incrementally
// consumed ring, later receives fill the same buffers), most chunks are
// kept, one connection never keeps more than MaxKeptPerConn, KeepReceived
// outside DataReceived answers false, and once the connection is gone every
// provided buffer has been given back exactly once (the backend audit) and
// the loop keeps none.
func testKeepReceivedForwards(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		audit := newBufAudit()
		h := reactortest.Start(t, kind, reactor.Config{WrapBackend: audit.wrap})
		f := &forward{}
		outside := true
		p, built := Serve(t, k, h, func() *Recorder {
			return &Recorder{
				OnMade: func(r *Recorder) { _, outside = r.T.(keeper).KeepReceived() },
				OnData: func(r *Recorder, p []byte) { f.data(r, p) },
			}
		})
		c := Dial(t, k, p)
		echoCheck(t, c, 8<<20, 1)
		require.NoError(t, c.Close())
		require.True(t, h.Eventually(5*time.Second, func() bool { b := built(); return len(b) == 1 && b[0].Lost == 1 }))
		var fw forward
		var out0, kept int
		h.Do(func() { fw, out0, kept = *f, boolInt(outside), h.KeptBuffers() })
		require.Zero(t, out0, "KeepReceived outside DataReceived kept something")
		require.Positive(t, fw.keeps)
		require.LessOrEqual(t, fw.maxKept, 64)
		require.Zero(t, kept)
		out, handed, bad, _ := audit.state()
		require.Empty(t, bad)
		require.Zero(t, out, "provided buffers never given back")
		require.Positive(t, handed)
		t.Logf("%s: %d chunks kept, %d copied, at most %d kept at once", kind, fw.keeps, fw.copies, fw.maxKept)
	})
}

// testKeepNeverReleasedDoesNotStarve: with a 16-buffer pool, one protocol
// keeps every buffer it can and never releases; it is capped at half the
// pool (the rest of its bytes still arrive, unkept), a second hoarder gets
// no keep at all, and three echo connections on the same loop still
// complete (a dry pool would end every receive with ENOBUFS, again and
// again). The kept buffers outlive the hoarder's connection until it
// releases them (a second release is ignored); then every buffer is back.
func testKeepNeverReleasedDoesNotStarve(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		audit := newBufAudit()
		h := reactortest.Start(t, kind, reactor.Config{Sizes: backend.Config{BufferCount: 16, BufferSize: 512}, WrapBackend: audit.wrap})
		type hoard struct {
			rel     []func(error)
			got     int
			refused int
		}
		var hoards []*hoard
		var mu sync.Mutex
		n := 0
		p, built := Serve(t, k, h, func() *Recorder {
			mu.Lock()
			defer mu.Unlock()
			n++
			if n > 2 {
				return &Recorder{Echo: true}
			}
			hd := &hoard{}
			hoards = append(hoards, hd)
			return &Recorder{OnData: func(r *Recorder, p []byte) {
				hd.got += len(p)
				if rel, ok := r.T.(keeper).KeepReceived(); ok {
					hd.rel = append(hd.rel, rel)
				} else {
					hd.refused++
				}
			}}
		})
		const hoardBytes = 1 << 20
		hc := make([]net.Conn, 2)
		for i := range hc {
			hc[i] = Dial(t, k, p)
			require.True(t, h.Eventually(5*time.Second, func() bool { return len(built()) == i+1 }))
			go func(c net.Conn) { _, _ = c.Write(make([]byte, hoardBytes)) }(hc[i])
		}
		var wg sync.WaitGroup
		for i := range 3 {
			c := Dial(t, k, p)
			wg.Add(1)
			go func() {
				defer wg.Done()
				echoCheck(t, c, 256<<10, uint64(i+10))
			}()
		}
		wg.Wait()
		require.True(t, h.Eventually(10*time.Second, func() bool {
			return hoards[0].got == hoardBytes && hoards[1].got == hoardBytes
		}), "the hoarders' bytes did not all arrive")
		half := 8
		var maxKept, hoarded, kept int
		h.Do(func() { maxKept, hoarded, kept = h.MaxKept(), len(hoards[0].rel)+len(hoards[1].rel), h.KeptBuffers() })
		require.Equal(t, half, maxKept)
		require.Equal(t, half, hoarded, "the loop's cap is half the pool")
		require.Equal(t, half, kept)
		st := h.Stats()
		t.Logf("%s: %d turns, %d receives found the pool dry", kind, st.Turns, st.BufferExhaustions)
		// A loop spinning on ENOBUFS would turn millions of times.
		require.Less(t, st.Turns, uint64(100000), "the loop spun")
		for _, c := range hc {
			require.NoError(t, c.Close())
		}
		require.True(t, h.Eventually(5*time.Second, func() bool {
			for _, r := range built()[:2] {
				if r.Lost != 1 {
					return false
				}
			}
			return true
		}))
		out, _, bad, _ := audit.state()
		require.Empty(t, bad)
		require.Equal(t, half, out, "kept buffers are the owner's until released, also after ConnectionLost")
		h.Do(func() {
			for _, hd := range hoards {
				for _, rel := range hd.rel {
					rel(nil)
					rel(nil) // ignored
				}
			}
			kept = h.KeptBuffers()
		})
		require.Zero(t, kept)
		out, _, bad, _ = audit.state()
		require.Empty(t, bad)
		require.Zero(t, out)
	})
}

// testKeepHeldBytes: bytes held while reading was paused are the
// connection's own copy: KeepReceived keeps them at no cost (no provided
// buffer is held), and forwarding them echoes exactly.
func testKeepHeldBytes(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		audit := newBufAudit()
		// Small receive buffers (too few for io_uring's large stream
		// buffers): the multishot recv in flight when reading pauses then
		// still delivers a few completions, which become held bytes.
		h := reactortest.Start(t, kind, reactor.Config{WrapBackend: audit.wrap,
			Sizes: backend.Config{BufferCount: 256, BufferSize: 1024}})
		f := &forward{}
		first := true
		heldKept := 0
		p, _ := Serve(t, k, h, func() *Recorder {
			return &Recorder{OnData: func(r *Recorder, p []byte) {
				before := h.KeptBuffers()
				if f.data(r, p) && h.KeptBuffers() == before {
					heldKept++ // kept without holding a provided buffer
				}
				if first {
					first = false
					r.T.PauseReading()
					r.T.Clock().CallLater(50*time.Millisecond, r.T.ResumeReading)
				}
			}}
		})
		c := Dial(t, k, p)
		echoCheck(t, c, 1<<20, 3)
		require.NoError(t, c.Close())
		var held int
		h.Do(func() { held = heldKept })
		require.Positive(t, held, "held bytes were not kept")
		require.True(t, h.Eventually(5*time.Second, func() bool { out, _, _, _ := audit.state(); return out == 0 }))
		_, _, bad, _ := audit.state()
		require.Empty(t, bad)
	})
}

// testKeepStopWithKeptQueued: buffers kept and queued with WriteOwned to a
// peer that does not read are given back when the loop stops (the drain
// times out, the queue is dropped and calls every done): no provided
// buffer is out when the backend closes.
func testKeepStopWithKeptQueued(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		audit := newBufAudit()
		h := reactortest.Start(t, kind, reactor.Config{WrapBackend: audit.wrap, DrainTimeout: 200 * time.Millisecond})
		f := &forward{}
		p, err := k.listen(t, h, transports.FactoryFunc(func(net.Addr) transports.Protocol {
			return &Recorder{OnData: func(r *Recorder, p []byte) { f.data(r, p) }}
		}))
		require.NoError(t, err) // closed by the loop's stop
		c := Dial(t, k, p)
		go func() { _, _ = c.Write(make([]byte, 16<<20)) }() // never read back
		require.True(t, h.Eventually(10*time.Second, func() bool { return h.KeptBuffers() >= 32 }))
		h.StopWait()
		_, handed, bad, atClose := audit.state()
		require.Empty(t, bad)
		require.Positive(t, handed)
		require.Zero(t, atClose, "provided buffers still out when the backend closed")
		require.LessOrEqual(t, f.maxKept, 64)
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
