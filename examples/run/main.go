// Command run runs a command with its stdin, stdout and stderr piped
// through a gyre loop, and exits like a shell would with the command's
// status: its exit code, or 128 + the signal number if a signal killed it.
//
//	go run ./examples/run [-backend auto|uring|epoll] -- CMD ARG...
//
// Our stdin is copied to the child's stdin (end of file closes it), the
// child's stdout and stderr to ours, all with flow control: a slow reader
// of our stdout pauses reading from the child (which then blocks on its
// full pipe), and a child slow to read its stdin pauses reading ours.
// SIGINT, SIGTERM and SIGHUP sent to run are passed on to the child.
// Exit status 127: the command was not found; 126: it could not be
// executed; 2: bad command line; 1: the loop failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/process"
	"github.com/gyre-io/gyre/transports/stream"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	// No flag default (flag would print it after ours): "" means
	// $GYRE_BACKEND, else auto.
	be := fs.String("backend", "", "backend: auto, uring or epoll (default: $"+reactor.EnvBackend+", else auto)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: run [-backend auto|uring|epoll] -- CMD ARG...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	from := ""
	if *be == "" {
		*be, from = os.Getenv(reactor.EnvBackend), " (default from "+reactor.EnvBackend+")"
	}
	kind, err := reactor.ParseBackend(*be)
	if err != nil {
		fmt.Fprintf(os.Stderr, "run: -backend%s: %v\n", from, err)
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	loop, err := reactor.New(reactor.Config{Backend: kind, IgnoreEnv: true})
	if err != nil {
		fmt.Fprintf(os.Stderr, "run: %v\n", err)
		return 1
	}

	r := &runner{loop: loop, code: 1}
	if err := loop.Call(func() { r.start(fs.Args()) }); err != nil {
		fmt.Fprintf(os.Stderr, "run: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = loop.Call(func() { r.signal(s.(syscall.Signal)) })
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := loop.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "run: %v\n", err)
		return 1
	}
	return r.code
}

// runner joins our stdio to the child's pipes. Loop goroutine only.
type runner struct {
	transports.ProcessProtocolBase
	loop    *reactor.Loop
	proc    *process.Process
	in      *stream.Conn // our stdin, read
	out     *stream.Conn // our stdout, written
	errw    *stream.Conn // our stderr, written
	writers int          // out and errw not yet closed
	pauses  int          // out and errw asking the child's output to pause
	code    int
	ended   bool
}

func (r *runner) start(argv []string) {
	defer func() {
		if r.proc == nil {
			r.finish()
		}
	}()
	in, _, err := ownFD(0, unix.O_RDONLY)
	if err != nil {
		fmt.Fprintf(os.Stderr, "run: stdin: %v\n", err)
		return
	}
	out, outPipe, err := ownFD(1, unix.O_WRONLY)
	if err != nil {
		_ = unix.Close(in)
		fmt.Fprintf(os.Stderr, "run: stdout: %v\n", err)
		return
	}
	errw, errPipe, err := ownFD(2, unix.O_WRONLY)
	if err != nil {
		_ = unix.Close(in)
		_ = unix.Close(out)
		fmt.Fprintf(os.Stderr, "run: stderr: %v\n", err)
		return
	}
	// A pipe's reader going away is noticed even while nothing is written
	// (WatchHangup: poll for POLLERR; regular files and terminals cannot
	// be polled for it).
	wcfg := stream.ConnConfig{Read: stream.ReadNone, Write: stream.WritePlain, WriteEnd: stream.WriteEndClose}
	wcfg.WatchHangup = outPipe
	r.out = stream.NewConn(r.loop, out, wcfg)
	wcfg.WatchHangup = errPipe
	r.errw = stream.NewConn(r.loop, errw, wcfg)
	r.in = stream.NewConn(r.loop, in, stream.ConnConfig{Read: stream.ReadPlain, Write: stream.WritePlain, WriteEnd: stream.WriteEndClose})
	r.writers = 2
	r.out.Start(&sink{r: r, fd: 1}, nil)
	r.errw.Start(&sink{r: r, fd: 2}, nil)
	// Our stdin stays paused until the child's stdin is there to take it.
	r.in.PauseReading()
	r.in.Start(&source{r: r}, nil)

	cfg := process.Config{Path: argv[0], Args: argv}
	r.proc, err = process.Spawn(r.loop, r, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "run: %v\n", err)
		r.code = 126
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			r.code = 127
		}
		_ = r.in.LoseConnection()
		_ = r.out.LoseConnection()
		_ = r.errw.LoseConnection()
		return
	}
	// Flow control both ways: our stdin pauses while the child's stdin
	// queue is above its high watermark; the child's output pauses while
	// either of our writers is.
	_ = r.proc.RegisterProducer(r.in, true)
	_ = r.out.RegisterProducer(&pauser{r: r}, true)
	_ = r.errw.RegisterProducer(&pauser{r: r}, true)
	r.in.ResumeReading()
}

func (r *runner) signal(sig syscall.Signal) {
	if r.proc != nil {
		_ = r.proc.Signal(sig)
	}
}

// OutReceived implements transports.ProcessProtocol.
func (r *runner) OutReceived(p []byte) { _ = r.out.Write(p) }

// ErrReceived implements transports.ProcessProtocol.
func (r *runner) ErrReceived(p []byte) { _ = r.errw.Write(p) }

// ChildConnectionLost implements transports.ProcessProtocol: once the
// child's stdin is gone, stop reading ours.
func (r *runner) ChildConnectionLost(fd int, reason error) {
	if fd == 0 {
		_ = r.in.LoseConnection()
	}
}

// ProcessEnded implements transports.ProcessProtocol: flush our stdout and
// stderr, then stop (finish).
func (r *runner) ProcessEnded(st transports.ProcessStatus) {
	r.code = st.ExitCode()
	r.ended = true
	_ = r.in.LoseConnection()
	_ = r.out.LoseConnection()
	_ = r.errw.LoseConnection()
}

func (r *runner) finish() {
	if r.writers == 0 && (r.proc == nil || r.ended) {
		r.loop.Stop()
	}
}

// pauser is a writer's producer: the child's output, paused while any
// writer is above its watermark. A writer that is gone (StopProducing)
// withdraws its pause, so the child's other pipes are read to their end.
type pauser struct {
	r      *runner
	paused bool
}

func (p *pauser) PauseProducing() {
	if p.paused {
		return
	}
	p.paused = true
	if p.r.pauses++; p.r.pauses == 1 {
		p.r.proc.PauseReading()
	}
}

func (p *pauser) ResumeProducing() {
	if !p.paused {
		return
	}
	p.paused = false
	if p.r.pauses--; p.r.pauses == 0 {
		p.r.proc.ResumeReading()
	}
}

func (p *pauser) StopProducing() { p.ResumeProducing() }

// sink is the protocol of our stdout or stderr: when it is closed by its
// reader (EPIPE), the child's matching pipe is closed too, so the child
// sees EPIPE as it would in a shell pipeline.
type sink struct {
	r  *runner
	fd int
}

func (s *sink) ConnectionMade(transports.Transport) {}
func (s *sink) DataReceived([]byte)                 {}
func (s *sink) ConnectionLost(reason error) {
	if s.r.proc != nil && !s.r.ended {
		_ = s.r.proc.CloseChildFD(s.fd)
	}
	s.r.writers--
	s.r.finish()
}

// source is the protocol of our stdin: its bytes go to the child's stdin,
// its end closes the child's stdin (after flushing).
type source struct{ r *runner }

func (s *source) ConnectionMade(transports.Transport) {}
func (s *source) DataReceived(p []byte) {
	if s.r.proc != nil {
		_ = s.r.proc.Write(p)
	}
}
func (s *source) ConnectionLost(error) {
	if s.r.proc != nil {
		_ = s.r.proc.CloseStdin()
	}
}

// ownFD returns a descriptor for our stdio descriptor fd that the loop may
// use non-blocking without changing the file description other processes
// (our parent shell, the terminal) share: a pipe, FIFO or terminal is
// opened anew through /proc/self/fd (a description of its own, set
// non-blocking); a regular file, which never blocks, is duplicated; as a
// last resort (a socket) the duplicate is set non-blocking. pollable
// reports a pipe or socket (whose reader's end can be watched).
func ownFD(fd, mode int) (nfd int, pollable bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return -1, false, os.NewSyscallError("fstat", err)
	}
	typ := st.Mode & unix.S_IFMT
	pollable = typ == unix.S_IFIFO || typ == unix.S_IFSOCK
	if typ == unix.S_IFIFO || typ == unix.S_IFCHR {
		nfd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), mode|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err == nil {
			return nfd, pollable, nil
		}
	}
	nfd, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return -1, false, os.NewSyscallError("fcntl", err)
	}
	if typ != unix.S_IFREG {
		if err := unix.SetNonblock(nfd, true); err != nil {
			_ = unix.Close(nfd)
			return -1, false, os.NewSyscallError("fcntl", err)
		}
	}
	return nfd, pollable, nil
}
