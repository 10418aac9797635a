package unix_test

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	gunix "github.com/gyre-io/gyre/transports/unix"
)

// TestMain fails the package if any test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a Protocol that records what happens to it. Loop goroutine only.
type recorder struct {
	t      transports.Transport
	data   bytes.Buffer
	made   int
	lost   int
	reason error
	echo   bool
	onMade func(r *recorder)
	onData func(r *recorder, p []byte)
}

func (r *recorder) ConnectionMade(t transports.Transport) {
	r.t = t
	r.made++
	if r.onMade != nil {
		r.onMade(r)
	}
}

func (r *recorder) DataReceived(p []byte) {
	if r.echo {
		_ = r.t.Write(p)
	}
	r.data.Write(p)
	if r.onData != nil {
		r.onData(r, p)
	}
}

func (r *recorder) ConnectionLost(reason error) {
	r.lost++
	r.reason = reason
}

// fdRecorder is a recorder that receives descriptors.
type fdRecorder struct {
	recorder
	fds   [][]int
	order []string // "fds" and "data" in delivery order
}

func (r *fdRecorder) FDsReceived(fds []int) {
	r.fds = append(r.fds, append([]int(nil), fds...))
	r.order = append(r.order, "fds")
}

func (r *fdRecorder) DataReceived(p []byte) {
	r.order = append(r.order, "data")
	r.recorder.DataReceived(p)
}

// built collects the protocols a factory built.
type built[P any] struct {
	mu sync.Mutex
	ps []P
}

func (b *built[P]) add(p P) {
	b.mu.Lock()
	b.ps = append(b.ps, p)
	b.mu.Unlock()
}

func (b *built[P]) list() []P {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]P(nil), b.ps...)
}

// listen listens on path with recorders from mk; the port is closed when
// the test ends.
func listen(t *testing.T, h *reactortest.Loop, path string, opts gunix.ListenOptions, mk func() *recorder) (*gunix.Port, *built[*recorder]) {
	t.Helper()
	b := new(built[*recorder])
	f := transports.FactoryFunc(func(net.Addr) transports.Protocol {
		r := mk()
		b.add(r)
		return r
	})
	p, err := gunix.Listen(h.Loop, path, f, opts)
	require.NoError(t, err)
	t.Cleanup(func() { h.Do(func() { _ = p.Close() }) })
	return p, b
}

func dial(t *testing.T, path string) *net.UnixConn {
	t.Helper()
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c.(*net.UnixConn)
}

// sockPath is a socket path in a fresh directory.
func sockPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "s.sock")
}

// abstractName is an abstract name unique to this test.
func abstractName(t testing.TB) string {
	return "@gyre-test-" + filepath.Base(t.TempDir()) + "-" + time.Now().Format("150405.000000000")
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
