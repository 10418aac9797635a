package main_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
)

var (
	buildOnce sync.Once
	bin       string
	buildErr  error
)

// build compiles the example once per test binary.
func build(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the example")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gyre-run-")
		if err != nil {
			buildErr = err
			return
		}
		bin = filepath.Join(dir, "run")
		out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	require.NoError(t, buildErr)
	return bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bin != "" {
		_ = os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// backends are the -backend values to test: GYRE_BACKEND alone if set.
func backends() []string {
	if v := os.Getenv(reactor.EnvBackend); v != "" {
		return []string{v}
	}
	return []string{"uring", "epoll"}
}

type result struct {
	code           int
	stdout, stderr string
}

// runCmd runs the example with stdin, returning its exit code and output.
func runCmd(t *testing.T, backend string, stdin io.Reader, args ...string) result {
	t.Helper()
	cmd := exec.Command(build(t), append([]string{"-backend", backend, "--"}, args...)...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Start())
	code := exitCode(t, cmd)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// TestRun: the example pipes stdin, stdout and stderr through the loop and
// exits like a shell: the child's code, 128+signal, 127 when not found,
// 141 for a child killed by SIGPIPE when our stdout's reader went away;
// SIGTERM sent to it reaches the child.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example")
	}
	in := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	for _, be := range backends() {
		t.Run(be, func(t *testing.T) {
			r := runCmd(t, be, bytes.NewReader(in), "cat")
			require.Equal(t, 0, r.code, r.stderr)
			require.Equal(t, len(in), len(r.stdout))
			require.True(t, r.stdout == string(in))

			r = runCmd(t, be, nil, "sh", "-c", "echo out; echo err >&2; exit 7")
			require.Equal(t, result{7, "out\n", "err\n"}, r)

			r = runCmd(t, be, nil, "sh", "-c", "kill -KILL $$")
			require.Equal(t, 128+int(syscall.SIGKILL), r.code)

			r = runCmd(t, be, nil, "gyre-no-such-command")
			require.Equal(t, 127, r.code)
			require.Contains(t, r.stderr, "not found")

			// SIGTERM to the example, once the child runs, reaches the child.
			cmd, pr := startPiped(t, be, "sh", "-c", "echo ready; exec sleep 30")
			buf := make([]byte, 6)
			_, err := io.ReadFull(pr, buf)
			require.NoError(t, err)
			require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
			require.Equal(t, 128+int(syscall.SIGTERM), exitCode(t, cmd))
			require.NoError(t, pr.Close())

			// Our stdout's reader goes away: the child gets EPIPE/SIGPIPE
			// on its stdout, as in a shell pipeline.
			cmd, pr = startPiped(t, be, "seq", "10000000")
			buf = buf[:4]
			_, err = io.ReadFull(pr, buf)
			require.NoError(t, err)
			require.Equal(t, "1\n2\n", string(buf))
			require.NoError(t, pr.Close())
			require.Equal(t, 128+int(syscall.SIGPIPE), exitCode(t, cmd))

			r = runCmd(t, be, strings.NewReader(""))
			require.Equal(t, 2, r.code, "no command")
		})
	}
}

// startPiped starts the example with its stdout on a pipe whose read end
// it returns.
func startPiped(t *testing.T, backend string, args ...string) (*exec.Cmd, *os.File) {
	t.Helper()
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	cmd := exec.Command(build(t), append([]string{"-backend", backend, "--"}, args...)...)
	cmd.Stdout = pw
	require.NoError(t, cmd.Start())
	require.NoError(t, pw.Close())
	return cmd, pr
}

// exitCode waits (bounded) for cmd and returns its exit code (-1 if a
// signal killed it).
func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("the example did not exit")
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	require.NoError(t, err)
	return 0
}
