package soak

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/process"
)

// The process soak: a few cat-like children spawned on one faulty loop
// (their pipes are stream connections, whose reads and writes the injector
// fails with EAGAIN, EINTR or EPIPE, shortens, delays and reorders), each
// fed seeded data on stdin. After every run, per child:
//
//   - stdout is a prefix of what Write accepted for stdin, and all of it
//     (or exactly the first K bytes for `head -c K`) unless a pipe reported
//     a loss; stderr is empty;
//   - ChildConnectionLost exactly once per pipe, ProcessExited then
//     ProcessEnded exactly once each, with the status the child must end
//     with, and nothing after ProcessEnded;
//   - the child is reaped: Pid() is 0 and it is no longer among this
//     process's children (/proc/self/task/*/children), so no zombie;
//   - and the harness's rest and baseline checks.

const nProcs = 4

// Child variants.
const (
	pCat  = iota // cat: exit 0, stdout == stdin
	pExit        // sh -c 'cat; exit N'
	pHead        // sh -c 'head -c K; exit N': stdout == first K bytes of stdin
	pKill        // cat, stdin left open, killed with SIGKILL
	nVariants
)

var variantNames = [...]string{"cat", "exit", "head", "kill"}

func TestSoakProcess(t *testing.T) {
	cat, err := lookPath("cat")
	if err != nil {
		t.Skipf("no cat: %v", err)
	}
	sh, err := lookPath("sh")
	if err != nil {
		t.Skipf("no sh: %v", err)
	}
	eachSeed(t, []string{"process/cat"}, func(t *testing.T, kind reactor.BackendKind, _ string, seed uint64) {
		h := startHarness(t, kind, seed)
		if h == nil {
			return
		}
		(&procRun{h: h, seed: seed, cat: cat, sh: sh}).do()
	})
}

func lookPath(name string) (string, error) {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not in PATH", name)
}

type procRun struct {
	h       *harness
	seed    uint64
	cat, sh string
	kids    []*kid
	ended   int
}

// kid records one child's protocol calls.
type kid struct {
	r       *procRun
	id      int
	variant int
	code    int // pExit, pHead: the exit code asked for
	head    int // pHead: bytes head copies
	chunks  [][]byte
	tr      transports.ProcessTransport
	pid     int

	written   []byte // accepted by Write
	writeErr  error  // first Write error
	out, errb []byte
	made      int
	lost      map[int][]error
	exited    []transports.ProcessStatus
	ended     []transports.ProcessStatus
	order     []string // "exited", "ended"
	after     int      // calls after ProcessEnded
	pidAtEnd  int      // Pid() inside ProcessEnded
	killErr   error
	stdinLost bool // stdin reported lost
}

func (k *kid) call() {
	if len(k.ended) > 0 {
		k.after++
	}
}

func (k *kid) ConnectionMade(t transports.ProcessTransport) {
	k.call()
	k.made++
	k.tr = t
}

func (k *kid) OutReceived(p []byte) { k.call(); k.out = append(k.out, p...) }
func (k *kid) ErrReceived(p []byte) { k.call(); k.errb = append(k.errb, p...) }

func (k *kid) ChildConnectionLost(fd int, reason error) {
	k.call()
	k.lost[fd] = append(k.lost[fd], reason)
	if fd == 0 && !errors.Is(reason, transports.ErrConnectionDone) {
		k.stdinLost = true
	}
}

func (k *kid) ProcessExited(s transports.ProcessStatus) {
	k.call()
	k.exited = append(k.exited, s)
	k.order = append(k.order, "exited")
}

func (k *kid) ProcessEnded(s transports.ProcessStatus) {
	k.call()
	k.ended = append(k.ended, s)
	k.order = append(k.order, "ended")
	k.pidAtEnd = k.tr.Pid()
	k.r.ended++
}

// write writes chunk i, recording what was accepted.
func (k *kid) write(i int) {
	if len(k.ended) > 0 {
		return
	}
	err := k.tr.Write(k.chunks[i])
	if err == nil {
		k.written = append(k.written, k.chunks[i]...)
	} else if k.writeErr == nil {
		k.writeErr = err
	}
}

func (r *procRun) do() {
	h, t := r.h, r.h.t
	rng := rand.New(rand.NewPCG(r.seed, 13))
	h.loop.Do(func() {
		for i := range nProcs {
			k := &kid{r: r, id: i, variant: rng.IntN(nVariants), lost: map[int][]error{}}
			cfg := process.Config{Path: r.cat, Args: []string{"cat"}, Env: []string{"PATH=" + os.Getenv("PATH")}}
			switch k.variant {
			case pExit:
				k.code = 1 + rng.IntN(100)
				cfg.Path, cfg.Args = r.sh, []string{"sh", "-c", "cat; exit " + strconv.Itoa(k.code)}
			case pHead:
				k.code, k.head = rng.IntN(100), 1+rng.IntN(32<<10)
				cfg.Path, cfg.Args = r.sh, []string{"sh", "-c", fmt.Sprintf("head -c %d; exit %d", k.head, k.code)}
			}
			for range 2 + rng.IntN(6) {
				b := make([]byte, 1+rng.IntN(16<<10))
				for j := range b {
					b[j] = byte(rng.Uint32())
				}
				k.chunks = append(k.chunks, b)
			}
			r.kids = append(r.kids, k)
			if _, err := process.Spawn(h.loop.Loop, k, cfg); err != nil {
				t.Errorf("child %d (%s): spawn: %v", i, variantNames[k.variant], err)
				k.ended = append(k.ended, transports.ProcessStatus{}) // nothing to wait for
				r.ended++
				continue
			}
			k.pid = k.tr.Pid()
			// Half the chunks at once, the rest one per later turn, then
			// close stdin (or, for pKill, kill the child).
			n := len(k.chunks)
			for c := range n {
				if c < n/2 {
					k.write(c)
					continue
				}
				h.loop.CallLater(time.Duration(c)*time.Millisecond, func() { k.write(c) })
			}
			end := time.Duration(n) * time.Millisecond
			h.loop.CallLater(end, func() {
				if len(k.ended) > 0 {
					return
				}
				if k.variant == pKill {
					k.killErr = k.tr.Kill()
					return
				}
				if err := k.tr.CloseStdin(); err != nil && !errors.Is(err, transports.ErrClosed) {
					t.Errorf("child %d: CloseStdin: %v", k.id, err)
				}
			})
		}
		// The zombie check must see children: every child just spawned
		// (none reaped yet: that needs a later turn) is listed.
		if kids := children(t); kids != nil {
			for _, k := range r.kids {
				if k.pid != 0 && !kids[k.pid] {
					t.Errorf("child %d (pid %d) not among /proc/self/task/*/children right after spawn", k.id, k.pid)
				}
			}
		}
	})
	if !h.loop.Eventually(15*time.Second, func() bool { return r.ended == nProcs }) {
		h.loop.Do(func() {
			for _, k := range r.kids {
				if len(k.ended) == 0 {
					t.Errorf("child %d (%s, pid %d): not ended after 15 s: exited %v, pipes lost %v, %d of %d bytes back",
						k.id, variantNames[k.variant], k.pid, k.exited, k.lost, len(k.out), len(k.written))
				}
			}
		})
	}
	inj := h.settle()
	var kids map[int]bool
	h.loop.Do(func() { kids = children(t) })
	h.stop(inj, func() { r.check(kids) })
}

// children is the set of this process's children (any thread's), from
// /proc/self/task/*/children (Linux 3.5 with CONFIG_PROC_CHILDREN).
func children(t *testing.T) map[int]bool {
	files, _ := filepath.Glob("/proc/self/task/*/children")
	if len(files) == 0 {
		t.Log("no /proc/self/task/*/children: zombie check by Pid() only")
		return nil
	}
	out := map[int]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		for _, s := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(s); err == nil {
				out[pid] = true
			}
		}
	}
	return out
}

func (r *procRun) check(kids map[int]bool) {
	t := r.h.t
	for _, k := range r.kids {
		if k.pid == 0 {
			continue // spawn failed (reported)
		}
		who := fmt.Sprintf("child %d (%s, pid %d)", k.id, variantNames[k.variant], k.pid)
		if k.made != 1 {
			t.Errorf("%s: ConnectionMade %d times", who, k.made)
		}
		for _, fd := range []int{0, 1, 2} {
			if len(k.lost[fd]) != 1 {
				t.Errorf("%s: ChildConnectionLost(%d) %d times: %v", who, fd, len(k.lost[fd]), k.lost[fd])
			}
		}
		if len(k.lost) != 3 {
			t.Errorf("%s: ChildConnectionLost for descriptors %v", who, k.lost)
		}
		if len(k.order) != 2 || k.order[0] != "exited" || k.order[1] != "ended" {
			t.Errorf("%s: calls %v, want ProcessExited then ProcessEnded once each", who, k.order)
		}
		if k.after != 0 {
			t.Errorf("%s: %d calls after ProcessEnded", who, k.after)
		}
		if k.pidAtEnd != 0 {
			t.Errorf("%s: Pid() %d in ProcessEnded (not reaped)", who, k.pidAtEnd)
		}
		if kids[k.pid] {
			t.Errorf("%s: still a child of this process (zombie)", who)
		}
		if len(k.errb) != 0 {
			t.Errorf("%s: stderr %q", who, k.errb[:min(len(k.errb), 200)])
		}
		// Status.
		var want transports.ProcessStatus
		switch k.variant {
		case pExit, pHead:
			want.Code = k.code
		case pKill:
			want.Signal = syscall.SIGKILL
			if k.stdinLost && (k.killErr != nil || len(k.exited) > 0 && k.exited[0].Exited()) {
				// stdin was lost (an injected EPIPE): its pipe was
				// closed, and cat read end of file and may have exited
				// before the kill.
				want = transports.ProcessStatus{}
			} else if k.killErr != nil {
				t.Errorf("%s: Kill: %v", who, k.killErr)
			}
		}
		for _, s := range append(append([]transports.ProcessStatus(nil), k.exited...), k.ended...) {
			if s != want {
				t.Errorf("%s: status %+v, want %+v", who, s, want)
			}
		}
		t.Logf("%s: %d bytes in, %d out, status %+v, pipes %v", who, len(k.written), len(k.out), k.ended, k.lost)
		// Bytes.
		loss := k.writeErr != nil
		for _, fd := range []int{0, 1} {
			for _, reason := range k.lost[fd] {
				if !errors.Is(reason, transports.ErrConnectionDone) {
					loss = true
				}
			}
		}
		wantOut := k.written
		switch k.variant {
		case pHead:
			wantOut = k.written[:min(len(k.written), k.head)]
		case pKill:
			loss = true // killed: what cat had not copied yet is gone
		}
		if !bytes.HasPrefix(wantOut, k.out) {
			t.Errorf("%s: stdout (%d bytes) is not a prefix of stdin's (%d bytes)", who, len(k.out), len(wantOut))
		} else if len(k.out) < len(wantOut) && !loss {
			t.Errorf("%s: stdout %d of %d bytes, yet no pipe reported a loss (stdin %v, stdout %v)",
				who, len(k.out), len(wantOut), k.lost[0], k.lost[1])
		}
	}
}
