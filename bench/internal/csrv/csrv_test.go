package csrv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gyre-io/gyre/bench/internal/harness"
	"github.com/gyre-io/gyre/bench/internal/loadgen"
)

// start runs the built server with args and returns its address and a stop
// function that sends SIGTERM, requires exit status 0 and returns stderr.
func start(t *testing.T, bin string, args ...string) (string, func() string) {
	t.Helper()
	addr, err := harness.FreePort()
	require.NoError(t, err)
	cmd := exec.Command(bin, append([]string{"-addr", addr}, args...)...)
	var stderr harness.SyncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("no READY line: %v; stderr: %s", err, stderr.String())
	}
	require.Equal(t, "READY "+addr+"\n", line)
	stopped := false
	stop := func() string {
		if stopped {
			return stderr.String()
		}
		stopped = true
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		select {
		case err := <-done:
			require.NoError(t, err, "exit status after SIGTERM; stderr: %s", stderr.String())
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("no exit within 10 s of SIGTERM; stderr: %s", stderr.String())
		}
		return stderr.String()
	}
	t.Cleanup(func() { stop() })
	return addr, stop
}

var statsRE = regexp.MustCompile(`stats accepted=(\d+) closed=(\d+) short_sends=(\d+) enobufs=(\d+)`)

func stats(t *testing.T, stderr string) (accepted, closed, short, enobufs int) {
	t.Helper()
	m := statsRE.FindStringSubmatch(stderr)
	require.NotNil(t, m, "no stats line in %q", stderr)
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	return n(m[1]), n(m[2]), n(m[3]), n(m[4])
}

// pattern is n bytes that differ from any shift of themselves by less
// than 251 bytes, so a reordered or repeated chunk cannot compare equal.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// exchange writes payload on a new connection, starting to read only after
// stall, and requires the same bytes back, then closes its write side and
// requires EOF from the server.
func exchange(t *testing.T, addr string, payload []byte, stall time.Duration) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	time.Sleep(stall)
	got, err := io.ReadAll(c)
	require.NoError(t, err, "reading the echo (EOF expected after the half-close)")
	require.NoError(t, <-werr)
	require.Equal(t, len(payload), len(got))
	require.True(t, bytes.Equal(payload, got), "echoed bytes differ")
}

// TestEchoServer builds echo.c and drives it, in its default mode and in its
// fallback modes, with the harness's echo shapes (64 B × 50, 4 KiB × 50,
// 64 KiB × 8, 64 B ping-pong; bounded by count and time) and with streams
// that force its slow paths: a reader that stalls while 24 MiB are written
// (send queue backs up; with 8 small buffers every recv runs out of
// buffers), a half-close with data still to echo, and connections reset
// mid-stream. Every byte is checked and every connection must be closed by
// the server before it exits 0 on SIGTERM.
func TestEchoServer(t *testing.T) {
	defer goleak.VerifyNone(t)
	if err := Available(); err != nil {
		t.Skipf("C server not buildable here: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := Build(ctx, t.TempDir())
	require.NoError(t, err)
	modes := []struct {
		name string
		args []string
	}{
		{"default", nil},
		{"plain-fds,no-defer", []string{"-plain-fds", "-no-defer"}},
		{"8x4KiB-buffers", []string{"-nbufs", "8", "-bufsize", "4096"}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			addr, stop := start(t, bin, m.args...)
			conns := 0
			for _, shape := range []struct{ conns, size int }{{50, 64}, {50, 4096}, {8, 64 << 10}, {1, 64}} {
				res, err := loadgen.Run(ctx, loadgen.Config{Proto: "echo", Addr: addr, Conns: shape.conns, Size: shape.size,
					Duration: 300 * time.Millisecond, MaxRequests: 3000})
				require.NoError(t, err)
				require.Zero(t, res.Errors, "%d × %d B", shape.conns, shape.size)
				require.Positive(t, res.Requests, "%d × %d B", shape.conns, shape.size)
				conns += shape.conns
			}
			exchange(t, addr, pattern(24<<20), 200*time.Millisecond)
			exchange(t, addr, pattern(100<<10), 0)
			conns += 2
			// Connections reset with data in flight: the server must drop
			// them and keep serving.
			for range 10 {
				c, err := net.Dial("tcp", addr)
				require.NoError(t, err)
				_, err = c.Write(pattern(256 << 10))
				require.NoError(t, err)
				require.NoError(t, c.(*net.TCPConn).SetLinger(0))
				require.NoError(t, c.Close())
				conns++
			}
			exchange(t, addr, pattern(1<<20), 0)
			conns++
			time.Sleep(100 * time.Millisecond) // let the last closes reach the server
			out := stop()
			accepted, closed, short, enobufs := stats(t, out)
			t.Logf("%s: accepted %d closed %d short sends %d recvs out of buffers %d", m.name, accepted, closed, short, enobufs)
			require.Equal(t, conns, accepted)
			require.Equal(t, accepted, closed, "every connection closed by the server")
			if m.name == "8x4KiB-buffers" {
				require.Positive(t, enobufs, "the stalled reader must exhaust 8 buffers")
			}
		})
	}
}

func TestBuildUnavailableAndBadArgs(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := Available()
	require.ErrorIs(t, err, ErrUnavailable)
	_, err = Build(context.Background(), t.TempDir())
	require.True(t, errors.Is(err, ErrUnavailable))
	require.Contains(t, err.Error(), "gcc")
}

func TestBadArguments(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("C server not buildable here: %v", err)
	}
	bin, err := Build(context.Background(), t.TempDir())
	require.NoError(t, err)
	for _, args := range [][]string{nil, {"-addr"}, {"-addr", "nocolon"}, {"-addr", "127.0.0.1:0", "-nbufs", "3"}, {"-bogus"}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "%v: %v %s", args, err, out)
		require.Equal(t, 2, ee.ExitCode(), "%v: %s", args, out)
		require.True(t, strings.Contains(string(out), "usage") || strings.Contains(string(out), "HOST:PORT"), "%v: %s", args, out)
	}
}
