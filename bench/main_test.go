package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/bench/internal/csrv"
	"github.com/gyre-io/gyre/bench/internal/harness"
	"github.com/gyre-io/gyre/reactor"
)

// childEnv makes the test binary behave as the bench command (so tests can
// start `serve` and `load` as child processes without building anything).
const childEnv = "GYRE_BENCH_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func self(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	t.Setenv(childEnv, "1")
	return exe
}

// backendAvailable reports whether a gyre backend can be created here.
func backendAvailable(kind reactor.BackendKind) error {
	l, err := reactor.New(reactor.Config{Backend: kind, IgnoreEnv: true})
	if err != nil {
		return err
	}
	l.Stop()
	<-l.Done()
	return nil
}

func skipUnavailable(t *testing.T, impl string) {
	t.Helper()
	kind := map[string]reactor.BackendKind{"gyre-uring": reactor.Uring, "gyre-epoll": reactor.Epoll}
	if k, ok := kind[impl]; ok {
		if err := backendAvailable(k); err != nil {
			t.Skipf("%s unavailable here: %v", impl, err)
		}
	}
}

// TestServeStartStop starts `bench serve` for every implementation and
// protocol, checks it answers, and that SIGTERM makes it exit 0.
func TestServeStartStop(t *testing.T) {
	exe := self(t)
	for _, impl := range impls {
		for _, proto := range []string{"echo", "resp", "http"} {
			t.Run(impl+"/"+proto, func(t *testing.T) {
				skipUnavailable(t, impl)
				addr, err := harness.FreePort()
				require.NoError(t, err)
				cmd := exec.Command(exe, "serve", "-proto", proto, "-impl", impl, "-addr", addr)
				out, err := cmd.StdoutPipe()
				require.NoError(t, err)
				var stderr harness.SyncBuffer
				cmd.Stderr = &stderr
				require.NoError(t, cmd.Start())
				waited := false
				defer func() {
					if !waited {
						_ = cmd.Process.Kill()
						_ = cmd.Wait()
					}
				}()
				line, err := bufio.NewReader(out).ReadString('\n')
				require.NoError(t, err, stderr.String())
				require.Equal(t, "READY "+addr+"\n", line)

				lout, err := exec.Command(exe, "load", "-proto", proto, "-op", "setget", "-addr", addr, "-conns", "2", "-depth", "2",
					"-warmup", "0s", "-duration", "100ms").Output()
				require.NoError(t, err)
				m, err := harness.ParseResult(string(lout))
				require.NoError(t, err)
				require.Zero(t, m.Errors)
				require.Positive(t, m.Requests)
				require.Contains(t, string(lout), "MEASURE start\n")
				require.Contains(t, string(lout), "MEASURE end\n")

				require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				select {
				case err := <-done:
					waited = true
					require.NoError(t, err, "exit status after SIGTERM; stderr: %s", stderr.String())
				case <-time.After(10 * time.Second):
					t.Fatalf("%s did not exit within 10s of SIGTERM", impl)
				}
			})
		}
	}
}

func TestServeMultiLoop(t *testing.T) {
	exe := self(t)
	for _, impl := range []string{"gyre-uring", "gyre-epoll", "gnet"} {
		t.Run(impl, func(t *testing.T) {
			skipUnavailable(t, impl)
			addr, err := harness.FreePort()
			require.NoError(t, err)
			srv, err := harness.StartServer(exe, "echo", impl, addr, 2, "")
			require.NoError(t, err)
			out, _, err := harness.RunClient(context.Background(), []string{exe, "load", "-proto", "echo", "-addr", srv.Addr,
				"-conns", "8", "-warmup", "0s", "-duration", "500ms"}, "", srv.PID()) // long enough to see requests on a loaded machine
			require.NoError(t, err)
			m, err := harness.ParseResult(out)
			require.NoError(t, err)
			require.Zero(t, m.Errors)
			require.Positive(t, m.Requests)
			require.NoError(t, srv.Stop())
		})
	}
}

func TestBadArguments(t *testing.T) {
	require.Equal(t, 2, run(nil))
	require.Equal(t, 2, run([]string{"nope"}))
	require.Equal(t, 1, run([]string{"serve", "-impl", "bogus", "-addr", "127.0.0.1:0"}))
	require.Equal(t, 1, run([]string{"serve", "-proto", "gopher", "-addr", "127.0.0.1:0"}))
	require.Equal(t, 2, run([]string{"serve", "-loops", "0"}))
	addr, err := harness.FreePort()
	require.NoError(t, err)
	require.Equal(t, 1, run([]string{"load", "-addr", addr, "-duration", "10ms"}))
}

// TestCompareMatrixSmall runs the harness end to end: one tiny workload, one
// repetition, net and gnet (and gyre where available), via child processes.
func TestCompareMatrixSmall(t *testing.T) {
	exe := self(t)
	sys := []harness.System{{Name: "net", Impl: "net", Loops: 1}, {Name: "gnet", Impl: "gnet", Loops: 1}}
	if backendAvailable(reactor.Uring) == nil {
		sys = append(sys, harness.System{Name: "gyre-uring", Impl: "gyre-uring", Loops: 1})
	}
	// The C liburing row where it builds (harness.StartCommand; echo only).
	if err := csrv.Available(); err != nil {
		t.Logf("no c-liburing row: %v", err)
	} else {
		bin, err := csrv.Build(context.Background(), t.TempDir())
		require.NoError(t, err)
		sys = append(sys, harness.System{Name: "c-liburing", Impl: "c-liburing", Loops: 1, Cmd: []string{bin}, Protos: []string{"echo"}})
	}
	cpus := ""
	if harness.HaveTaskset() {
		cpus = "0"
	}
	samples := harness.RunMatrix(context.Background(), harness.Options{
		Self: exe, Reps: 1, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond,
		ServerCPUs: cpus, ClientCPUs: cpus, Section: "test",
	}, []harness.Workload{
		{Name: "echo", Proto: "echo", Tool: "load", Conns: 4, Size: 64, Depth: 1},
		{Name: "resp", Proto: "resp", Tool: "load", Conns: 2, Depth: 1},
	}, sys)
	cRow := 0
	if sys[len(sys)-1].Impl == "c-liburing" {
		cRow = 1
	}
	require.Len(t, samples, 2*len(sys)-cRow, "c-liburing runs echo only")
	for _, s := range samples {
		require.Empty(t, s.Error, s.System)
		require.Positive(t, s.Requests, s.System)
		require.Zero(t, s.Errors, s.System)
		require.GreaterOrEqual(t, s.CPUPerReqUs, 0.0)
		require.InDelta(t, s.CPUPerReqUs, s.UserPerReqUs+s.SysPerReqUs, 1e-6)
		require.GreaterOrEqual(t, s.CtxSwPerReq, 0.0)
		require.False(t, s.Impl == "c-liburing" && s.Workload != "echo")
	}
	groups := harness.Summarize(samples)
	require.Len(t, groups, 2)
	var md strings.Builder
	harness.WriteMarkdown(&md, groups)
	require.Contains(t, md.String(), "| net |")
	dir := t.TempDir()
	require.NoError(t, writeOut(dir, conditions{}, samples, groups))
	svg, err := os.ReadFile(dir + "/chart.svg")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(svg), "<svg"))
	_, err = os.Stat(dir + "/samples.json")
	require.False(t, errors.Is(err, os.ErrNotExist))
}

// TestCompareMatrixUDP: the UDP echo workload end to end (bench serve
// -proto udpecho, bench load over UDP) on net and gyre; gnet, not in the
// workload's Impls, is skipped, not failed.
func TestCompareMatrixUDP(t *testing.T) {
	exe := self(t)
	sys := []harness.System{{Name: "net", Impl: "net", Loops: 1}, {Name: "gnet", Impl: "gnet", Loops: 1}}
	for _, k := range []reactor.BackendKind{reactor.Uring, reactor.Epoll} {
		if backendAvailable(k) == nil {
			sys = append(sys, harness.System{Name: "gyre-" + k.String(), Impl: "gyre-" + k.String(), Loops: 1})
		}
	}
	samples := harness.RunMatrix(context.Background(), harness.Options{
		Self: exe, Reps: 1, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond, Section: "test",
	}, []harness.Workload{
		{Name: "udp 64", Proto: "udpecho", Tool: "load", Conns: 4, Size: 64, Depth: 1, Impls: udpImpls},
		{Name: "udp 1400", Proto: "udpecho", Tool: "load", Conns: 4, Size: 1400, Depth: 2, Impls: udpImpls},
	}, sys)
	require.Len(t, samples, 2*(len(sys)-1), "gnet skipped")
	for _, s := range samples {
		require.NotEqual(t, "gnet", s.Impl)
		require.Empty(t, s.Error, s.System)
		require.Positive(t, s.Requests, s.System)
		require.Zero(t, s.Errors, s.System)
	}
	require.Equal(t, 1, run([]string{"serve", "-proto", "udpecho", "-impl", "gnet", "-addr", "127.0.0.1:0"}))
}
