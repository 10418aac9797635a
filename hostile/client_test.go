package hostile_test

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// clientEnv, when set in the environment of this test binary, makes it a
// client process: "ADDR N WINDOW MSG".
const clientEnv = "GYRE_HOSTILE_CLIENT"

// clientProcess is the test binary run as a client: it opens N connections
// to the echo server at ADDR with exchangeMany, prints "ready", waits for a
// line on stdin, closes them all, prints "closed" and exits 0. Any failure
// is printed as "error: …" with exit status 1. A separate process holds the
// client descriptors so that the server's process needs only one per
// connection (RLIMIT_NOFILE's hard limit is often 20,000 and raising it needs
// CAP_SYS_RESOURCE).
func clientProcess(spec string) int {
	var addr, msg string
	var n, window int
	if _, err := fmt.Sscan(spec, &addr, &n, &window, &msg); err != nil {
		fmt.Printf("error: spec %q: %v\n", spec, err)
		return 1
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		fmt.Printf("error: %v\n", err)
		return 1
	}
	var lim unix.Rlimit
	_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	if lim.Cur < uint64(n+256) {
		fmt.Printf("error: RLIMIT_NOFILE %d too small for %d connections\n", lim.Cur, n)
		return 1
	}
	sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	fds, err := exchangeMany(sa, n, window, []byte(msg), 90*time.Second)
	if err != nil {
		fmt.Printf("error: %v\n", err)
		return 1
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	closeRaw(fds, false)
	fmt.Println("closed")
	return 0
}

// clientProc is a running client process.
type clientProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// startClients runs a client process making n connections to addr and
// waits until all made their round trip.
func startClients(t *testing.T, addr string, n, window int, msg string) *clientProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d %s", clientEnv, addr, n, window, msg))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &clientProc{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	t.Cleanup(func() {
		_ = c.stdin.Close()
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
	})
	c.expect(t, "ready")
	return c
}

func (c *clientProc) expect(t *testing.T, want string) {
	t.Helper()
	line, err := c.out.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != want {
		t.Fatalf("client process: want %q, got %q (%v)", want, line, err)
	}
}

// closeAll tells the client process to close its connections, and waits
// for it to exit.
func (c *clientProc) closeAll(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "close\n"); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "closed")
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("client process: %v", err)
	}
}
