package endpoint

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/reactor"
)

// childEnv makes the test binary a socket-activated server (systemdChild).
const childEnv = "GYRE_ENDPOINT_TEST_CHILD"

// systemdChild listens on the description in childEnv on a loop of
// GYRE_BACKEND's kind, prints "ready ADDR" and LISTEN_* as seen afterwards,
// serves until SIGTERM and exits 0.
func systemdChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	loop, err := reactor.New(reactor.Config{})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	p, err := Listen(loop, os.Getenv(childEnv), echo.Factory{})
	if err != nil {
		fmt.Println("error", err)
		loop.Stop()
		<-loop.Done()
		return 1
	}
	flags, _ := unixFcntl(3)
	fmt.Printf("ready %s env=%q/%q/%q cloexec=%v\n", p.Addr(), os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES"), flags&syscall.FD_CLOEXEC != 0)
	if err := loop.Run(ctx); err != nil {
		fmt.Println("error", err)
		return 1
	}
	return 0
}

func unixFcntl(fd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// startChild re-executes the test binary with files as descriptors 3, 4, …
// and env; the child sets LISTEN_PID to its own pid through a shell-free
// trick: the variable is given as "self", which the child cannot know in
// advance, so the parent uses cmd.Env with a placeholder replaced by
// systemd-socket-activate's convention — LISTEN_PID must be the child's pid,
// hence the child is started through /bin/sh -c 'LISTEN_PID=$$ exec …'.
func startChild(t *testing.T, desc string, files []*os.File, env ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	cmd := exec.Command(sh, "-c", `LISTEN_PID=$$ exec "$0" -test.run=^$`, os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+desc)
	cmd.Env = append(cmd.Env, env...)
	cmd.ExtraFiles = files
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, bufio.NewReader(out)
}

func readyLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	line := make(chan string, 1)
	go func() { s, _ := r.ReadString('\n'); line <- s }()
	select {
	case s := <-line:
		return strings.TrimSpace(s)
	case <-time.After(20 * time.Second):
		t.Fatal("child did not start")
		return ""
	}
}

func stopChild(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("child did not exit on SIGTERM")
	}
}

// A socket-activated child (LISTEN_FDS/LISTEN_PID, descriptors from 3,
// passed with ExtraFiles) serves on the inherited TCP and UNIX sockets, by
// index and by LISTEN_FDNAMES name, on the backend of GYRE_BACKEND (the
// child inherits it); the variables are unset and the descriptor made
// close-on-exec afterwards.
func TestSystemdActivation(t *testing.T) {
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer tl.Close()
	tf, err := tl.(*net.TCPListener).File()
	require.NoError(t, err)
	defer tf.Close()
	path := t.TempDir() + "/sd.sock"
	ul, err := net.Listen("unix", path)
	require.NoError(t, err)
	defer ul.Close()
	uf, err := ul.(*net.UnixListener).File()
	require.NoError(t, err)
	defer uf.Close()
	files := []*os.File{tf, uf}

	cases := []struct {
		desc, network, addr string
		env                 []string
	}{
		{"systemd:domain=INET:index=0", "tcp", tl.Addr().String(), []string{"LISTEN_FDS=2"}},
		{"systemd:domain=UNIX:index=1", "unix", path, []string{"LISTEN_FDS=2"}},
		{"systemd:domain=UNIX:name=ctl", "unix", path, []string{"LISTEN_FDS=2", "LISTEN_FDNAMES=web:ctl"}},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			cmd, out := startChild(t, c.desc, files, c.env...)
			line := readyLine(t, out)
			require.True(t, strings.HasPrefix(line, "ready "), line)
			require.Contains(t, line, `env=""/""/""`, "LISTEN_* unset")
			require.Contains(t, line, "cloexec=true")
			netEcho(t, c.network, c.addr, nil)
			stopChild(t, cmd)
		})
	}
	// Wrong domain, index out of range, LISTEN_PID of another process:
	// ErrNoSystemdSocket, exit 1.
	for _, c := range []struct{ desc, want string }{
		{"systemd:domain=INET6:index=0", "descriptor 3 is not of domain INET6: it is INET"},
		{"systemd:domain=INET:index=2", "index 2, but 2 descriptors"},
		{"systemd:domain=INET:name=nope", `no descriptor named "nope"`},
	} {
		cmd, out := startChild(t, c.desc, files, "LISTEN_FDS=2")
		line := readyLine(t, out)
		require.Contains(t, line, "no such socket-activation descriptor", c.desc)
		require.Contains(t, line, c.want, c.desc)
		require.Error(t, cmd.Wait())
	}
}

// The environment is read as sd_listen_fds(3) says.
func TestParseListenFDs(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	v := parseListenFDs(env(), 42)
	require.NoError(t, v.err)
	require.Empty(t, v.fds, "not activated")
	v = parseListenFDs(env("LISTEN_PID", "41", "LISTEN_FDS", "2"), 42)
	require.NoError(t, v.err)
	require.Empty(t, v.fds, "another process's descriptors")
	v = parseListenFDs(env("LISTEN_PID", "42", "LISTEN_FDS", "2"), 42)
	require.NoError(t, v.err)
	require.Equal(t, []int{3, 4}, v.fds)
	require.Equal(t, []string{"unknown", "unknown"}, v.names)
	v = parseListenFDs(env("LISTEN_PID", "42", "LISTEN_FDS", "2", "LISTEN_FDNAMES", "a:b"), 42)
	require.Equal(t, []string{"a", "b"}, v.names)
	fd, err := v.pick(SystemdSelector{Name: "b"})
	require.NoError(t, err)
	require.Equal(t, 4, fd)
	for _, bad := range [][]string{
		{"LISTEN_PID", "x", "LISTEN_FDS", "1"},
		{"LISTEN_PID", "42", "LISTEN_FDS", "one"},
		{"LISTEN_PID", "42"},
		{"LISTEN_PID", "42", "LISTEN_FDS", "2", "LISTEN_FDNAMES", "a"},
	} {
		v := parseListenFDs(env(bad...), 42)
		require.Error(t, v.err, "%q", bad)
		_, err := v.pick(SystemdSelector{})
		require.ErrorIs(t, err, ErrNoSystemdSocket)
	}
	_ = strconv.Itoa
}
