package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gyre-io/gyre/bench/internal/csrv"
	"github.com/gyre-io/gyre/bench/internal/harness"
	"github.com/gyre-io/gyre/transports/tls/tlstest"
)

// plan is what one compare run does.
type plan struct {
	reps             int
	warmup, duration time.Duration
	workloads        []harness.Workload
	loopsWorkloads   []harness.Workload // 1 vs 2 loops section (full run only)
}

func makePlan(quick bool, reps int, warmup, duration time.Duration, haveWrk, haveRB bool) plan {
	p := plan{reps: 5, warmup: time.Second, duration: 3 * time.Second}
	if quick {
		p = plan{reps: 3, warmup: 300 * time.Millisecond, duration: time.Second}
	}
	if reps > 0 {
		p.reps = reps
	}
	if warmup > 0 {
		p.warmup = warmup
	}
	if duration > 0 {
		p.duration = duration
	}
	echo50 := harness.Workload{Name: wEcho50, Proto: "echo", Tool: "load", Conns: 50, Size: 64, Depth: 1}
	ping16 := harness.Workload{Name: wPing16, Proto: "resp", Tool: "load", Conns: 50, Size: 64, Depth: 16, Op: "ping"}
	p.workloads = []harness.Workload{
		echo50,
		{Name: wPingPong, Proto: "echo", Tool: "load", Conns: 1, Size: 64, Depth: 1},
		{Name: wEcho64K, Proto: "echo", Tool: "load", Conns: 8, Size: 64 << 10, Depth: 1},
	}
	if !quick {
		p.workloads = append(p.workloads, harness.Workload{Name: wEcho4K, Proto: "echo", Tool: "load", Conns: 50, Size: 4 << 10, Depth: 1})
	}
	p.workloads = append(p.workloads, ping16)
	if !quick { // -quick keeps the targets' workloads and one UDP shape (about two minutes)
		p.workloads = append(p.workloads, harness.Workload{Name: "RESP SET/GET 64 B × 50 conns", Proto: "resp", Tool: "load", Conns: 50, Size: 64, Depth: 1, Op: "setget"})
	}
	p.workloads = append(p.workloads, harness.Workload{Name: "UDP echo 64 B × 50 sockets", Proto: "udpecho", Tool: "load", Conns: 50, Size: 64, Depth: 1, Impls: udpImpls})
	if !quick {
		p.workloads = append(p.workloads, harness.Workload{Name: "UDP echo 1,400 B × 50 sockets", Proto: "udpecho", Tool: "load", Conns: 50, Size: 1400, Depth: 1, Impls: udpImpls})
	}
	if haveWrk {
		p.workloads = append(p.workloads, harness.Workload{Name: wHTTPWrk, Proto: "http", Tool: "wrk", Conns: 50})
	}
	if !haveWrk || !quick {
		p.workloads = append(p.workloads, harness.Workload{Name: wHTTPLoad, Proto: "http", Tool: "load", Conns: 50, Depth: 1})
	}
	if haveRB && !quick {
		n := int64(p.duration.Seconds() * 400000)
		p.workloads = append(p.workloads,
			harness.Workload{Name: wRB16, Proto: "resp", Tool: "redis-benchmark", Conns: 50, Depth: 16, Size: 64, RBTest: "ping_mbulk", RBRequests: max(n, 100000)},
			harness.Workload{Name: "RESP SET 64 B × 50 conns", Proto: "resp", Tool: "redis-benchmark", Conns: 50, Depth: 1, Size: 64, RBTest: "set", RBRequests: max(n/5, 20000)},
			harness.Workload{Name: "RESP GET 64 B × 50 conns", Proto: "resp", Tool: "redis-benchmark", Conns: 50, Depth: 1, Size: 64, RBTest: "get", RBRequests: max(n/5, 20000)},
		)
	}
	if !quick {
		p.loopsWorkloads = []harness.Workload{echo50, ping16}
		// TLS (transports/tls vs crypto/tls; gnet has none): full run only.
		p.workloads = append(p.workloads,
			harness.Workload{Name: "TLS echo 64 B × 50 conns", Proto: "echo", Tool: "load", Conns: 50, Size: 64, Depth: 1, TLS: true},
			harness.Workload{Name: "TLS echo 16 KiB × 1 conn ping-pong", Proto: "echo", Tool: "load", Conns: 1, Size: 16 << 10, Depth: 1, TLS: true},
			harness.Workload{Name: "HTTPS hello × 50 conns (bench load)", Proto: "http", Tool: "load", Conns: 50, Depth: 1, TLS: true},
		)
	}
	return p
}

// Workload names the targets refer to.
const (
	wEcho50   = "echo 64 B × 50 conns"
	wPingPong = "echo 64 B × 1 conn ping-pong"
	wEcho64K  = "echo 64 KiB × 8 conns"
	wEcho4K   = "echo 4 KiB × 50 conns"
	wPing16   = "RESP PING pipelined 16 × 50 conns"
	wRB16     = "RESP PING_MBULK -P 16 × 50 conns"
	wHTTPWrk  = "HTTP hello × 50 conns"
	wHTTPLoad = "HTTP hello × 50 conns (bench load)"
)

// udpImpls run the UDP workloads (gnet's UDP is not wired into bench serve).
var udpImpls = []string{"gyre-uring", "gyre-epoll", "net"}

func systemsFor(loops int) []harness.System {
	suffix := ""
	if loops > 1 {
		suffix = fmt.Sprintf("×%d", loops)
	}
	return []harness.System{
		{Name: "gyre-uring" + suffix, Impl: "gyre-uring", Loops: loops},
		{Name: "gyre-epoll" + suffix, Impl: "gyre-epoll", Loops: loops},
		{Name: "net", Impl: "net", Loops: 1},
		{Name: "gnet" + suffix, Impl: "gnet", Loops: loops},
	}
}

// conditions is recorded beside the samples in the JSON file.
type conditions struct {
	Started      time.Time `json:"started"`
	GoVersion    string    `json:"go_version"`
	Kernel       string    `json:"kernel"`
	CPUs         int       `json:"cpus"`
	Quick        bool      `json:"quick"`
	Reps         int       `json:"reps"`
	WarmupS      float64   `json:"warmup_s"`
	DurationS    float64   `json:"duration_s"`
	ServerCPUs   string    `json:"server_cpus"`
	ClientCPUs   string    `json:"client_cpus"`
	Quota        string    `json:"quota,omitempty"`
	Loops        int       `json:"loops"`
	Args         []string  `json:"args"`
	Notes        []string  `json:"notes"`
	MeasuredFrom string    `json:"server_cpu_source"`
	// MainSection labels the main matrix's samples (the targets' section).
	MainSection string `json:"main_section"`
	// CServer says whether the c-liburing row ran, and if not, why.
	CServer string `json:"c_server"`
	// RedisServer says whether the redis-server row ran, and if not, why.
	RedisServer string `json:"redis_server,omitempty"`
}

// redisArgv is the redis-server command line for an address: no
// persistence, no protected mode (loopback only anyway).
func redisArgv(bin string) func(addr string) []string {
	return func(addr string) []string {
		host, port, _ := net.SplitHostPort(addr)
		return []string{bin, "--bind", host, "--port", port, "--save", "", "--appendonly", "no",
			"--protected-mode", "no", "--daemonize", "no", "--logfile", ""}
	}
}

// redisVersion is redis-server's version line, or "version unknown".
func redisVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "version unknown"
	}
	return strings.TrimSpace(string(out))
}

func compareMain(args []string) int {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "short run: 3 repetitions of 1 s of the targets' workloads and UDP 64 B (about two minutes)")
	out := fs.String("out", "bench-out", "directory for samples.json and chart.svg")
	reps := fs.Int("reps", 0, "repetitions (default 5, quick 3)")
	dur := fs.Duration("duration", 0, "measured window per run (default 3s, quick 1s)")
	warm := fs.Duration("warmup", 0, "warm-up per run (default 1s, quick 300ms)")
	loops := fs.Int("loops", 1, "event loops for the gyre and gnet servers in the main matrix")
	quota := fs.Float64("quota", 0, "cap each server at this many CPUs with a cgroup (e.g. 0.5); 0: no cap")
	only := fs.String("only", "", "run only workloads whose name contains this (comma-separated)")
	serverCPU := fs.String("server-cpu", "1", "CPU list the server is pinned to (taskset -c)")
	clientCPU := fs.String("client-cpu", "0", "CPU list the client is pinned to (taskset -c)")
	cServer := fs.Bool("c-liburing", true, "add the C liburing echo server row (built with gcc when liburing's headers exist)")
	readme := fs.String("readme", "", "rewrite the generated block of this README (between "+beginMarker+" and "+endMarker+") and write the chart to docs/bench.svg beside it")
	from := fs.String("from", "", "do not run: report from this samples.json of an earlier run")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // -h: usage printed, as asked
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bench compare: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *readme != "" {
		// Fail before a long run, not after it.
		if err := checkReadme(*readme); err != nil {
			fmt.Fprintln(os.Stderr, "bench compare:", err)
			return 1
		}
	}
	if *from != "" {
		cond, samples, err := readSamples(*from)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench compare:", err)
			return 1
		}
		if err := report(os.Stdout, cond, samples, "", *readme); err != nil {
			fmt.Fprintln(os.Stderr, "bench compare:", err)
			return 1
		}
		return 0
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench compare:", err)
		return 1
	}
	_, werr := exec.LookPath("wrk")
	_, rerr := exec.LookPath("redis-benchmark")
	p := makePlan(*quick, *reps, *warm, *dur, werr == nil, rerr == nil)
	if *only != "" {
		keep := func(ws []harness.Workload) []harness.Workload {
			var r []harness.Workload
			for _, w := range ws {
				for _, s := range strings.Split(*only, ",") {
					if strings.Contains(w.Name, s) {
						r = append(r, w)
						break
					}
				}
			}
			return r
		}
		p.workloads, p.loopsWorkloads = keep(p.workloads), keep(p.loopsWorkloads)
	}
	ncpu := runtime.NumCPU()
	cond := conditions{
		Started: time.Now(), GoVersion: runtime.Version(), Kernel: kernel(), CPUs: ncpu, Quick: *quick,
		Reps: p.reps, WarmupS: p.warmup.Seconds(), DurationS: p.duration.Seconds(),
		ServerCPUs: *serverCPU, ClientCPUs: *clientCPU, Loops: *loops, Args: args,
		MeasuredFrom: "utime+stime of the server process (/proc/PID/stat, all threads incl. io_uring workers) between the client's MEASURE start/end lines (wrk, redis-benchmark: over the whole client run); user = utime, kernel = stime; context switches summed over /proc/PID/task/*/status",
	}
	multiCPUs := "0-" + fmt.Sprint(ncpu-1)
	if !harness.HaveTaskset() {
		*serverCPU, *clientCPU, multiCPUs = "", "", ""
		cond.ServerCPUs, cond.ClientCPUs = "", ""
		cond.Notes = append(cond.Notes, "taskset not found: server and client run unpinned")
	} else if ncpu < 2 {
		*serverCPU, *clientCPU, multiCPUs = "", "", ""
		cond.Notes = append(cond.Notes, "only one CPU: server and client share it (unpinned)")
	}
	if werr != nil {
		cond.Notes = append(cond.Notes, "wrk not installed: HTTP driven by bench load only")
	}
	if rerr != nil {
		cond.Notes = append(cond.Notes, "redis-benchmark not installed: RESP driven by bench load only")
	} else if *quick {
		cond.Notes = append(cond.Notes, "redis-benchmark runs are in the full run only (not -quick)")
	}
	var q *harness.Quota
	section := "main"
	if *loops > 1 {
		section = fmt.Sprintf("main, %d loops", *loops)
	}
	if *quota > 0 {
		q, err = harness.NewQuota(*quota)
		if err != nil {
			cond.Notes = append(cond.Notes, fmt.Sprintf("CPU quota %.2f skipped: %v", *quota, err))
		} else {
			defer q.Close()
			cond.Quota = fmt.Sprintf("%.2f CPU (%s)", *quota, q.Kind())
			section = fmt.Sprintf("%s, server quota %.2f CPU", section, *quota)
		}
	}
	cond.MainSection = section
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	systems := systemsFor(*loops)
	hasProto := func(proto string) bool {
		for _, w := range append(slices.Clone(p.workloads), p.loopsWorkloads...) {
			if w.Proto == proto && !w.TLS {
				return true
			}
		}
		return false
	}
	switch {
	case !hasProto("echo"):
		// No echo workload in this run: nothing for the C server to do.
	case !*cServer:
		cond.CServer = "c-liburing row left out (-c-liburing=false)"
	case *loops > 1:
		cond.CServer = "c-liburing row left out: it is one thread, the matrix runs -loops " + fmt.Sprint(*loops)
	default:
		dir, err := os.MkdirTemp("", "gyre-bench-c")
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench compare:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin, err := csrv.Build(ctx, dir)
		if err != nil {
			cond.CServer = fmt.Sprintf("c-liburing row skipped: %v", err)
		} else {
			cond.CServer = "c-liburing: bench/internal/csrv/src/echo.c built with gcc -O2 (one thread; echo workloads only)"
			systems = append(systems, harness.System{Name: "c-liburing", Impl: "c-liburing", Loops: 1, Cmd: []string{bin}, Protos: []string{"echo"}})
		}
	}
	if cond.CServer != "" {
		cond.Notes = append(cond.Notes, cond.CServer)
	}
	switch rs, err := exec.LookPath("redis-server"); {
	case !hasProto("resp"):
		// No RESP workload in this run.
	case err != nil:
		cond.RedisServer = "redis-server row skipped: redis-server is not installed"
	case *loops > 1:
		cond.RedisServer = "redis-server row left out: the matrix runs -loops " + fmt.Sprint(*loops)
	default:
		cond.RedisServer = "redis-server: " + redisVersion(rs) + ", persistence off (--save '' --appendonly no), default threads; RESP workloads only"
		systems = append(systems, harness.System{Name: "redis-server", Impl: "redis-server", Loops: 1, Argv: redisArgv(rs), Protos: []string{"resp"}})
	}
	if cond.RedisServer != "" {
		cond.Notes = append(cond.Notes, cond.RedisServer)
	}
	opts := harness.Options{
		Self: self, Reps: p.reps, Warmup: p.warmup, Duration: p.duration,
		ServerCPUs: *serverCPU, ClientCPUs: *clientCPU, MultiServerCPUs: multiCPUs,
		Quota: q, Section: section, Progress: os.Stderr,
	}
	for _, w := range p.workloads {
		if w.TLS {
			// A CA and a certificate for the run (name localhost), never kept.
			dir, err := os.MkdirTemp("", "gyre-bench-tls")
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench compare:", err)
				return 1
			}
			defer os.RemoveAll(dir)
			pki, err := tlstest.New(dir, "localhost")
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench compare:", err)
				return 1
			}
			opts.TLSCert, opts.TLSKey, opts.TLSCA = pki.CertFile, pki.KeyFile, pki.CAFile
			cond.Notes = append(cond.Notes, "TLS rows: TLS 1.3 (crypto/tls defaults), gyre transports/tls vs net + crypto/tls; gnet has no TLS")
			break
		}
	}
	if *loops > 1 {
		opts.ServerCPUs = multiCPUs
		opts.ClientCPUs = ""
		cond.Notes = append(cond.Notes, fmt.Sprintf("-loops %d: servers may use CPUs %s and the client is unpinned", *loops, multiCPUs))
	}
	fmt.Fprintf(os.Stderr, "bench compare: %d workloads × %d reps × %d systems (+ %d loops workloads); server CPUs %q, client CPUs %q\n",
		len(p.workloads), p.reps, len(systems), len(p.loopsWorkloads), opts.ServerCPUs, opts.ClientCPUs)
	samples := harness.RunMatrix(ctx, opts, p.workloads, systems)
	if len(p.loopsWorkloads) > 0 && ctx.Err() == nil {
		lo := opts
		lo.Section = "1 vs 2 loops"
		lo.ClientCPUs = ""
		lo.ServerCPUs = *serverCPU
		cond.Notes = append(cond.Notes, fmt.Sprintf("1 vs 2 loops: ×2 systems and net use CPUs %s, gyre-uring (1 loop) CPU %s; the client is unpinned", multiCPUs, *serverCPU))
		sys := []harness.System{
			{Name: "gyre-uring", Impl: "gyre-uring", Loops: 1},
			{Name: "gyre-uring×2", Impl: "gyre-uring", Loops: 2},
			{Name: "gyre-epoll×2", Impl: "gyre-epoll", Loops: 2},
			{Name: "net", Impl: "net", Loops: 2},
			{Name: "gnet×2", Impl: "gnet", Loops: 2},
		}
		samples = append(samples, harness.RunMatrix(ctx, lo, p.loopsWorkloads, sys)...)
	}
	if err := report(os.Stdout, cond, samples, *out, *readme); err != nil {
		fmt.Fprintln(os.Stderr, "bench compare:", err)
		return 1
	}
	if ctx.Err() != nil {
		return 1
	}
	return 0
}

// report prints the markdown report of samples, writes samples.json and
// chart.svg to out (unless out is ""), and rewrites readme's generated block
// (unless readme is "").
func report(w io.Writer, cond conditions, samples []harness.Sample, out, readme string) error {
	groups := harness.Summarize(samples)
	targets := harness.EvalTargets(samples, issueTargets(cond))
	fmt.Fprintf(w, "# gyre bench compare (%s)\n\n", map[bool]string{true: "quick", false: "full"}[cond.Quick])
	fmt.Fprintf(w, "Machine: %d CPUs, %s, %s. Shared and noisy: treat single runs with suspicion; a ratio is a finding only when every repetition is on one side of 1 over ≥5 interleaved repetitions (marked ✓).\n\n", cond.CPUs, cond.Kernel, cond.GoVersion)
	fmt.Fprintf(w, "Conditions: %d repetitions, systems interleaved A B C D per repetition; warm-up %vs, window %vs; server pinned to CPU %q, client (bench load / wrk -t1 / redis-benchmark) to CPU %q. Server CPU/req = %s ÷ requests in the window. Ratios are per repetition against net (and gnet) of the same repetition: median [min–max].\n",
		cond.Reps, cond.WarmupS, cond.DurationS, cond.ServerCPUs, cond.ClientCPUs, cond.MeasuredFrom)
	for _, n := range cond.Notes {
		fmt.Fprintf(w, "\nNote: %s.", n)
	}
	fmt.Fprintln(w)
	harness.WriteMarkdown(w, groups)
	fmt.Fprintf(w, "\n## Targets (issue 16)\n\n")
	harness.WriteTargets(w, targets)
	title := fmt.Sprintf("gyre vs net, gnet and C liburing — %s, %d CPUs (shared, noisy machine)", cond.Started.Format("2006-01-02 15:04"), cond.CPUs)
	if out != "" {
		if err := writeOut(out, cond, samples, groups); err != nil {
			return err
		}
		fmt.Fprintf(w, "\nSamples: %s, chart: %s\n", filepath.Join(out, "samples.json"), filepath.Join(out, "chart.svg"))
	}
	if readme != "" {
		svg := filepath.Join(filepath.Dir(readme), "docs", "bench.svg")
		if err := os.MkdirAll(filepath.Dir(svg), 0o755); err != nil {
			return err
		}
		if err := writeSVG(svg, title, groups); err != nil {
			return err
		}
		if err := updateReadme(readme, readmeBlock(cond, groups, targets, "docs/bench.svg")); err != nil {
			return err
		}
		fmt.Fprintf(w, "\nREADME: %s (generated block rewritten), chart: %s\n", readme, svg)
	}
	return nil
}

func writeOut(dir string, cond conditions, samples []harness.Sample, groups []harness.Group) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(struct {
		Conditions conditions       `json:"conditions"`
		Samples    []harness.Sample `json:"samples"`
	}{cond, samples}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "samples.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	title := fmt.Sprintf("gyre vs net, gnet and C liburing — %s, %d CPUs (shared, noisy machine)", cond.Started.Format("2006-01-02 15:04"), cond.CPUs)
	return writeSVG(filepath.Join(dir, "chart.svg"), title, groups)
}

func writeSVG(path, title string, groups []harness.Group) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return errors.Join(harness.WriteSVG(f, title, groups), f.Close())
}

// readSamples reads a samples.json written by writeOut.
func readSamples(path string) (conditions, []harness.Sample, error) {
	var v struct {
		Conditions conditions       `json:"conditions"`
		Samples    []harness.Sample `json:"samples"`
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return v.Conditions, nil, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v.Conditions, nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(v.Samples) == 0 {
		return v.Conditions, nil, fmt.Errorf("%s: no samples", path)
	}
	if v.Conditions.MainSection == "" {
		v.Conditions.MainSection = v.Samples[0].Section
	}
	return v.Conditions, v.Samples, nil
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "Linux"
	}
	return "Linux " + strings.TrimSpace(string(b))
}
