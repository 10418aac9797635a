package process

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

// ErrBadConfig: Spawn was given a Config it cannot run (no path, a nil
// protocol, a bad child-descriptor map); the error's text says what.
var ErrBadConfig = errors.New("gyre/process: bad spawn configuration")

// MaxChildFD bounds the child descriptor numbers a ChildFDs map may use.
const MaxChildFD = 1023

type fdKind uint8

const (
	fdClosed fdKind = iota
	fdToChild
	fdFromChild
	fdInherit
)

// FD says what one child descriptor is (a value of Twisted's childFDs map).
// The zero value leaves the descriptor closed in the child, as leaving it
// out of the map does.
type FD struct {
	kind fdKind
	fd   int
}

var (
	// ToChild is a pipe the loop writes and the child reads (Twisted's
	// 'w'): stdin, or an extra input. Its data is queued by Write /
	// WriteToChild with flow control; closing it gives the child end of
	// file.
	ToChild = FD{kind: fdToChild}
	// FromChild is a pipe the child writes and the loop reads (Twisted's
	// 'r'): stdout, stderr (OutReceived, ErrReceived) or an extra output
	// (ChildDataReceived).
	FromChild = FD{kind: fdFromChild}
)

// Inherit passes our descriptor fd to the child as this child descriptor
// (Twisted's integer childFDs value). The child gets a duplicate; fd itself
// is neither closed nor changed (not even its O_NONBLOCK flag) and stays the
// caller's.
func Inherit(fd int) FD { return FD{kind: fdInherit, fd: fd} }

// DefaultChildFDs is the map a nil Config.ChildFDs stands for: stdin,
// stdout and stderr are pipes to and from the loop.
func DefaultChildFDs() map[int]FD { return map[int]FD{0: ToChild, 1: FromChild, 2: FromChild} }

// NoSignal as StopPolicy.Signal sends no signal when the loop starts
// stopping: the child is expected to end by itself once its stdin is closed.
const NoSignal syscall.Signal = -1

// StopPolicy is what a child gets when its loop stops while it runs (a
// reactor.Resource's two-stage shutdown).
//
// The default (zero value): when shutdown begins the child gets SIGTERM
// (Signal), and its pipes are closed like every connection (stdin after
// its queue is flushed); the loop's drain then waits for the child's exit.
// If it has not exited after Grace (when Grace > 0), or when the loop's
// Config.DrainTimeout runs out (the second stage, reason matching
// reactor.ErrDrainTimeout), it gets SIGKILL and is reaped as soon as it
// has died (within the loop's bounded abort wait). Either way the protocol
// gets ProcessExited and ProcessEnded with the real status, and no zombie
// is left.
//
// With Leave, the child is left running: no signal; its pipes are closed
// with the loop's other connections (it sees end of file on stdin and
// EPIPE on writes to its stdout/stderr pipes), its pidfd is closed, and the
// protocol gets ProcessExited and ProcessEnded with a Detached status
// (unless it had already exited, then its real status). gyre no longer
// reaps it: if it exits while this program runs it stays a zombie until
// the program exits (its parent, e.g. a shell, then no longer matters: it
// is reparented to init or a subreaper).
type StopPolicy struct {
	Leave bool
	// Signal is sent when shutdown begins: 0 means SIGTERM, NoSignal none.
	Signal syscall.Signal
	// Grace, if positive, is how long after that signal the child gets
	// SIGKILL when it is still running; 0 waits until the loop's drain
	// timeout.
	Grace time.Duration
}

// Config describes a child to spawn (Twisted's spawnProcess arguments).
type Config struct {
	// Path is the executable. A name without a slash is looked up in this
	// process's PATH (os/exec.LookPath); not found: an error matching
	// exec.ErrNotFound.
	Path string
	// Args is argv, program name included; empty means []string{Path}.
	Args []string
	// Env is the child's environment ("KEY=value"); nil inherits this
	// process's (os.Environ), an empty non-nil slice gives none.
	Env []string
	// Dir is the child's working directory; "" inherits ours.
	Dir string
	// ChildFDs maps child descriptor numbers (0..MaxChildFD) to what they
	// are; nil means DefaultChildFDs. Descriptors not in the map are closed
	// in the child. A FromChild pipe other than 1 and 2 requires the
	// protocol to implement transports.ChildDataReceiver.
	ChildFDs map[int]FD
	// Watermarks for a producer registered on stdin (transports defaults
	// when zero).
	Watermarks transports.Watermarks
	// ReadBufferSize is the buffer of each FromChild pipe; default
	// stream.DefaultReadBufferSize (64 KiB). Allocated once per pipe.
	ReadBufferSize int
	// SysProcAttr, if set, is copied and given to the child's start (set
	// Setpgid, Credential, … there). Its PidFD field is ignored: gyre
	// always asks for the pidfd.
	SysProcAttr *syscall.SysProcAttr
	// Stop is what the child gets when the loop stops (see StopPolicy).
	Stop StopPolicy
}

// Spawn starts a child process and returns its transport, after calling
// proto.ConnectionMade with it (Twisted's reactor.spawnProcess).
//
// The child is started with the standard library's fork/exec
// (syscall.ForkExec, vfork-style, with CLONE_PIDFD): Spawn blocks the loop
// for that call, typically well under a millisecond. Every failure — a bad
// Config (ErrBadConfig), an executable not found (exec.ErrNotFound, or an
// error matching fs.ErrNotExist / syscall.EACCES from the exec, reported
// by the child before it runs anything), descriptors exhausted — is
// returned here, with every descriptor Spawn opened closed again and no
// protocol call. After a successful Spawn the protocol's calls follow the
// transports.ProcessProtocol contract.
//
// The child's exit is seen through its pidfd, watched by a poll op on the
// loop (no goroutine, no SIGCHLD handler), and it is reaped with
// waitid(P_PIDFD), which touches this child only: other code in the
// program may start and wait for its own children (never wait(-1) for
// any). Requires Linux 5.4 (pidfd poll and P_PIDFD).
//
// Loop goroutine only (from a callback, or through the loop's Call).
func Spawn(loop *reactor.Loop, proto transports.ProcessProtocol, cfg Config) (*Process, error) {
	if proto == nil {
		return nil, fmt.Errorf("%w: nil protocol", ErrBadConfig)
	}
	if cfg.Path == "" {
		return nil, fmt.Errorf("%w: no executable path", ErrBadConfig)
	}
	fds := cfg.ChildFDs
	if fds == nil {
		fds = DefaultChildFDs()
	}
	data, _ := proto.(transports.ChildDataReceiver)
	numbers := make([]int, 0, len(fds))
	for n, f := range fds {
		if n < 0 || n > MaxChildFD {
			return nil, fmt.Errorf("%w: child descriptor %d outside 0..%d", ErrBadConfig, n, MaxChildFD)
		}
		if f.kind == fdFromChild && n != 1 && n != 2 && data == nil {
			return nil, fmt.Errorf("%w: a pipe from child descriptor %d needs a protocol implementing transports.ChildDataReceiver", ErrBadConfig, n)
		}
		if f.kind == fdInherit && f.fd < 0 {
			return nil, fmt.Errorf("%w: Inherit(%d) for child descriptor %d", ErrBadConfig, f.fd, n)
		}
		if f.kind != fdClosed {
			numbers = append(numbers, n)
		}
	}
	slices.Sort(numbers)

	path := cfg.Path
	if !strings.Contains(path, "/") {
		lp, err := exec.LookPath(path)
		if err != nil {
			return nil, err
		}
		path = lp
	}
	argv := cfg.Args
	if len(argv) == 0 {
		argv = []string{cfg.Path}
	}
	env := cfg.Env
	if env == nil {
		env = os.Environ()
	}

	// The pipes: ours non-blocking (the loop's), the child's blocking (what
	// a program expects of its stdio). Both close-on-exec from the start,
	// so no other fork in the program inherits them.
	files := make([]uintptr, 0, MaxChildFD+1)
	var ours, theirs []int
	var pipes []*pipe
	fail := func(err error) (*Process, error) {
		for _, fd := range ours {
			_ = unix.Close(fd)
		}
		for _, fd := range theirs {
			_ = unix.Close(fd)
		}
		return nil, err
	}
	for _, n := range numbers {
		for len(files) <= n {
			files = append(files, ^uintptr(0)) // -1: closed in the child
		}
		f := fds[n]
		if f.kind == fdInherit {
			files[n] = uintptr(f.fd)
			continue
		}
		var pp [2]int
		if err := unix.Pipe2(pp[:], unix.O_CLOEXEC); err != nil {
			return fail(os.NewSyscallError("pipe2", err))
		}
		mine, child := pp[0], pp[1]
		if f.kind == fdToChild {
			mine, child = pp[1], pp[0]
		}
		ours, theirs = append(ours, mine), append(theirs, child)
		if err := unix.SetNonblock(mine, true); err != nil {
			return fail(os.NewSyscallError("fcntl", err))
		}
		files[n] = uintptr(child)
		pipes = append(pipes, &pipe{fd: n, toChild: f.kind == fdToChild})
	}

	var sys syscall.SysProcAttr
	if cfg.SysProcAttr != nil {
		sys = *cfg.SysProcAttr
	}
	pidfd := -1
	sys.PidFD = &pidfd
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Dir: cfg.Dir, Env: env, Files: files, Sys: &sys})
	for _, fd := range theirs {
		_ = unix.Close(fd)
	}
	theirs = nil
	if err != nil {
		return fail(&os.PathError{Op: "fork/exec", Path: path, Err: err})
	}
	if pidfd < 0 {
		// A kernel without CLONE_PIDFD (before 5.2): pidfd_open (5.3) is
		// still race-free, since nobody but us may reap this child.
		if pidfd, err = unix.PidfdOpen(pid, 0); err != nil {
			_ = unix.Kill(pid, unix.SIGKILL)
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, 0, nil)
			return fail(fmt.Errorf("gyre/process: no pidfd for the child: %w", os.NewSyscallError("pidfd_open", err)))
		}
	}

	p := &Process{loop: loop, proto: proto, data: data, pid: pid, stop: cfg.Stop, pipes: pipes}
	p.own.Init(loop, pidfd, (*pidOps)(p), p.pidfdGone)
	if err := p.own.Submit(0, pollOp); err != nil {
		// The loop refuses ops (it has stopped): end the child now. SIGKILL
		// cannot be caught, so the blocking wait is short.
		_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		_ = unix.Waitid(unix.P_PIDFD, pidfd, nil, unix.WEXITED, nil)
		_ = unix.Close(pidfd)
		return fail(err)
	}
	for i, pp := range pipes {
		pp.p = p
		cc := stream.ConnConfig{Write: stream.WritePlain, WriteEnd: stream.WriteEndClose}
		if pp.toChild {
			cc.Read, cc.WatchHangup, cc.Watermarks = stream.ReadNone, true, cfg.Watermarks
		} else {
			cc.Read, cc.ReadBufferSize = stream.ReadPlain, cfg.ReadBufferSize
		}
		pp.Init(loop, ours[i], cc)
	}
	p.open = len(pipes)
	p.track = loop.Track(p)
	for _, pp := range pipes {
		pp.Start((*pipeProto)(pp), nil)
	}
	p.call(func() { proto.ConnectionMade(p) })
	return p, nil
}
