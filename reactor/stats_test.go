package reactor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/uring"
)

// TestStatsFallbackAndLogs: Auto falling back to epoll is counted and is the
// one line a loop logs in a quiet life (start, timers, calls, stop).
func TestStatsFallbackAndLogs(t *testing.T) {
	var logs bytes.Buffer
	cfg := reactor.Config{IgnoreEnv: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	reactor.SetOpenUring(&cfg, func(backend.Config) (backend.Backend, error) {
		return nil, fmt.Errorf("injected: %w: %w", uring.ErrUnavailable, syscall.EPERM)
	})
	l, err := reactor.New(cfg)
	require.NoError(t, err)
	require.EqualValues(t, 1, l.Stats().Fallback)
	require.Equal(t, "epoll", l.Stats().Backend)
	require.NoError(t, l.Call(func() { l.CallLater(time.Millisecond, l.Stop) }))
	require.NoError(t, l.Run(context.Background()))
	require.EqualValues(t, 1, l.Stats().Fallback)
	require.Equal(t, 1, bytes.Count(logs.Bytes(), []byte("\n")), logs.String())
	require.Contains(t, logs.String(), "io_uring unavailable, using epoll")

	// A second loop on the same logger (one loop per CPU) falls back and
	// counts it too, without a second line.
	l2, err := reactor.New(cfg)
	require.NoError(t, err)
	require.EqualValues(t, 1, l2.Stats().Fallback)
	require.NoError(t, l2.Call(l2.Stop))
	require.NoError(t, l2.Run(context.Background()))
	require.Equal(t, 1, bytes.Count(logs.Bytes(), []byte("\n")), logs.String())

	// A loop that got what it asked for logs nothing and counts no fallback.
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		logs.Reset()
		l, err := reactor.New(reactor.Config{Backend: kind, Logger: cfg.Logger})
		require.NoError(t, err)
		require.NoError(t, l.Call(func() { l.CallLater(time.Millisecond, l.Stop) }))
		require.NoError(t, l.Run(context.Background()))
		s := l.Stats()
		require.Zero(t, s.Fallback)
		require.NotZero(t, s.Turns)
		require.NotZero(t, s.Waits+s.Polls)
		require.Zero(t, s.OpsInFlight)
		require.Empty(t, logs.String())
	})
}

// TestStatsPanicsCounted: every recovered callback panic is counted, also
// with an OnError hook.
func TestStatsPanicsCounted(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		h.Do(func() { h.CallLater(0, func() { panic("kaboom") }) })
		require.NoError(t, h.Call(func() { panic(errors.New("call panic")) }))
		require.True(t, reactortest.WaitUntil(5*time.Second, func() bool { return h.Stats().Panics == 2 }), "%+v", h.Stats())
		h.ReportError(errors.New("not a panic"))
		require.EqualValues(t, 2, h.Stats().Panics)
	})
}

// TestPublishExpvar: the loops' counters appear in expvar's JSON under the
// name given; a taken name is an error, not a panic.
func TestPublishExpvar(t *testing.T) {
	a := reactortest.Start(t, reactor.Epoll)
	b := reactortest.Start(t, reactor.Epoll)
	name := fmt.Sprintf("gyre-test-%d", time.Now().UnixNano())
	require.Nil(t, expvar.Get(name)) // nothing published until asked
	require.NoError(t, reactor.PublishExpvar(name, a.Loop, b.Loop))
	err := reactor.PublishExpvar(name, a.Loop)
	require.ErrorIs(t, err, reactor.ErrExpvarName)

	a.Do(func() {})
	b.Do(func() {})
	var doc struct {
		Total reactor.Stats   `json:"total"`
		Loops []reactor.Stats `json:"loops"`
	}
	raw := expvar.Get(name).String()
	require.NoError(t, json.Unmarshal([]byte(raw), &doc), raw)
	require.Len(t, doc.Loops, 2)
	require.Equal(t, "epoll", doc.Total.Backend)
	require.Equal(t, doc.Loops[0].Turns+doc.Loops[1].Turns, doc.Total.Turns)
	for _, k := range []string{"ConnsOpen", "ConnsTotal", "BytesIn", "BytesOut", "OpsInFlight", "Completions", "Waits",
		"Polls", "MaxBatch", "BufferExhaustions", "Fallback", "Panics", "CQOverflow"} {
		require.Contains(t, raw, `"`+k+`":`)
	}
}

// BenchmarkStats: reading the counters from another goroutine.
func BenchmarkStats(b *testing.B) {
	h := reactortest.Start(b, reactor.Epoll)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = h.Stats()
	}
}
