package streamsuite

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/internal/testhooks"
)

func testWriteOwnedKeepsOrderAndReleasesAfterSend(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		owned := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		released := make(chan error, 1)
		p, _ := Serve(t, k, h, func() *Recorder {
			return &Recorder{OnMade: func(r *Recorder) {
				c := r.T.(ownedWriter)
				require.NoError(t, c.Write([]byte("head:")))
				require.NoError(t, c.WriteOwned(owned, func(err error) { released <- err }))
				require.NoError(t, c.Write([]byte(":tail")))
				require.NoError(t, c.LoseConnection())
			}}
		})
		c := Dial(t, k, p)
		got, err := io.ReadAll(c)
		require.NoError(t, err)
		want := append(append([]byte("head:"), owned...), ":tail"...)
		require.True(t, bytes.Equal(want, got), "stream differs (len %d vs %d)", len(got), len(want))
		select {
		case err := <-released:
			require.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("owned buffer never released")
		}
	})
}

// testZeroCopyOnlyToOtherHosts: an owned buffer alone in the queue, large
// enough for a zero-copy send, goes out copying to a peer on this host (the
// kernel would copy it on delivery anyway); with zero copy forced for local
// peers (a test hook) the zero-copy path runs — emulated by a copying send
// and a synthetic notification where the backend has none — and the peer
// gets the same bytes, and the buffer is released once, after the send.
func testZeroCopyOnlyToOtherHosts(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		for _, forced := range []bool{false, true} {
			testhooks.ZeroCopyToLocalPeers.Store(forced)
			t.Cleanup(func() { testhooks.ZeroCopyToLocalPeers.Store(false) })
			zc := &zcCount{}
			h := reactortest.Start(t, kind, reactor.Config{WrapBackend: zc.wrap})
			owned := bytes.Repeat([]byte("fedcba9876543210"), 1<<16) // 1 MiB
			released := make(chan error, 2)
			p, built := Serve(t, k, h, func() *Recorder {
				return &Recorder{OnMade: func(r *Recorder) {
					c := r.T.(ownedWriter)
					require.NoError(t, c.WriteOwned(owned, func(err error) { released <- err }))
					require.NoError(t, c.LoseConnection())
				}}
			})
			c := Dial(t, k, p)
			got, err := io.ReadAll(c)
			require.NoError(t, err)
			require.True(t, bytes.Equal(owned, got), "forced=%v: stream differs (len %d vs %d)", forced, len(got), len(owned))
			select {
			case err := <-released:
				require.NoError(t, err)
			case <-time.After(5 * time.Second):
				t.Fatal("owned buffer never released")
			}
			require.True(t, h.Eventually(5*time.Second, func() bool { b := built(); return len(b) == 1 && b[0].Lost == 1 }))
			require.Empty(t, released, "released twice")
			if forced {
				require.Positive(t, zc.n.Load(), "forced: no zero-copy send")
			} else {
				require.Zero(t, zc.n.Load(), "zero-copy sends to a peer on this host")
			}
		}
	})
}

// zcCount counts the zero-copy sends submitted to the backend it wraps.
type zcCount struct {
	backend.Backend
	n atomic.Int64
}

func (z *zcCount) wrap(be backend.Backend) backend.Backend { z.Backend = be; return z }

func (z *zcCount) Submit(op *backend.Op) error {
	if op.Kind == backend.KindSendZC {
		z.n.Add(1)
	}
	return z.Backend.Submit(op)
}

// ownedWriter is the zero-copy write of stream transports (stream.Conn).
type ownedWriter interface {
	transports.Transport
	WriteOwned(p []byte, done func(error)) error
}

// buffered reports the bytes queued for writing (stream.Conn).
type buffered interface{ Buffered() int }

// pushProducer writes chunks while not paused.
type pushProducer struct {
	t        transports.Transport
	chunk    []byte
	paused   bool
	pauses   int
	resumes  int
	stopped  bool
	written  int
	limit    int
	maxQueue int
}

func (p *pushProducer) PauseProducing()  { p.paused = true; p.pauses++ }
func (p *pushProducer) ResumeProducing() { p.paused = false; p.resumes++; p.produce() }
func (p *pushProducer) StopProducing()   { p.stopped = true }
func (p *pushProducer) produce() {
	for !p.paused && !p.stopped && p.written < p.limit {
		_ = p.t.Write(p.chunk)
		p.written += len(p.chunk)
		if q := p.t.(buffered).Buffered(); q > p.maxQueue {
			p.maxQueue = q
		}
	}
	if p.written >= p.limit && !p.stopped {
		p.stopped = true
		_ = p.t.LoseConnection()
	}
}

func testSlowReaderPausesPushProducer(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		var prod *pushProducer
		const total = 32 << 20
		f := transports.FactoryFunc(func(net.Addr) transports.Protocol {
			return &Recorder{OnMade: func(r *Recorder) {
				prod = &pushProducer{t: r.T, chunk: make([]byte, 16<<10), limit: total}
				require.NoError(t, r.T.RegisterProducer(prod, true))
				require.ErrorIs(t, r.T.RegisterProducer(prod, true), transports.ErrProducerRegistered)
				prod.produce()
			}}
		})
		p, err := k.Listen(h.Loop, k.NewAddr(t), f, transports.Watermarks{High: 256 << 10, Low: 64 << 10})
		require.NoError(t, err)
		c := Dial(t, k, p)
		// Do not read for a while: the producer must pause with a bounded queue.
		require.True(t, h.Eventually(5*time.Second, func() bool { return prod != nil && prod.paused }))
		time.Sleep(50 * time.Millisecond)
		n, err := io.Copy(io.Discard, c)
		require.NoError(t, err)
		require.Equal(t, int64(total), n)
		h.Do(func() {
			require.Greater(t, prod.pauses, 0)
			require.Greater(t, prod.resumes, 0)
			require.LessOrEqual(t, prod.maxQueue, 256<<10+16<<10, "queue grew past the high watermark")
			_ = p.Close()
		})
	})
}

func testPauseReadingHoldsData(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		p, built := Serve(t, k, h, func() *Recorder {
			return &Recorder{OnData: func(r *Recorder, _ []byte) {
				if r.Data.Len() >= 5 && r.Data.Len() < 10 {
					r.T.PauseReading()
				}
			}}
		})
		c := Dial(t, k, p)
		_, _ = c.Write([]byte("first"))
		require.True(t, h.Eventually(5*time.Second, func() bool { return len(built()) == 1 && built()[0].Data.Len() >= 5 }))
		_, _ = c.Write([]byte("second"))
		time.Sleep(50 * time.Millisecond)
		h.Do(func() {
			require.Equal(t, "first", built()[0].Data.String(), "data delivered while paused")
			built()[0].T.ResumeReading()
		})
		require.True(t, h.Eventually(5*time.Second, func() bool { return built()[0].Data.String() == "firstsecond" }))
	})
}
