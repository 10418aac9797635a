package harness

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strconv"
	"time"
)

// System is one server implementation under test.
type System struct {
	// Name labels the system in reports ("gyre-uring", "gyre-uring×2").
	Name string
	// Impl is the `bench serve -impl` value.
	Impl string
	// Loops is the `bench serve -loops` value.
	Loops int
	// Cmd, if set, is a server command run instead of `bench serve`, with
	// "-addr HOST:PORT" appended (see StartCommand). Such a server has no
	// TLS.
	Cmd []string
	// Argv, if set, is a foreign server's command line for an address
	// (redis-server): run instead of Cmd or `bench serve`, ready once its
	// address accepts a TCP connection (StartDialed). No TLS.
	Argv func(addr string) []string
	// Protos, if set, limits the system to workloads of these protocols.
	Protos []string
}

// Workload is one load shape and the tool that drives it.
type Workload struct {
	Name  string
	Proto string // server protocol: echo, resp, http, udpecho
	Tool  string // "load" (bench load), "wrk" or "redis-benchmark"
	Conns int
	Size  int
	Depth int
	Op    string // bench load RESP op: ping, setget
	// RBTest is redis-benchmark's -t; RBRequests its -n.
	RBTest     string
	RBRequests int64
	// TLS: the server speaks TLS (Options.TLSCert, TLSKey) and bench load
	// trusts Options.TLSCA; systems without TLS (gnet) are skipped.
	TLS bool
	// Impls, if set, limits the workload to these implementations
	// (udpecho has no gnet server).
	Impls []string
}

// runs reports whether w runs on s.
func (w Workload) runs(s System) bool {
	if w.TLS && (s.Impl == "gnet" || s.Cmd != nil || s.Argv != nil) {
		return false
	}
	if len(s.Protos) > 0 && !slices.Contains(s.Protos, w.Proto) {
		return false
	}
	return len(w.Impls) == 0 || slices.Contains(w.Impls, s.Impl)
}

// Options are the fixed conditions of a matrix run.
type Options struct {
	// Self is the bench binary (re-executed as `serve` and `load`).
	Self string
	// Reps is the number of interleaved repetitions.
	Reps int
	// Warmup and Duration of each bench load run (wrk gets whole seconds).
	Warmup, Duration time.Duration
	// ServerCPUs and ClientCPUs are taskset CPU lists ("" leaves a side
	// unpinned). Multi-loop systems get MultiServerCPUs.
	ServerCPUs, ClientCPUs, MultiServerCPUs string
	// Quota, if set, caps each server's CPU time.
	Quota *Quota
	// Section labels the samples ("main", "loops", "quota 0.5").
	Section string
	// Progress receives one line per run.
	Progress io.Writer
	// TLSCert and TLSKey are the server's PEM files for TLS workloads (for
	// the name localhost), TLSCA the CA bench load trusts.
	TLSCert, TLSKey, TLSCA string
}

// Sample is one measured run.
type Sample struct {
	Section  string `json:"section"`
	Workload string `json:"workload"`
	System   string `json:"system"`
	Impl     string `json:"impl"`
	Loops    int    `json:"loops"`
	Rep      int    `json:"rep"`
	Tool     string `json:"tool"`
	Metrics
	ServerCPUs  float64 `json:"server_cpu_s"`
	CPUPerReqUs float64 `json:"server_cpu_per_req_us"`
	// The user-space (utime) and kernel (stime) shares of ServerCPUs, and
	// of CPUPerReqUs.
	ServerUserS  float64 `json:"server_user_s"`
	ServerSysS   float64 `json:"server_sys_s"`
	UserPerReqUs float64 `json:"server_user_per_req_us"`
	SysPerReqUs  float64 `json:"server_sys_per_req_us"`
	// Server context switches in the window (summed over its threads) and
	// their number per request.
	VolCtxSw     int64   `json:"server_voluntary_ctxt_switches"`
	InvolCtxSw   int64   `json:"server_nonvoluntary_ctxt_switches"`
	CtxSwPerReq  float64 `json:"server_ctxt_switches_per_req"`
	ServerCPUSet string  `json:"server_cpuset"`
	ClientCPUSet string  `json:"client_cpuset"`
	QuotaCPUs    float64 `json:"quota_cpus,omitempty"`
	Error        string  `json:"error,omitempty"`
}

// RunMatrix runs every workload × repetition × system, interleaving the
// systems within each repetition (A B C D A B C D …).
func RunMatrix(ctx context.Context, o Options, workloads []Workload, systems []System) []Sample {
	var out []Sample
	total := 0
	for _, w := range workloads {
		for _, s := range systems {
			if w.runs(s) {
				total += o.Reps
			}
		}
	}
	n := 0
	for _, w := range workloads {
		for rep := 1; rep <= o.Reps; rep++ {
			for _, s := range systems {
				if !w.runs(s) {
					continue
				}
				if ctx.Err() != nil {
					return out
				}
				n++
				smp := runOne(ctx, o, w, s, rep)
				out = append(out, smp)
				if o.Progress != nil {
					status := fmt.Sprintf("%9.0f req/s  p99 %7.1f µs  cpu/req %6.2f µs  errors %d", smp.RPS, smp.P99us, smp.CPUPerReqUs, smp.Errors)
					if smp.Error != "" {
						status = "ERROR " + smp.Error
					}
					fmt.Fprintf(o.Progress, "[%3d/%d] %-8s %-34s rep %d %-14s %s\n", n, total, o.Section, w.Name, rep, s.Name, status)
				}
			}
		}
	}
	return out
}

func runOne(ctx context.Context, o Options, w Workload, s System, rep int) (smp Sample) {
	smp = Sample{Section: o.Section, Workload: w.Name, System: s.Name, Impl: s.Impl, Loops: s.Loops, Rep: rep, Tool: w.Tool,
		ServerCPUSet: o.ServerCPUs, ClientCPUSet: o.ClientCPUs}
	smp.P50us, smp.P99us, smp.P999us = -1, -1, -1
	if s.Loops > 1 {
		smp.ServerCPUSet = o.MultiServerCPUs
	}
	if o.Quota != nil {
		smp.QuotaCPUs = o.Quota.CPUs
	}
	fail := func(err error) Sample {
		smp.Error = err.Error()
		return smp
	}
	addr, err := FreePort()
	if err != nil {
		return fail(err)
	}
	var serveTLS, loadTLS []string
	if w.TLS {
		serveTLS, loadTLS = []string{"-tls-cert", o.TLSCert, "-tls-key", o.TLSKey}, []string{"-tls-ca", o.TLSCA}
	}
	var srv *Server
	if s.Argv != nil {
		srv, err = StartDialed(s.Name+"/"+w.Proto, s.Argv(addr), addr, smp.ServerCPUSet)
	} else if s.Cmd != nil {
		srv, err = StartCommand(s.Name+"/"+w.Proto, append(slices.Clone(s.Cmd), "-addr", addr), addr, smp.ServerCPUSet)
	} else {
		srv, err = StartServer(o.Self, w.Proto, s.Impl, addr, s.Loops, smp.ServerCPUSet, serveTLS...)
	}
	if err != nil {
		return fail(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = srv.Stop()
		}
	}()
	if o.Quota != nil {
		if err := o.Quota.Add(srv.PID()); err != nil {
			return fail(err)
		}
	}
	host, port, _ := net.SplitHostPort(srv.Addr)
	var argv []string
	switch w.Tool {
	case "load":
		argv = []string{o.Self, "load", "-proto", w.Proto, "-addr", srv.Addr, "-conns", strconv.Itoa(w.Conns),
			"-size", strconv.Itoa(w.Size), "-depth", strconv.Itoa(w.Depth), "-op", w.Op,
			"-warmup", o.Warmup.String(), "-duration", o.Duration.String()}
		argv = append(argv, loadTLS...)
	case "wrk":
		secs := int(math.Max(1, math.Round(o.Duration.Seconds())))
		argv = []string{"wrk", "-t1", "-c" + strconv.Itoa(w.Conns), "-d" + strconv.Itoa(secs) + "s", "--latency", "http://" + srv.Addr + "/"}
	case "redis-benchmark":
		argv = []string{"redis-benchmark", "-h", host, "-p", port, "-c", strconv.Itoa(w.Conns), "-n", strconv.FormatInt(w.RBRequests, 10),
			"-P", strconv.Itoa(max(w.Depth, 1)), "-d", strconv.Itoa(max(w.Size, 1)), "-t", w.RBTest, "--csv"}
	default:
		return fail(fmt.Errorf("unknown tool %q", w.Tool))
	}
	cctx, cancel := context.WithTimeout(ctx, o.Warmup+o.Duration+60*time.Second)
	defer cancel()
	out, win, err := RunClient(cctx, argv, o.ClientCPUs, srv.PID())
	if err != nil {
		return fail(err)
	}
	var m Metrics
	switch w.Tool {
	case "load":
		m, err = ParseResult(out)
	case "wrk":
		m, err = ParseWrk(out)
	default:
		m, err = ParseRedisBenchmark(out, w.RBRequests)
	}
	if err != nil {
		return fail(err)
	}
	smp.Metrics = m
	if m.Requests == 0 {
		return fail(fmt.Errorf("no request completed in the window (errors %d)", m.Errors))
	}
	u := win.Usage
	smp.ServerCPUs, smp.ServerUserS, smp.ServerSysS = u.CPU().Seconds(), u.User.Seconds(), u.Sys.Seconds()
	smp.VolCtxSw, smp.InvolCtxSw = u.VolCS, u.InvolCS
	n := float64(m.Requests)
	smp.CPUPerReqUs = smp.ServerCPUs * 1e6 / n
	smp.UserPerReqUs = smp.ServerUserS * 1e6 / n
	smp.SysPerReqUs = smp.ServerSysS * 1e6 / n
	smp.CtxSwPerReq = float64(u.CtxSwitches()) / n
	stopped = true
	if err := srv.Stop(); err != nil {
		smp.Error = err.Error()
	}
	return smp
}
