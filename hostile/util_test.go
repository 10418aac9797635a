package hostile_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// TestMain fails the package if a test leaves a goroutine behind. With
// clientEnv set the test binary is instead the client process of
// TestTenThousandConnections (see clientProcess).
func TestMain(m *testing.M) {
	if spec := os.Getenv(clientEnv); spec != "" {
		os.Exit(clientProcess(spec))
	}
	goleak.VerifyTestMain(m)
}

// rss is the process's resident set in bytes (/proc/self/statm), after a
// collection that returns freed memory to the OS, so that it measures what
// is still held.
func rss(t testing.TB) int64 {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatalf("statm: %v", err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatalf("statm %q: %v", b, err)
	}
	return pages * int64(os.Getpagesize())
}

// raiseNOFILE makes at least need descriptors available to this process,
// raising the hard limit too where that is allowed (CAP_SYS_RESOURCE), and
// restores the previous limits when the test ends. It skips the test, with
// the reason, where the limit cannot be raised that far.
func raiseNOFILE(t *testing.T, need uint64) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Skipf("getrlimit(RLIMIT_NOFILE): %v", err)
	}
	if old.Cur >= need {
		return
	}
	nl := old
	nl.Cur = need
	if nl.Max < need {
		nl.Max = need
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl); err != nil {
		t.Skipf("need %d descriptors, RLIMIT_NOFILE is %d (hard %d) and cannot be raised: %v", need, old.Cur, old.Max, err)
	}
	t.Cleanup(func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
			t.Errorf("restoring RLIMIT_NOFILE: %v", err)
		}
	})
}

// sockaddr converts "127.0.0.1:port" for raw sockets.
func sockaddr(t testing.TB, addr string) *unix.SockaddrInet4 {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		t.Fatalf("address %q: %v", addr, err)
	}
	return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
}

// rawConnect opens a non-blocking TCP socket and starts connecting it.
func rawConnect(sa *unix.SockaddrInet4) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// closeRaw closes fds; with rst each is closed with SO_LINGER 0, so the
// peer gets a reset instead of a FIN.
func closeRaw(fds []int, rst bool) {
	for _, fd := range fds {
		if rst {
			_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		}
		_ = unix.Close(fd)
	}
}

// exchangeMany opens n connections to an echo server at sa from the calling
// goroutine alone (raw non-blocking sockets multiplexed with epoll, so no
// goroutine per connection), at most window of them connecting or
// exchanging at a time (window >= n: all at once, an accept storm). On each
// it writes msg and reads it back, checking the bytes. It returns the
// descriptors, all still open (the caller closes them), once every
// connection has made its round trip, or an error (and no open descriptor)
// if one failed or timeout passed first.
func exchangeMany(sa *unix.SockaddrInet4, n, window int, msg []byte, timeout time.Duration) ([]int, error) {
	type cstate struct {
		connected bool
		sent, got int
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	defer unix.Close(ep)
	active := make(map[int]*cstate, min(n, window))
	done := make([]int, 0, n)
	fail := func(err error) ([]int, error) {
		for fd := range active {
			unix.Close(fd)
		}
		closeRaw(done, false)
		return nil, err
	}
	started := 0
	start := func() error {
		fd, err := rawConnect(sa)
		if err != nil {
			return fmt.Errorf("connect #%d: %w", started, err)
		}
		started++
		active[fd] = &cstate{}
		ev := unix.EpollEvent{Events: unix.EPOLLOUT, Fd: int32(fd)}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return err
		}
		return nil
	}
	buf := make([]byte, 64<<10)
	events := make([]unix.EpollEvent, 256)
	deadline := time.Now().Add(timeout)
	for len(done) < n {
		for started < n && len(active) < window {
			if err := start(); err != nil {
				return fail(err)
			}
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("timed out: %d of %d connections done, %d active", len(done), n, len(active)))
		}
		k, err := unix.EpollWait(ep, events, 100)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fail(err)
		}
		for _, ev := range events[:k] {
			fd := int(ev.Fd)
			c := active[fd]
			if !c.connected {
				soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
				if err != nil || soerr != 0 {
					return fail(fmt.Errorf("connect: %v / %v", err, syscall.Errno(soerr)))
				}
				c.connected = true
			}
			if c.sent < len(msg) {
				w, err := unix.Write(fd, msg[c.sent:])
				if err == unix.EAGAIN {
					continue
				}
				if err != nil {
					return fail(fmt.Errorf("write: %w", err))
				}
				c.sent += w
				if c.sent == len(msg) {
					ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
					if err := unix.EpollCtl(ep, unix.EPOLL_CTL_MOD, fd, &ev); err != nil {
						return fail(err)
					}
				}
				continue
			}
			r, err := unix.Read(fd, buf[:len(msg)-c.got])
			if err == unix.EAGAIN {
				continue
			}
			if err != nil || r == 0 {
				return fail(fmt.Errorf("read after %d of %d bytes: %v (eof %v)", c.got, len(msg), err, r == 0))
			}
			if !bytes.Equal(buf[:r], msg[c.got:c.got+r]) {
				return fail(errors.New("echo differs from what was sent"))
			}
			c.got += r
			if c.got == len(msg) {
				if err := unix.EpollCtl(ep, unix.EPOLL_CTL_DEL, fd, nil); err != nil {
					return fail(err)
				}
				delete(active, fd)
				done = append(done, fd)
			}
		}
	}
	return done, nil
}

// prober is a well-behaved client: on its own goroutine it makes round
// trips on one connection, one request at a time, and counts those that
// completed correctly. Stop ends it and returns the count and the first
// error.
type prober struct {
	stop  chan struct{}
	once  sync.Once
	done  chan struct{}
	count atomic.Int64
	mu    sync.Mutex
	err   error
}

// Err is the prober's error so far (nil while it runs fine).
func (p *prober) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *prober) fail(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

// roundTrip sends one request on c (through r) and checks the answer.
type roundTrip func(c net.Conn, r *bufio.Reader) error

func startProber(addr string, rt roundTrip) *prober {
	p := &prober{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			p.fail(err)
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if err := rt(c, r); err != nil {
				p.fail(fmt.Errorf("round trip %d: %w", p.count.Load(), err))
				return
			}
			p.count.Add(1)
			// Pace the prober so it does not hog a core of a 2-core machine.
			time.Sleep(time.Millisecond)
		}
	}()
	return p
}

// Stop ends the prober and waits for it.
func (p *prober) Stop() (int64, error) {
	p.once.Do(func() { close(p.stop) })
	<-p.done
	return p.count.Load(), p.Err()
}

// waitCount waits until the prober made at least n round trips (or died).
func (p *prober) waitCount(n int64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.count.Load() >= n {
			return true
		}
		select {
		case <-p.done:
			return p.count.Load() >= n
		case <-time.After(5 * time.Millisecond):
		}
	}
	return false
}

// echoRT is one echo round trip of 32 bytes.
func echoRT(c net.Conn, r *bufio.Reader) error {
	msg := []byte("well-behaved client, echo please")
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(r, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo %q", got)
	}
	return nil
}

// respRT is one RESP round trip: PING, +PONG.
func respRT(c net.Conn, r *bufio.Reader) error {
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("reply %q", line)
	}
	return nil
}

// httpRT is one keep-alive HTTP/1.1 GET, expecting 200 and body "ok".
func httpRT(c net.Conn, r *bufio.Reader) error {
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		return err
	}
	return readHTTPOK(r)
}

// readHTTPOK reads one response and checks it is 200 with body "ok".
func readHTTPOK(r *bufio.Reader) error {
	resp, err := nethttp.ReadResponse(r, nil)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || string(body) != "ok" {
		return fmt.Errorf("response %d %q", resp.StatusCode, body)
	}
	return nil
}
