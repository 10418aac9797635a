package process_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/process"
)

// helperEnv selects a child mode of the test binary (see helperMain).
const helperEnv = "GYRE_PROCESS_HELPER"

// TestMain runs the test binary as a child helper when helperEnv is set,
// and otherwise fails the package if a test leaves a goroutine behind.
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode, os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// patternBlock is the repeating content of the "pattern" helper's output:
// byte i of the stream is byte(i % 251).
var patternBlock = func() []byte {
	b := make([]byte, 251*((128<<10)/251+2))
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}()

func helperMain(mode string, args []string) int {
	switch mode {
	case "pattern": // write args[0] bytes of the pattern to stdout
		n, _ := strconv.Atoi(args[0])
		for off := 0; off < n; {
			k := min(64<<10, n-off)
			if _, err := os.Stdout.Write(patternBlock[off%251 : off%251+k]); err != nil {
				return 3
			}
			off += k
		}
		return 0
	case "exit":
		n, _ := strconv.Atoi(args[0])
		return n
	case "sleep": // never read stdin; run until killed
		if len(args) > 0 && args[0] == "ignore-term" {
			signal.Ignore(syscall.SIGTERM)
			fmt.Fprintln(os.Stdout, "ready")
		}
		time.Sleep(time.Hour)
		return 0
	case "closeout": // close stdout early, then echo stdin to stderr
		_ = os.Stdout.Close()
		data, _ := io.ReadAll(os.Stdin)
		fmt.Fprintf(os.Stderr, "got:%s", data)
		return 0
	case "grandchild": // leave a grandchild holding stdout, print its pid, exit
		p, err := os.StartProcess("/bin/sleep", []string{"sleep", "60"}, &os.ProcAttr{Files: []*os.File{nil, os.Stdout, nil}})
		if err != nil {
			return 4
		}
		fmt.Fprintf(os.Stdout, "%d\n", p.Pid)
		return 0
	case "extra": // fd 4 -> upper case -> fd 3; "inherited" to fd 5
		in := os.NewFile(4, "in")
		data, _ := io.ReadAll(in)
		_, _ = os.NewFile(3, "out").Write(bytes.ToUpper(data))
		_, _ = os.NewFile(5, "passed").Write([]byte("inherited"))
		return 0
	case "env": // report argv, $GYRE_X and the working directory
		wd, _ := os.Getwd()
		fmt.Fprintf(os.Stdout, "%s|%s|%s", strings.Join(args, ","), os.Getenv("GYRE_X"), wd)
		return 0
	}
	return 99
}

// helper is the Config running the test binary in mode with args.
func helper(t testing.TB, mode string, args ...string) process.Config {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return process.Config{
		Path: exe,
		Args: append([]string{"helper"}, args...),
		Env:  append(os.Environ(), helperEnv+"="+mode),
	}
}

// rec records what a process protocol sees; touched on the loop only.
type rec struct {
	t       transports.ProcessTransport
	events  []string
	out     []byte
	errOut  []byte
	child   map[int][]byte
	lost    map[int]error
	status  transports.ProcessStatus
	exitSt  transports.ProcessStatus
	pid     int
	exited  bool
	ended   bool
	onMade  func(r *rec)
	onOut   func(r *rec, p []byte)
	onLost  func(r *rec, fd int)
	onExit  func(r *rec)
	onEnded func(r *rec)
}

func (r *rec) ConnectionMade(t transports.ProcessTransport) {
	r.t, r.pid = t, t.Pid()
	r.events = append(r.events, "made")
	if r.onMade != nil {
		r.onMade(r)
	}
}

func (r *rec) OutReceived(p []byte) {
	r.out = append(r.out, p...)
	if r.onOut != nil {
		r.onOut(r, p)
	}
}

func (r *rec) ErrReceived(p []byte) { r.errOut = append(r.errOut, p...) }

func (r *rec) ChildDataReceived(fd int, p []byte) {
	if r.child == nil {
		r.child = map[int][]byte{}
	}
	r.child[fd] = append(r.child[fd], p...)
}

func (r *rec) ChildConnectionLost(fd int, reason error) {
	if r.lost == nil {
		r.lost = map[int]error{}
	}
	if _, dup := r.lost[fd]; dup {
		panic(fmt.Sprintf("ChildConnectionLost(%d) twice", fd))
	}
	r.lost[fd] = reason
	r.events = append(r.events, "lost:"+strconv.Itoa(fd))
	if r.onLost != nil {
		r.onLost(r, fd)
	}
}

func (r *rec) ProcessExited(st transports.ProcessStatus) {
	r.exited, r.exitSt = true, st
	r.events = append(r.events, "exited")
	if r.onExit != nil {
		r.onExit(r)
	}
}

func (r *rec) ProcessEnded(st transports.ProcessStatus) {
	r.ended, r.status = true, st
	r.events = append(r.events, "ended")
	if r.onEnded != nil {
		r.onEnded(r)
	}
}

// checkOrder verifies the ProcessProtocol contract on r's events: made
// first, each pipe lost exactly once, exited exactly once, ended last and
// once, with the same status as exited.
func checkOrder(t testing.TB, r *rec, pipes ...int) {
	t.Helper()
	ev := r.events
	if len(ev) == 0 || ev[0] != "made" {
		t.Fatalf("events %v: ConnectionMade not first", ev)
	}
	if ev[len(ev)-1] != "ended" {
		t.Fatalf("events %v: ProcessEnded not last", ev)
	}
	count := map[string]int{}
	for _, e := range ev {
		count[e]++
	}
	want := map[string]int{"made": 1, "exited": 1, "ended": 1}
	for _, fd := range pipes {
		want["lost:"+strconv.Itoa(fd)] = 1
	}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Fatalf("events %v: counts %v, want %v", ev, count, want)
	}
	if r.exitSt != r.status {
		t.Fatalf("ProcessExited(%v) but ProcessEnded(%v)", r.exitSt, r.status)
	}
}

// zombies lists the pids of this process's children that have exited and
// not been reaped, without reaping them (waitid WNOWAIT).
func zombies(t testing.TB) []int {
	t.Helper()
	var out []int
	for _, pid := range children(t) {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if err == nil && info.Signo != 0 {
			out = append(out, pid)
		}
	}
	return out
}

// children lists this process's children from /proc/self/task/*/children
// (each thread's children: a child belongs to the thread that forked it).
func children(t testing.TB) []int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/children")
		if err != nil {
			continue // the thread exited meanwhile
		}
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			pids = append(pids, pid)
		}
	}
	return pids
}
