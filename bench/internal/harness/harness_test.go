package harness

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const wrkOut = `Running 1s test @ http://127.0.0.1:7313/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   473.80us  451.19us   7.53ms   97.22%
    Req/Sec    76.14k     2.67k   79.63k    70.00%
  Latency Distribution
     50%  415.00us
     75%  468.00us
     90%  544.00us
     99%    2.34ms
  75614 requests in 1.00s, 9.37MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:  75338.56
Transfer/sec:      9.34MB
`

const rbOut = `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"PING_MBULK","900900.88","0.539","0.184","0.519","0.703","3.519","4.063"
`

func TestParseTools(t *testing.T) {
	m, err := ParseWrk(wrkOut)
	require.NoError(t, err)
	require.InDelta(t, 75338.56, m.RPS, 1e-6)
	require.InDelta(t, 415.0, m.P50us, 1e-6)
	require.InDelta(t, 2340.0, m.P99us, 1e-6)
	require.Equal(t, -1.0, m.P999us)
	require.Equal(t, int64(75614), m.Requests)
	require.Equal(t, int64(3), m.Errors)
	require.InDelta(t, 1.0, m.WindowS, 1e-9)
	_, err = ParseWrk("unable to connect")
	require.Error(t, err)

	m, err = ParseRedisBenchmark(rbOut, 100000)
	require.NoError(t, err)
	require.InDelta(t, 900900.88, m.RPS, 1e-6)
	require.InDelta(t, 519.0, m.P50us, 1e-6)
	require.InDelta(t, 3519.0, m.P99us, 1e-6)
	require.Equal(t, int64(100000), m.Requests)
	_, err = ParseRedisBenchmark("", 1)
	require.Error(t, err)

	m, err = ParseResult("MEASURE start\nMEASURE end\nRESULT proto=echo op=- conns=50 size=64 depth=1 window_s=1.000 requests=1234 rps=1234 p50_us=10.5 p99_us=20.0 p999_us=30.0 mean_us=11.0 max_us=40.0 errors=2\n")
	require.NoError(t, err)
	require.Equal(t, Metrics{RPS: 1234, P50us: 10.5, P99us: 20, P999us: 30, Requests: 1234, Errors: 2, WindowS: 1}, m)
	_, err = ParseResult("nothing")
	require.Error(t, err)
}

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses, utime 250, stime 50 ticks.
	line := "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 1000000 200 18446744073709551615\n"
	user, sys, err := parseStat([]byte(line))
	require.NoError(t, err)
	require.Equal(t, 2500*time.Millisecond, user)
	require.Equal(t, 500*time.Millisecond, sys)
	_, _, err = parseStat([]byte("garbage"))
	require.Error(t, err)
	self, err := CPUTime(os.Getpid())
	require.NoError(t, err)
	require.GreaterOrEqual(t, self, time.Duration(0))

	vol, invol := parseCtxSwitches([]byte("Name:\tx\nvoluntary_ctxt_switches:\t17\nnonvoluntary_ctxt_switches:\t4\n"))
	require.Equal(t, int64(17), vol)
	require.Equal(t, int64(4), invol)
	vol, invol = parseCtxSwitches([]byte("Name:\tx\n"))
	require.Zero(t, vol+invol)

	// This process: a sleep is a voluntary context switch of this thread,
	// which ReadUsage must see in the sum over /proc/self/task/*/status.
	u0, err := ReadUsage(os.Getpid())
	require.NoError(t, err)
	for range 3 {
		time.Sleep(time.Millisecond)
	}
	u1, err := ReadUsage(os.Getpid())
	require.NoError(t, err)
	d := u1.Sub(u0)
	require.Positive(t, d.VolCS, "voluntary context switches over three sleeps")
	require.GreaterOrEqual(t, d.User, time.Duration(0))
	require.Equal(t, d.User+d.Sys, d.CPU())
	require.Equal(t, d.VolCS+d.InvolCS, d.CtxSwitches())
}

func TestStatAndSummarize(t *testing.T) {
	s := StatOf([]float64{3, 1, 2, -1})
	require.Equal(t, Stat{Median: 2, Min: 1, Max: 3, N: 3}, s)
	require.Equal(t, 2.5, StatOf([]float64{1, 2, 3, 4}).Median)
	require.Equal(t, 0, StatOf([]float64{-1}).N)
	require.True(t, StatOf([]float64{1.1, 1.3}).OneSided())
	require.False(t, StatOf([]float64{0.9, 1.3}).OneSided())

	var samples []Sample
	for rep := 1; rep <= 5; rep++ {
		samples = append(samples,
			Sample{Section: "s", Workload: "w", System: "gyre", Rep: rep, Metrics: Metrics{RPS: 200, P50us: 5, P99us: 9, P999us: 12, Requests: 10}, CPUPerReqUs: 5},
			Sample{Section: "s", Workload: "w", System: "net", Rep: rep, Metrics: Metrics{RPS: 100, P50us: 6, P99us: 10, P999us: 20, Requests: 10}, CPUPerReqUs: 10},
			Sample{Section: "s", Workload: "w", System: "gnet", Rep: rep, Error: "boom"},
		)
	}
	g := Summarize(samples)
	require.Len(t, g, 1)
	require.Len(t, g[0].Rows, 3)
	gy := g[0].Rows[0]
	require.Equal(t, "gyre", gy.System)
	require.Equal(t, 2.0, gy.RPSvsNet.Median)
	require.Equal(t, 0.5, gy.CPUvsNet.Median)
	require.True(t, gy.CPUvsNet.OneSided())
	require.Equal(t, 0, gy.CPUvsGnet.N)
	require.Equal(t, 5, g[0].Rows[2].Failed)
	var md strings.Builder
	WriteMarkdown(&md, g)
	require.Contains(t, md.String(), "| gyre | 200 [200–200] | 2.00× [2.00–2.00] ✓ |")
	require.Contains(t, md.String(), "| gnet | failed: boom |")
	var svg strings.Builder
	require.NoError(t, WriteSVG(&svg, "t<>", g))
	require.True(t, strings.HasPrefix(svg.String(), "<svg"))
	require.Contains(t, svg.String(), "t&lt;&gt;")
	require.True(t, strings.HasSuffix(svg.String(), "</svg>\n"))
}

func TestQuotaCgroup(t *testing.T) {
	q, err := NewQuota(0.5)
	if err != nil {
		t.Skipf("no cgroup cpu quota here: %v", err)
	}
	defer q.Close()
	cmd := exec.Command("sleep", "5")
	require.NoError(t, cmd.Start())
	require.NoError(t, q.Add(cmd.Process.Pid))
	cg, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cgroup")
	require.NoError(t, err)
	require.Contains(t, string(cg), "gyre-bench-")
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	dir := q.dir
	require.NoError(t, q.Close())
	_, err = os.Stat(dir)
	require.True(t, os.IsNotExist(err), "cgroup directory must be removed")
	_, err = NewQuota(0)
	require.Error(t, err)
}

func TestEvalTargets(t *testing.T) {
	var samples []Sample
	add := func(wl, sys string, reps int, cpu func(rep int) float64) {
		for rep := 1; rep <= reps; rep++ {
			samples = append(samples, Sample{Section: "main", Workload: wl, System: sys, Rep: rep,
				Metrics: Metrics{RPS: 1000 * cpu(rep), P99us: 10 * cpu(rep), Requests: 100}, CPUPerReqUs: cpu(rep)})
		}
	}
	one := func(int) float64 { return 10 }
	add("a", "ref", 5, one)
	add("a", "low", 5, func(rep int) float64 { return 7 + 0.1*float64(rep) }) // 0.71–0.75
	add("a", "mixed", 5, func(rep int) float64 { return []float64{7, 7, 7, 9, 7}[rep-1] })
	add("a", "high", 5, func(int) float64 { return 12 })
	add("b", "ref", 3, one)
	add("b", "low", 3, func(int) float64 { return 5 })
	samples = append(samples, Sample{Section: "main", Workload: "a", System: "broken", Rep: 1, Error: "boom"})
	tg := func(wl, sys string, limit float64) Target {
		return Target{Goal: sys, Section: "main", Workload: wl, System: sys, Ref: "ref", Metric: "cpu", Limit: limit}
	}
	absent := tg("a", "c-liburing", 1)
	absent.Absent = "no C row"
	skip := tg("a", "low", 1.5)
	skip.Metric, skip.AtLeast, skip.Skip = "rps", true, "run with -quota"
	atLeast := tg("a", "high", 1.1)
	atLeast.Metric, atLeast.AtLeast = "rps", true
	rs := EvalTargets(samples, []Target{
		tg("a", "low", 0.8), tg("a", "mixed", 0.8), tg("a", "high", 0.8), tg("b", "low", 0.8),
		absent, tg("a", "broken", 1), tg("zzz", "low", 1), skip, atLeast, tg("b", "low", 0.3),
	})
	require.Len(t, rs, 10)
	require.Equal(t, "not met: 3 repetitions (a finding needs 5), median on the wrong side", rs[9].Status,
		"too few repetitions is no finding either way")
	require.Equal(t, Met, rs[0].Status)
	require.InDelta(t, 0.73, rs[0].Ratio.Median, 1e-9)
	require.Equal(t, NotShown, rs[1].Status, "median 0.7 but one repetition at 0.9")
	require.Equal(t, Missed, rs[2].Status)
	require.Equal(t, "not met: 3 repetitions (a finding needs 5)", rs[3].Status)
	require.Equal(t, "not measured: no C row", rs[4].Status)
	require.Equal(t, "not measured: no repetition where both broken and ref succeeded", rs[5].Status)
	require.Equal(t, "not measured: workload not in this run", rs[6].Status)
	require.Equal(t, "not measured: run with -quota", rs[7].Status)
	require.Equal(t, 0, rs[7].Ratio.N)
	require.Equal(t, Met, rs[8].Status, "req/s 1.2× ≥ 1.1 in every repetition")
	var md strings.Builder
	WriteTargets(&md, rs)
	require.Contains(t, md.String(), "| low | a | 0.73× [0.71–0.75] (5) | met ✓ |")
	require.Contains(t, md.String(), "| c-liburing | a | – | not measured: no C row |")
}
