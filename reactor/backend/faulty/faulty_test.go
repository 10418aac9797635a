package faulty_test

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/backend/faulty"
)

// trace runs a fixed op sequence (sends of 64 bytes on a socketpair, one
// at a time) through a wrapper seeded with seed and returns the results.
func trace(t *testing.T, name string, seed uint64) ([]int32, faulty.Stats) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	b := faulty.New(newInner(t, name, backend.Config{}), faulty.Config{Seed: seed, FaultRate: 0.3, ShortRate: 0.3})
	defer b.Close()
	buf := make([]byte, 64)
	rbuf := make([]byte, 1024)
	var res []int32
	out := make([]backend.Completion, 8)
	for i := range 64 {
		op := &backend.Op{Kind: backend.KindSend, Fd: int32(fds[0]), Buf: buf, Token: backend.MakeToken(uint32(i), 1)}
		if err := b.Submit(op); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			n, err := b.Wait(out, 100*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if n == 1 {
				if out[0].Token != op.Token || out[0].More() {
					t.Fatalf("completion %+v for op %v", out[0], op.Token)
				}
				res = append(res, out[0].Res)
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no completion")
			}
		}
		_, _ = unix.Read(fds[1], rbuf)
	}
	return res, b.Injected()
}

// TestSeedReplays: the same seed gives the same faults for the same op
// sequence; another seed gives others. Every op got exactly one final
// completion and the wrapper holds nothing afterwards.
func TestSeedReplays(t *testing.T) {
	for _, name := range backends() {
		t.Run(name, func(t *testing.T) {
			a, sa := trace(t, name, 42)
			b, _ := trace(t, name, 42)
			c, _ := trace(t, name, 43)
			if fmt.Sprint(a) != fmt.Sprint(b) {
				t.Fatalf("seed 42 did not replay:\n%v\n%v", a, b)
			}
			if fmt.Sprint(a) == fmt.Sprint(c) {
				t.Fatalf("seeds 42 and 43 gave the same faults: %v", a)
			}
			if sa.Failed == 0 || sa.Shortened == 0 {
				t.Fatalf("nothing injected: %+v", sa)
			}
			if sa.OpsInFlight != 0 || sa.ShadowsAlive != 0 || sa.BuffersOut != 0 {
				t.Fatalf("left over: %+v", sa)
			}
			t.Logf("seed 42: %+v", sa)
		})
	}
}
