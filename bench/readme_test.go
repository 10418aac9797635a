package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/bench/internal/harness"
)

func TestRewriteBlock(t *testing.T) {
	doc := "# T\n\nintro\n" + beginMarker + "\nold table\nold line\n" + endMarker + "\n\nafter\n"
	out, err := rewriteBlock([]byte(doc), "new table")
	require.NoError(t, err)
	require.Equal(t, "# T\n\nintro\n"+beginMarker+"\nnew table\n"+endMarker+"\n\nafter\n", string(out))
	again, err := rewriteBlock(out, "new table")
	require.NoError(t, err)
	require.Equal(t, string(out), string(again), "idempotent")
	empty, err := rewriteBlock([]byte(beginMarker+"\n"+endMarker+"\n"), "x\n")
	require.NoError(t, err)
	require.Equal(t, beginMarker+"\nx\n"+endMarker+"\n", string(empty))

	for name, bad := range map[string]string{
		"none":      "# T\nno markers\n",
		"no end":    beginMarker + "\nx\n",
		"no begin":  "x\n" + endMarker + "\n",
		"reversed":  endMarker + "\nx\n" + beginMarker + "\n",
		"twice":     beginMarker + "\n" + endMarker + "\n" + beginMarker + "\n" + endMarker + "\n",
		"same line": beginMarker + " " + endMarker + "\n",
	} {
		_, err := rewriteBlock([]byte(bad), "x")
		require.ErrorIs(t, err, errMarkers, name)
	}
	_, err = rewriteBlock([]byte(doc), "sneaky "+endMarker)
	require.Error(t, err)
}

// TestCompareReadme: `bench compare -from samples.json -readme README.md`
// rewrites the block with the side-by-side tables, the targets and the chart
// link, writes docs/bench.svg, and gives the same README when run again; a
// README without markers is refused before anything runs.
func TestCompareReadme(t *testing.T) {
	dir := t.TempDir()
	var samples []harness.Sample
	for rep := 1; rep <= 5; rep++ {
		for i, sys := range []string{"gyre-uring", "gyre-epoll", "net", "gnet", "c-liburing"} {
			cpu := []float64{6, 9, 10, 10, 7}[i] + 0.1*float64(rep)
			samples = append(samples, harness.Sample{Section: "main", Workload: wEcho50, System: sys, Impl: sys, Rep: rep, Tool: "load",
				Metrics:     harness.Metrics{RPS: 100000, P50us: 300, P99us: 900, P999us: 2000, Requests: 100000},
				CPUPerReqUs: cpu, UserPerReqUs: cpu / 4, SysPerReqUs: cpu * 3 / 4, CtxSwPerReq: 0.25})
			if sys != "c-liburing" {
				samples = append(samples, harness.Sample{Section: "main", Workload: wPing16, System: sys, Impl: sys, Rep: rep, Tool: "load",
					Metrics: harness.Metrics{RPS: 500000, P99us: 1000, Requests: 500000}, CPUPerReqUs: cpu / 8})
			}
		}
	}
	cond := conditions{Started: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC), GoVersion: "go1.x", Kernel: "Linux 6.18", CPUs: 2,
		Reps: 5, DurationS: 3, WarmupS: 1, ServerCPUs: "1", ClientCPUs: "0", Loops: 1, MainSection: "main",
		CServer: "c-liburing: built", Notes: []string{"c-liburing: built"}}
	b, err := json.Marshal(struct {
		Conditions conditions       `json:"conditions"`
		Samples    []harness.Sample `json:"samples"`
	}{cond, samples})
	require.NoError(t, err)
	js := filepath.Join(dir, "samples.json")
	require.NoError(t, os.WriteFile(js, b, 0o644))

	readme := filepath.Join(dir, "README.md")
	require.NoError(t, os.WriteFile(readme, []byte("# x\n\nno markers\n"), 0o644))
	require.Equal(t, 1, run([]string{"compare", "-from", js, "-readme", readme}), "no markers: refused")
	_, err = os.Stat(filepath.Join(dir, "docs", "bench.svg"))
	require.True(t, os.IsNotExist(err), "nothing written when refused")

	orig := "# x\n\n## Performance, honestly\n\n" + beginMarker + "\nstale\n" + endMarker + "\n\nKnobs: …\n"
	require.NoError(t, os.WriteFile(readme, []byte(orig), 0o644))
	require.Equal(t, 0, run([]string{"compare", "-from", js, "-readme", readme}))
	got, err := os.ReadFile(readme)
	require.NoError(t, err)
	s := string(got)
	require.True(t, strings.HasPrefix(s, "# x\n\n## Performance, honestly\n\n"+beginMarker+"\n"))
	require.True(t, strings.HasSuffix(s, endMarker+"\n\nKnobs: …\n"))
	require.NotContains(t, s, "stale")
	require.Contains(t, s, "Linux 6.18")
	require.Contains(t, s, "| workload | gyre-uring | gyre-epoll | net | gnet | c-liburing |")
	require.Contains(t, s, "| echo 64 B × 50 conns (bench load) | 6.30 [6.10–6.50] | 9.30 [9.10–9.50] | 10.3 [10.1–10.5] | 10.3 [10.1–10.5] | 7.30 [7.10–7.50] |")
	require.Contains(t, s, "| RESP PING pipelined 16 × 50 conns (bench load) | 0.79 [0.76–0.81] | 1.16 [1.14–1.19] | 1.29 [1.26–1.31] | 1.29 [1.26–1.31] | — |", "c-liburing: — on RESP")
	require.Contains(t, s, "1.57 / 4.72 · 0.25 cs")
	require.Contains(t, s, "| gyre-uring CPU/req ≤ 0.8× gnet | echo 64 B × 50 conns | 0.61× [0.60–0.62] (5) | met ✓ |")
	require.Contains(t, s, "| gyre-uring CPU/req ≤ 1.0× c-liburing | echo 64 B × 50 conns | 0.86× [0.86–0.87] (5) | met ✓ |")
	require.Contains(t, s, "| gyre-epoll CPU/req ≤ 1.0× gnet (epoll ≥ gnet) | echo 64 B × 50 conns | 0.90× [0.90–0.90] (5) | met ✓ |")
	require.Contains(t, s, "not measured: the harness has no redis-server row")
	require.Contains(t, s, "not measured: run with -quota")
	require.Contains(t, s, "](docs/bench.svg)")
	svg, err := os.ReadFile(filepath.Join(dir, "docs", "bench.svg"))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(svg), "<svg"))
	require.Contains(t, string(svg), "kernel")

	require.Equal(t, 0, run([]string{"compare", "-from", js, "-readme", readme}))
	again, err := os.ReadFile(readme)
	require.NoError(t, err)
	require.Equal(t, s, string(again), "a second rewrite from the same samples changes nothing")

	require.Equal(t, 1, run([]string{"compare", "-from", filepath.Join(dir, "missing.json")}))
	require.Equal(t, 2, run([]string{"compare", "stray"}))
}

// TestPlanCoversTargets: every workload a target names is in the full plan
// (with wrk and redis-benchmark), and -quick keeps the echo, RESP -P16 and
// HTTP ones.
func TestPlanCoversTargets(t *testing.T) {
	names := func(p plan) map[string]bool {
		m := map[string]bool{}
		for _, w := range p.workloads {
			m[w.Name] = true
		}
		return m
	}
	full := names(makePlan(false, 0, 0, 0, true, true))
	for _, tg := range issueTargets(conditions{MainSection: "main"}) {
		require.True(t, full[tg.Workload], "target workload %q not in the full plan", tg.Workload)
	}
	quick := names(makePlan(true, 0, 0, 0, true, true))
	for _, w := range []string{wEcho50, wPingPong, wEcho64K, wPing16, wHTTPWrk} {
		require.True(t, quick[w], "-quick lacks %q", w)
	}
	require.Len(t, quick, 6, "-quick stays about two minutes")
}
