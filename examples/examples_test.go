// Package examples_test builds the example servers and checks their command
// line contract: -listen and -addr, -backend (default GYRE_BACKEND, else auto), serving in
// the foreground, and a clean stop with exit status 0 on SIGINT or SIGTERM.
package examples_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports/tls/tlstest"
	"github.com/gyre-io/gyre/uring"
)

var examples = []string{"echo", "http", "resp"}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// build compiles every example once per test binary.
func build(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the examples")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "gyre-examples-")
		if buildErr != nil {
			return
		}
		args := []string{"build", "-o", binDir + "/"}
		for _, e := range examples {
			args = append(args, "./"+e)
		}
		out, err := exec.Command(goTool, args...).CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	require.NoError(t, buildErr)
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var listening = regexp.MustCompile(`listening addr=(\S+) backend=(\S+)`)

// server is a running example server.
type server struct {
	cmd     *exec.Cmd
	addr    string
	backend string
	stderr  *lockedBuf
	waitErr chan error
}

// start runs example name with env (added to this process's environment,
// with GYRE_BACKEND removed) and args, and waits for its "listening" line.
func start(t *testing.T, name string, env []string, args ...string) *server {
	t.Helper()
	if !slices.Contains(args, "-listen") && !slices.Contains(args, "-addr") {
		args = append([]string{"-addr", "127.0.0.1:0"}, args...)
	}
	return startCmd(t, name, exec.Command(filepath.Join(build(t), name), args...), env)
}

// startCmd is start for a prepared command (e.g. under an activator).
func startCmd(t *testing.T, name string, cmd *exec.Cmd, env []string) *server {
	t.Helper()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, reactor.EnvBackend+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	pr, pw := io.Pipe()
	s := &server{cmd: cmd, stderr: &lockedBuf{}, waitErr: make(chan error, 1)}
	cmd.Stderr = pw
	require.NoError(t, cmd.Start())
	go func() { s.waitErr <- cmd.Wait(); pw.Close() }()
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.stderr.add(sc.Text())
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m
			}
		}
		close(found)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case m, ok := <-found:
		if !ok {
			err := <-s.waitErr
			t.Fatalf("%s exited before listening: %v\n%s", name, err, s.stderr)
		}
		s.addr, s.backend = m[1], m[2]
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not start listening", name)
	}
	return s
}

// lockedBuf is the server's stderr, written by the reading goroutine.
type lockedBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuf) add(line string) {
	b.mu.Lock()
	b.buf.WriteString(line + "\n")
	b.mu.Unlock()
}

func (b *lockedBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// stop sends sig and checks the server exits 0.
func (s *server) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(sig))
	select {
	case err := <-s.waitErr:
		require.NoError(t, err, "exit after %v; stderr:\n%s", sig, s.stderr)
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit within 20s of %v", sig)
	}
}

func uringAvailable() bool {
	l, err := reactor.New(reactor.Config{Backend: reactor.Uring, IgnoreEnv: true})
	if err != nil {
		return !errors.Is(err, uring.ErrUnavailable)
	}
	l.Stop()
	<-l.Done()
	return true
}

// Every example honours GYRE_BACKEND, serves on -addr, and exits 0 on SIGTERM
// and on SIGINT.
func TestExamplesHonourEnvAndStopCleanly(t *testing.T) {
	kinds := []string{"epoll"}
	if uringAvailable() {
		kinds = append(kinds, "uring")
	}
	for _, name := range examples {
		for i, kind := range kinds {
			t.Run(name+"/"+kind, func(t *testing.T) {
				s := start(t, name, []string{reactor.EnvBackend + "=" + kind})
				require.Equal(t, kind, s.backend)
				c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
				require.NoError(t, err)
				require.NoError(t, c.Close())
				s.stop(t, []syscall.Signal{syscall.SIGTERM, syscall.SIGINT}[i%2])
			})
		}
	}
}

// An explicit -backend wins over GYRE_BACKEND.
func TestExampleFlagBeatsEnv(t *testing.T) {
	s := start(t, "echo", []string{reactor.EnvBackend + "=bogus"}, "-backend", "epoll")
	require.Equal(t, "epoll", s.backend)
	s.stop(t, syscall.SIGTERM)
}

// An unknown GYRE_BACKEND (with no -backend) is a command-line error naming
// the value: exit status 2, before listening.
func TestExampleUnknownEnvBackendFails(t *testing.T) {
	cmd := exec.Command(filepath.Join(build(t), "echo"), "-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), reactor.EnvBackend+"=bogus")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "output: %s", out)
	require.Equal(t, 2, ee.ExitCode())
	require.Contains(t, string(out), `"bogus"`)
	require.Contains(t, string(out), reactor.EnvBackend)
	require.NotContains(t, string(out), "listening")
}

// echo serves on a UNIX socket path (-addr unix:PATH) and an abstract name
// (unix:@NAME) on both backends, echoes, and on SIGTERM exits 0 having
// removed the socket file it created.
func TestEchoUnix(t *testing.T) {
	kinds := []string{"epoll"}
	if uringAvailable() {
		kinds = append(kinds, "uring")
	}
	for _, kind := range kinds {
		for _, abstract := range []bool{false, true} {
			t.Run(kind+map[bool]string{false: "/path", true: "/abstract"}[abstract], func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "echo.sock")
				if abstract {
					path = "@gyre-echo-test-" + filepath.Base(filepath.Dir(path))
				}
				s := start(t, "echo", nil, "-backend", kind, "-addr", "unix:"+path)
				require.Equal(t, kind, s.backend)
				require.Equal(t, "unix:"+path, s.addr)
				c, err := net.DialTimeout("unix", path, 5*time.Second)
				require.NoError(t, err)
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				_, err = c.Write([]byte("hello unix"))
				require.NoError(t, err)
				got := make([]byte, 10)
				_, err = io.ReadFull(c, got)
				require.NoError(t, err)
				require.Equal(t, "hello unix", string(got))
				require.NoError(t, c.Close())
				s.stop(t, syscall.SIGTERM)
				if !abstract {
					_, err := os.Lstat(path)
					require.ErrorIs(t, err, os.ErrNotExist, "socket file removed at stop")
				}
			})
		}
	}
}

// A real peer: socat against echo on a UNIX path and an abstract name, both
// backends (CI installs socat; without it the test skips).
func TestEchoUnixSocat(t *testing.T) {
	socat, err := exec.LookPath("socat")
	if err != nil {
		t.Skip("socat not installed")
	}
	kinds := []string{"epoll"}
	if uringAvailable() {
		kinds = append(kinds, "uring")
	}
	for _, kind := range kinds {
		for _, abstract := range []bool{false, true} {
			t.Run(kind+map[bool]string{false: "/path", true: "/abstract"}[abstract], func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "echo.sock")
				peer := "UNIX-CONNECT:" + path
				if abstract {
					name := "gyre-socat-test-" + filepath.Base(filepath.Dir(path))
					path, peer = "@"+name, "ABSTRACT-CONNECT:"+name
				}
				s := start(t, "echo", nil, "-backend", kind, "-addr", "unix:"+path)
				blob := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
				cmd := exec.Command(socat, "-t", "5", "-", peer)
				cmd.Stdin = bytes.NewReader(blob)
				var out, errOut bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errOut
				done := make(chan error, 1)
				require.NoError(t, cmd.Start())
				go func() { done <- cmd.Wait() }()
				select {
				case err := <-done:
					require.NoError(t, err, "socat: %s", errOut.String())
				case <-time.After(30 * time.Second):
					_ = cmd.Process.Kill()
					<-done
					t.Fatal("socat did not finish")
				}
				require.Equal(t, len(blob), out.Len())
				require.True(t, bytes.Equal(blob, out.Bytes()))
				s.stop(t, syscall.SIGTERM)
			})
		}
	}
}

// -tls-cert/-tls-key: echo serves TLS to a crypto/tls client, http serves
// HTTPS to curl --cacert (and Go's net/http client), on each backend; a lone
// -tls-cert is a command-line error.
func TestExamplesTLS(t *testing.T) {
	p, err := tlstest.New(t.TempDir(), "localhost")
	require.NoError(t, err)
	kinds := []string{"epoll"}
	if uringAvailable() {
		kinds = append(kinds, "uring")
	}
	for _, kind := range kinds {
		t.Run("echo/"+kind, func(t *testing.T) {
			s := start(t, "echo", []string{reactor.EnvBackend + "=" + kind}, "-tls-cert", p.CertFile, "-tls-key", p.KeyFile)
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.addr, p.ClientConfig("localhost"))
			require.NoError(t, err)
			_, err = c.Write([]byte("hello over tls"))
			require.NoError(t, err)
			buf := make([]byte, 14)
			_, err = io.ReadFull(c, buf)
			require.NoError(t, err)
			require.Equal(t, "hello over tls", string(buf))
			require.NoError(t, c.Close())
			s.stop(t, syscall.SIGTERM)
		})
		t.Run("http/"+kind, func(t *testing.T) {
			s := start(t, "http", []string{reactor.EnvBackend + "=" + kind}, "-tls-cert", p.CertFile, "-tls-key", p.KeyFile)
			url := "https://" + s.addr + "/"
			cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: p.ClientConfig("")}}
			resp, err := cl.Get(url)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			cl.CloseIdleConnections()
			require.Equal(t, "Hello, World!", string(body))
			if curl, err := exec.LookPath("curl"); err == nil {
				out, err := exec.Command(curl, "-sS", "--max-time", "10", "--cacert", p.CAFile, url).CombinedOutput()
				require.NoError(t, err, "%s", out)
				require.Equal(t, "Hello, World!", string(out))
			} else {
				t.Log("curl not installed (CI installs it); checked with net/http only")
			}
			s.stop(t, syscall.SIGINT)
		})
	}
	cmd := exec.Command(filepath.Join(build(t), "echo"), "-addr", "127.0.0.1:0", "-tls-cert", p.CertFile)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "output: %s", out)
	require.Equal(t, 2, ee.ExitCode())
	require.Contains(t, string(out), "-tls-key")
}

// -listen takes endpoint descriptions: TCP with options, a UNIX path with a
// colon (quoted) and a mode, ssl: with the certificate in the description.
func TestEchoListenDescriptions(t *testing.T) {
	p, err := tlstest.New(t.TempDir(), "localhost")
	require.NoError(t, err)
	echoes := func(t *testing.T, c net.Conn) {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Write([]byte("desc"))
		require.NoError(t, err)
		buf := make([]byte, 4)
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		require.Equal(t, "desc", string(buf))
		require.NoError(t, c.Close())
	}
	t.Run("tcp", func(t *testing.T) {
		s := start(t, "echo", nil, "-listen", "tcp:0:interface=127.0.0.1:backlog=64", "-loops", "2")
		for range 4 {
			c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
			require.NoError(t, err)
			echoes(t, c)
		}
		s.stop(t, syscall.SIGTERM)
	})
	t.Run("unix", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "e:1.sock")
		s := start(t, "echo", nil, "-listen", `unix:`+strings.ReplaceAll(path, ":", `\:`)+":mode=600")
		require.Equal(t, "unix:"+path, s.addr)
		fi, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
		c, err := net.DialTimeout("unix", path, 5*time.Second)
		require.NoError(t, err)
		echoes(t, c)
		s.stop(t, syscall.SIGINT)
	})
	t.Run("ssl", func(t *testing.T) {
		s := start(t, "echo", nil, "-listen", "ssl:0:interface=127.0.0.1:privateKey="+p.KeyFile+":certKey="+p.CertFile)
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.addr, p.ClientConfig("localhost"))
		require.NoError(t, err)
		echoes(t, c)
		s.stop(t, syscall.SIGTERM)
	})
	// A description that does not parse: exit 2, naming the bad part.
	out, err := exec.Command(filepath.Join(build(t), "echo"), "-listen", "tcp:80:bogus=1").CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "output: %s", out)
	require.Equal(t, 2, ee.ExitCode())
	require.Contains(t, string(out), "unknown parameter bogus")
}

var (
	debugLine = regexp.MustCompile(`debug_addr=(\S+)`)
	loopsLine = regexp.MustCompile(`listening .*loops=(\d+)`)
)

// -debug-addr serves expvar's JSON at /debug/vars (cmdline, memstats) and
// gyre's loop counters under "gyre", keyed by the program's name.
func TestExamplesDebugAddr(t *testing.T) {
	for _, name := range examples {
		t.Run(name, func(t *testing.T) {
			s := start(t, name, nil, "-debug-addr", "127.0.0.1:0")
			m := debugLine.FindStringSubmatch(s.stderr.String())
			require.NotNil(t, m, "no debug line in:\n%s", s.stderr)
			cl := &http.Client{Timeout: 10 * time.Second}
			defer cl.CloseIdleConnections()
			type run struct {
				Total reactor.Stats   `json:"total"`
				Loops []reactor.Stats `json:"loops"`
			}
			get := func() (map[string]json.RawMessage, map[string]run) {
				resp, err := cl.Get("http://" + m[1] + "/debug/vars")
				require.NoError(t, err)
				var vars map[string]json.RawMessage
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&vars))
				require.NoError(t, resp.Body.Close())
				require.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
				require.Contains(t, vars, "gyre")
				var runs map[string]run
				require.NoError(t, json.Unmarshal(vars["gyre"], &runs))
				require.Contains(t, runs, name)
				return vars, runs
			}
			vars, runs := get()
			require.Contains(t, vars, "cmdline")
			require.Contains(t, vars, "memstats")
			// One loop per CPU by default, as the listening line says
			// (udpecho runs one).
			want := 1
			if lm := loopsLine.FindStringSubmatch(s.stderr.String()); lm != nil {
				want, _ = strconv.Atoi(lm[1])
			}
			require.Len(t, runs[name].Loops, want)
			require.Contains(t, []string{"uring", "epoll"}, runs[name].Total.Backend)
			// The counters are live: the loop's turns show up once it runs.
			deadline := time.Now().Add(10 * time.Second)
			for runs[name].Total.Turns == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				_, runs = get()
			}
			require.Positive(t, runs[name].Total.Turns)
			s.stop(t, syscall.SIGTERM)
		})
	}
}

// echo -listen systemd:domain=INET:index=0 serves a socket passed by
// systemd-socket-activate (it execs echo on the first connection, with
// LISTEN_FDS/LISTEN_PID set), on each backend, and exits 0 on SIGTERM.
func TestEchoSocketActivated(t *testing.T) {
	sa, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate not installed (package systemd); the endpoint package's own test covers LISTEN_FDS")
	}
	kinds := []string{"epoll"}
	if uringAvailable() {
		kinds = append(kinds, "uring")
	}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			port := l.Addr().(*net.TCPAddr).Port
			require.NoError(t, l.Close())
			addr := "127.0.0.1:" + strconv.Itoa(port)
			cmd := exec.Command(sa, "-l", addr, filepath.Join(build(t), "echo"), "-listen", "systemd:domain=INET:index=0", "-backend", kind)
			// The activator execs echo on the first connection: dial
			// until it listens, then the listening line follows.
			dialed := make(chan net.Conn, 1)
			go func() {
				deadline := time.Now().Add(20 * time.Second)
				for time.Now().Before(deadline) {
					if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
						dialed <- c
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
				close(dialed)
			}()
			s := startCmd(t, "echo", cmd, nil)
			require.Equal(t, addr, s.addr)
			require.Equal(t, kind, s.backend)
			c, ok := <-dialed
			require.True(t, ok, "no connection to the activated socket")
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			_, err = c.Write([]byte("activated"))
			require.NoError(t, err)
			buf := make([]byte, 9)
			_, err = io.ReadFull(c, buf)
			require.NoError(t, err)
			require.Equal(t, "activated", string(buf))
			require.NoError(t, c.Close())
			s.stop(t, syscall.SIGTERM)
		})
	}
}

// resp with several loops keeps one keyspace: a key set on one connection is
// seen on every other, whichever loop the kernel gave it to.
func TestRespLoopsShareKeyspace(t *testing.T) {
	s := start(t, "resp", nil, "-loops", "2")
	defer s.stop(t, syscall.SIGTERM)
	cmd := func(c net.Conn, r *bufio.Reader, args ...string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		_, err := c.Write([]byte(b.String()))
		require.NoError(t, err)
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		if strings.HasPrefix(line, "$") && line != "$-1\r\n" {
			val, err := r.ReadString('\n')
			require.NoError(t, err)
			return strings.TrimSpace(val)
		}
		return strings.TrimSpace(line)
	}
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
		require.NoError(t, err)
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		return c, bufio.NewReader(c)
	}
	c0, r0 := dial()
	defer c0.Close()
	require.Equal(t, "+OK", cmd(c0, r0, "SET", "k", "v"))
	for range 8 { // with 2 loops, some land on the other loop
		c, r := dial()
		require.Equal(t, "v", cmd(c, r, "GET", "k"))
		require.NoError(t, c.Close())
	}
}
