package streamsuite

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
)

// exhaustFDs lowers RLIMIT_NOFILE's soft limit to just above the highest
// open descriptor and fills every free number below it with /dev/null, so
// the next descriptor anyone asks for fails with EMFILE. The returned
// function (also run at cleanup) closes the fillers and restores the limit.
func exhaustFDs(t *testing.T) (restore func()) {
	t.Helper()
	var old unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &old))
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	maxFD := 0
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > maxFD {
			maxFD = n
		}
	}
	var fillers []int
	done := false
	restore = func() {
		if done {
			return
		}
		done = true
		for _, fd := range fillers {
			_ = unix.Close(fd)
		}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
			t.Errorf("restoring RLIMIT_NOFILE: %v", err)
		}
	}
	t.Cleanup(restore)
	low := old
	low.Cur = uint64(maxFD + 1)
	require.NoError(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &low))
	for i := 0; i < 4096; i++ {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			require.ErrorIs(t, err, unix.EMFILE)
			return restore
		}
		fillers = append(fillers, fd)
	}
	restore()
	t.Fatal("could not exhaust the descriptor table")
	return nil
}

func emfileErrors(h *reactortest.Loop) (n int, other []error) {
	for _, err := range h.Errors() {
		if errors.Is(err, syscall.EMFILE) {
			n++
		} else {
			other = append(other, err)
		}
	}
	return n, other
}

// TestAcceptEMFILEBacksOff: with the descriptor table full, accept fails
// with EMFILE; the port backs off (a bounded number of failed accepts, no
// spin) and, once descriptors are available again, accepts the connections
// that waited in the backlog and serves them.
func testAcceptEMFILEBacksOff(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		// Hold the loop so the port does not start accepting before the
		// clients wait in the backlog and the table is full.
		release := make(chan struct{})
		require.NoError(t, h.Call(func() { <-release }))
		released := false
		unblock := func() {
			if !released {
				released = true
				close(release)
			}
		}
		t.Cleanup(unblock)
		p, built := strictServer(t, k, h, func(i int) *strict {
			s := newStrict(t, "server")
			s.onData = func(s *strict, p []byte) { _ = s.tr.Write(p) }
			return s
		})
		const nClients = 5
		var clients []net.Conn
		for i := 0; i < nClients; i++ {
			c, err := net.DialTimeout(k.Network, p.Addr().String(), 5*time.Second)
			require.NoError(t, err)
			clients = append(clients, c)
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			_, err = c.Write([]byte("ping"))
			require.NoError(t, err)
		}
		t.Cleanup(func() {
			for _, c := range clients {
				_ = c.Close()
			}
		})

		restore := exhaustFDs(t)
		unblock()
		// Accept fails; wait for the first report, then give a spinning
		// port time to show itself.
		deadline := time.Now().Add(5 * time.Second)
		for {
			if n, _ := emfileErrors(h); n > 0 {
				break
			}
			if time.Now().After(deadline) {
				restore()
				t.Fatalf("no EMFILE reported by the port; loop errors: %v", h.Errors())
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
		n, other := emfileErrors(h)
		accepted := len(built())
		restore()

		require.Empty(t, other, "unexpected loop errors")
		require.Zero(t, accepted, "a connection was accepted with a full descriptor table")
		// Back-off from 5 ms doubling: about 6 failures in 200 ms. A port
		// that re-armed at once would fail thousands of times.
		require.LessOrEqual(t, n, 20, "accept failed %d times in ~200ms: the port spins", n)
		t.Logf("%d EMFILE accept failures while the table was full", n)

		// Descriptors are back: every waiting client is accepted and served.
		for i, c := range clients {
			buf := make([]byte, 4)
			_, err := io.ReadFull(c, buf)
			require.NoError(t, err, "client %d", i)
			require.Equal(t, "ping", string(buf))
		}
		require.Len(t, built(), nClients)
	})
}
