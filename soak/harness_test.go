package soak

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/backend/faulty"
	"github.com/gyre-io/gyre/reactor/reactortest"
)

// This file is the machinery every soak shares: the seed set, one subtest
// per backend, case and seed (with the replay line of a failing seed), and
// the harness around one run: a loop whose backend the fault injector wraps,
// the baseline of descriptors and goroutines, and the checks that every op
// reached its final completion, no delayed call is left, no callback
// panicked, and descriptors and goroutines are back to the baseline.

// ciSeeds is the fixed set every `go test` runs on each backend.
var ciSeeds = []uint64{1, 2, 3, 4, 5, 6, 7, 8}

// gatedSeeds maps a seed to the bug it finds and that is not fixed yet;
// such a seed is skipped with that note.
var gatedSeeds = map[uint64]string{}

func seeds(t *testing.T) []uint64 {
	if v := os.Getenv("GYRE_SOAK_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("GYRE_SOAK_SEED: %v", err)
		}
		return []uint64{s}
	}
	if v := os.Getenv("GYRE_SOAK_SEEDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("GYRE_SOAK_SEEDS: want a positive count, got %q", v)
		}
		out := make([]uint64, n)
		for i := range out {
			out[i] = uint64(i + 1)
		}
		return out
	}
	return ciSeeds
}

// eachSeed runs f as the subtest BACKEND/CASE/seed=N for every backend,
// case and seed, and prints how to replay a seed that failed.
func eachSeed(t *testing.T, cases []string, f func(t *testing.T, kind reactor.BackendKind, c string, seed uint64)) {
	ss := seeds(t)
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		for _, c := range cases {
			for _, seed := range ss {
				t.Run(fmt.Sprintf("%s/seed=%d", c, seed), func(t *testing.T) {
					if why, ok := gatedSeeds[seed]; ok {
						t.Skip(why)
					}
					f(t, kind, c, seed)
					if t.Failed() {
						top, rest, _ := strings.Cut(t.Name(), "/")
						t.Logf("FAILING SEED %d (replay: GYRE_SOAK_SEED=%d GYRE_BACKEND=%s go test ./soak/ -run '^%s$/^%s$' -v)",
							seed, seed, kind, top, rest)
					}
				})
			}
		}
	})
}

// harness is one soak run's loop, wrapped by the fault injector, with the
// baseline it must return to.
type harness struct {
	t        *testing.T
	loop     *reactortest.Loop
	fb       *faulty.Backend
	baseline goleak.Option
	fds      int
}

// startHarness takes the baseline and starts a loop on kind whose backend
// the injector wraps with seed (GYRE_SOAK_DEBUG_OFF=fsdr turns off, per
// letter, failed ops, short transfers, delays and reordering). It returns
// nil when the backend is unavailable (the test is then skipped).
func startHarness(t *testing.T, kind reactor.BackendKind, seed uint64) *harness {
	h := &harness{t: t, baseline: goleak.IgnoreCurrent(), fds: reactortest.FDCount()}
	cfg := reactor.Config{
		WrapBackend: func(be backend.Backend) backend.Backend {
			fc := faulty.Config{Seed: seed}
			off := map[byte]*float64{'f': &fc.FaultRate, 's': &fc.ShortRate, 'd': &fc.DelayRate, 'r': &fc.ReorderRate}
			for _, ch := range []byte(os.Getenv("GYRE_SOAK_DEBUG_OFF")) {
				if p := off[ch]; p != nil {
					*p = -1
				}
			}
			h.fb = faulty.New(be, fc)
			return h.fb
		},
		DrainTimeout: 2 * time.Second,
	}
	h.loop = reactortest.Start(t, kind, cfg)
	if t.Skipped() {
		return nil
	}
	return h
}

// settle waits until every op reached its final completion (the loop's and
// the injector's accounting), no delayed call is pending and no lent buffer
// is out, and returns what was injected.
func (h *harness) settle() faulty.Stats {
	var inflight, pending int
	var inj faulty.Stats
	ok := h.loop.Eventually(5*time.Second, func() bool {
		inflight, pending, inj = h.loop.InFlight(), h.loop.PendingCalls(), h.fb.Injected()
		return inflight == 0 && pending == 0 && inj.OpsInFlight == 0 && inj.BuffersOut == 0
	})
	if !ok {
		h.t.Errorf("not back to rest: InFlight=%d PendingCalls=%d injector=%+v", inflight, pending, inj)
	}
	if inj.BadReleases != 0 {
		h.t.Errorf("buffers released that were not lent: %d", inj.BadReleases)
	}
	return inj
}

// stop stops the loop and checks that no callback panicked and that
// descriptors and goroutines are back to the baseline. check runs between
// the loop's end and the descriptor count (nil: none).
func (h *harness) stop(inj faulty.Stats, check func()) {
	t := h.t
	h.loop.StopWait()
	for _, err := range h.loop.Errors() {
		var pe *reactor.PanicError
		if errors.As(err, &pe) {
			t.Errorf("callback panicked: %v\n%s", pe, pe.Stack)
		}
	}
	if check != nil {
		check()
	}
	if n := reactortest.FDCount(); n != h.fds {
		t.Errorf("descriptors: %d before, %d after", h.fds, n)
	}
	goleak.VerifyNone(t, h.baseline)
	t.Logf("injected: %+v", inj)
}
