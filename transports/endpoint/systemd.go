package endpoint

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

// ErrNoSystemdSocket is returned (wrapped) by a systemd endpoint's Listen
// when the process was not passed the descriptor it names: no socket
// activation at all, an index beyond LISTEN_FDS, an unknown name, or a
// descriptor of another address family than its domain.
var ErrNoSystemdSocket = errors.New("gyre/endpoint: no such socket-activation descriptor")

// The socket-activation protocol (sd_listen_fds(3)): descriptors start at 3.
const listenFDsStart = 3

// listenFDs are the descriptors passed by socket activation, with their
// names (LISTEN_FDNAMES; "unknown" for each when the variable is absent, as
// sd_listen_fds_with_names reports).
type listenFDs struct {
	fds   []int
	names []string
	err   error // a malformed environment
}

var activation struct {
	once sync.Once
	v    listenFDs
}

// inherited reads the socket-activation environment once per process, as
// sd_listen_fds(1) does: the descriptors count only when LISTEN_PID is this
// process; they are made close-on-exec (so that no child inherits them),
// and LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are unset (so that no child
// believes they are its own). The process keeps the descriptors open for
// its whole life: each Listen adopts a duplicate, so several loops — or a
// listener closed and opened again — can use the same one.
func inherited() listenFDs {
	activation.once.Do(func() {
		v := parseListenFDs(os.Getenv, os.Getpid())
		for _, fd := range v.fds {
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
				v = listenFDs{err: fmt.Errorf("LISTEN_FDS names descriptor %d, which is not open: %w", fd, err)}
				break
			}
			unix.CloseOnExec(fd)
		}
		for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
			_ = os.Unsetenv(k)
		}
		activation.v = v
	})
	return activation.v
}

// parseListenFDs interprets the socket-activation variables for process
// pid. A missing LISTEN_PID or one naming another process means no
// descriptors (not an error), as in sd_listen_fds; a malformed LISTEN_FDS,
// or a LISTEN_FDNAMES with another number of names, is an error.
func parseListenFDs(getenv func(string) string, pid int) listenFDs {
	p := getenv("LISTEN_PID")
	if p == "" {
		return listenFDs{}
	}
	if n, err := strconv.Atoi(p); err != nil || n <= 0 {
		return listenFDs{err: fmt.Errorf("LISTEN_PID %q is not a process id", p)}
	} else if n != pid {
		return listenFDs{}
	}
	c := getenv("LISTEN_FDS")
	n, err := strconv.Atoi(c)
	if err != nil || n < 0 || n > 1<<16 {
		return listenFDs{err: fmt.Errorf("LISTEN_FDS %q is not a descriptor count", c)}
	}
	v := listenFDs{fds: make([]int, n), names: make([]string, n)}
	for i := range v.fds {
		v.fds[i] = listenFDsStart + i
		v.names[i] = "unknown"
	}
	if names := getenv("LISTEN_FDNAMES"); names != "" {
		ns := strings.Split(names, ":")
		if len(ns) != n {
			return listenFDs{err: fmt.Errorf("LISTEN_FDNAMES has %d names for %d descriptors", len(ns), n)}
		}
		v.names = ns
	}
	return v
}

// pick returns the descriptor sel names.
func (v listenFDs) pick(sel SystemdSelector) (int, error) {
	if v.err != nil {
		return -1, fmt.Errorf("%w: %v", ErrNoSystemdSocket, v.err)
	}
	if sel.Name != "" {
		for i, n := range v.names {
			if n == sel.Name {
				return v.fds[i], nil
			}
		}
		return -1, fmt.Errorf("%w: no descriptor named %q (LISTEN_FDNAMES: %q)", ErrNoSystemdSocket, sel.Name, strings.Join(v.names, ":"))
	}
	if sel.Index >= len(v.fds) {
		return -1, fmt.Errorf("%w: index %d, but %d descriptors were passed (LISTEN_FDS, LISTEN_PID)", ErrNoSystemdSocket, sel.Index, len(v.fds))
	}
	return v.fds[sel.Index], nil
}

var domainFamily = map[string]int{"INET": unix.AF_INET, "INET6": unix.AF_INET6, "UNIX": unix.AF_UNIX}

// listenSystemd adopts the inherited descriptor sel names
// (stream.AdoptStreamPort, which duplicates it).
func listenSystemd(loop *reactor.Loop, sel SystemdSelector, f transports.Factory) (transports.Port, error) {
	fd, err := inherited().pick(sel)
	if err != nil {
		return nil, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, fmt.Errorf("%w: descriptor %d: %w", ErrNoSystemdSocket, fd, os.NewSyscallError("getsockname", err))
	}
	fam, is := -1, "of another address family"
	switch sa.(type) {
	case *unix.SockaddrInet4:
		fam, is = unix.AF_INET, "INET"
	case *unix.SockaddrInet6:
		fam, is = unix.AF_INET6, "INET6"
	case *unix.SockaddrUnix:
		fam, is = unix.AF_UNIX, "UNIX"
	}
	if fam != domainFamily[sel.Domain] {
		return nil, fmt.Errorf("%w: descriptor %d is not of domain %s: it is %s", ErrNoSystemdSocket, fd, sel.Domain, is)
	}
	return stream.AdoptStreamPort(loop, fd, f)
}
