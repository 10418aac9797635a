package process_test

import (
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/process"
)

const benchChunk = 64 << 10

var benchBuf = make([]byte, benchChunk)

// benchKinds are the backends to benchmark: GYRE_BACKEND alone if set.
func benchKinds(b *testing.B) map[string]reactor.BackendKind {
	if v := os.Getenv(reactor.EnvBackend); v != "" {
		k, err := reactor.ParseBackend(v)
		if err != nil {
			b.Fatal(err)
		}
		return map[string]reactor.BackendKind{v: k}
	}
	return map[string]reactor.BackendKind{"uring": reactor.Uring, "epoll": reactor.Epoll}
}

// catFeeder writes total bytes into cat's stdin as a push producer (paused
// at the stdin queue's high watermark) and counts what comes back.
type catFeeder struct {
	transports.ProcessProtocolBase
	total, sent, got int
	paused           bool
	done             chan struct{}
}

func (c *catFeeder) ConnectionMade(t transports.ProcessTransport) {
	c.Transport = t
	_ = t.RegisterProducer(c, true)
	c.ResumeProducing()
}

func (c *catFeeder) ResumeProducing() {
	c.paused = false
	for !c.paused && c.sent < c.total {
		n := min(benchChunk, c.total-c.sent)
		_ = c.Transport.Write(benchBuf[:n])
		c.sent += n
	}
	if c.sent == c.total {
		c.Transport.UnregisterProducer()
		_ = c.Transport.CloseStdin()
	}
}

func (c *catFeeder) PauseProducing()      { c.paused = true }
func (c *catFeeder) StopProducing()       {}
func (c *catFeeder) OutReceived(p []byte) { c.got += len(p) }
func (c *catFeeder) ProcessEnded(transports.ProcessStatus) {
	close(c.done)
}

// BenchmarkCat: bytes through cat (stdin → child → stdout), b.N chunks of
// 64 KiB in one child: the loop (writes with flow control, reads into the
// pipe's buffer) against os/exec with io.Copy on two goroutines. Compare
// the MB/s of the sub-benchmarks.
func BenchmarkCat(b *testing.B) {
	for name, kind := range benchKinds(b) {
		b.Run("gyre-"+name, func(b *testing.B) {
			h := reactortest.Start(b, kind)
			b.SetBytes(benchChunk)
			b.ReportAllocs()
			c := &catFeeder{total: b.N * benchChunk, done: make(chan struct{})}
			b.ResetTimer()
			h.Do(func() {
				if _, err := process.Spawn(h.Loop, c, process.Config{Path: "/bin/cat"}); err != nil {
					b.Error(err)
					close(c.done)
				}
			})
			select {
			case <-c.done:
			case <-time.After(5 * time.Minute):
				b.Fatal("cat did not end")
			}
			b.StopTimer()
			if c.got != c.total {
				b.Fatalf("got %d bytes of %d", c.got, c.total)
			}
		})
	}
	b.Run("os-exec", func(b *testing.B) {
		b.SetBytes(benchChunk)
		b.ReportAllocs()
		cmd := exec.Command("/bin/cat")
		in, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		go func() {
			for i := 0; i < b.N; i++ {
				if _, err := in.Write(benchBuf); err != nil {
					break
				}
			}
			_ = in.Close()
		}()
		n, err := io.Copy(io.Discard, out)
		if err != nil || n != int64(b.N)*benchChunk {
			b.Fatalf("copied %d, %v", n, err)
		}
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkSpawn: start /bin/true and wait for its end, one at a time: the
// loop (ProcessEnded: reaped, every pipe closed) against os/exec's Run.
func BenchmarkSpawn(b *testing.B) {
	for name, kind := range benchKinds(b) {
		b.Run("gyre-"+name, func(b *testing.B) {
			h := reactortest.Start(b, kind)
			b.ReportAllocs()
			done := make(chan struct{})
			n := 0
			var next func()
			next = func() {
				r := &rec{onEnded: func(*rec) {
					if n++; n < b.N {
						next()
					} else {
						close(done)
					}
				}}
				if _, err := process.Spawn(h.Loop, r, process.Config{Path: "/bin/true"}); err != nil {
					b.Error(err)
					close(done)
				}
			}
			b.ResetTimer()
			h.Do(next)
			<-done
		})
	}
	b.Run("os-exec", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := exec.Command("/bin/true").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
