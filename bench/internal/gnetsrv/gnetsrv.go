// Package gnetsrv holds the bench's gnet v2 servers (echo, RESP, HTTP "Hello,
// World!") written as gnet event handlers, the way gnet's own examples are.
// Only bench/ imports gnet.
package gnetsrv

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"

	"github.com/gyre-io/gyre/bench/internal/minresp"
)

// Hello is the HTTP body.
const Hello = "Hello, World!"

// Serve runs a gnet engine for proto ("echo", "resp", "http") on addr with
// loops event loops (multicore and SO_REUSEPORT when loops > 1) until ctx is
// done. ready, if not nil, is called once the engine accepts connections.
func Serve(ctx context.Context, proto, addr string, loops int, ready func()) error {
	if loops < 1 {
		loops = 1
	}
	h := &handler{proto: proto, ready: ready, ctx: ctx}
	switch proto {
	case "echo", "http":
	case "resp":
		h.store = minresp.NewStore()
	default:
		return fmt.Errorf("gnetsrv: unknown protocol %q", proto)
	}
	h.setDate()
	opts := []gnet.Option{
		gnet.WithMulticore(loops > 1),
		gnet.WithNumEventLoop(loops),
		gnet.WithReusePort(loops > 1),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLogLevel(logging.ErrorLevel),
		gnet.WithLogger(stderrLogger{}),
		gnet.WithTicker(proto == "http"),
	}
	return gnet.Run(h, "tcp://"+addr, opts...)
}

// stderrLogger keeps gnet's warnings and errors on stderr and drops the rest
// (gnet's default logger prints INFO lines on stdout, which carries the
// READY line).
type stderrLogger struct{}

func (stderrLogger) Debugf(string, ...any) {}
func (stderrLogger) Infof(string, ...any)  {}
func (stderrLogger) Warnf(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "gnet: warning: "+f+"\n", a...)
}
func (stderrLogger) Errorf(f string, a ...any) { fmt.Fprintf(os.Stderr, "gnet: error: "+f+"\n", a...) }
func (stderrLogger) Fatalf(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "gnet: fatal: "+f+"\n", a...)
	os.Exit(1)
}

type handler struct {
	gnet.BuiltinEventEngine
	proto string
	ready func()
	ctx   context.Context
	store *minresp.Store
	date  atomic.Pointer[[]byte]
	stop  func() bool
}

// connState is per-connection scratch for RESP and HTTP.
type connState struct {
	args [][]byte
	out  []byte
}

func (h *handler) OnBoot(eng gnet.Engine) gnet.Action {
	h.stop = context.AfterFunc(h.ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = eng.Stop(sctx)
	})
	if h.ready != nil {
		h.ready()
	}
	return gnet.None
}

func (h *handler) OnShutdown(gnet.Engine) {
	if h.stop != nil {
		h.stop()
	}
}

func (h *handler) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if h.proto != "echo" {
		c.SetContext(&connState{out: make([]byte, 0, 4096)})
	}
	return nil, gnet.None
}

func (h *handler) OnTick() (time.Duration, gnet.Action) {
	h.setDate()
	return time.Second, gnet.None
}

func (h *handler) setDate() {
	b := []byte(time.Now().UTC().Format(http.TimeFormat))
	h.date.Store(&b)
}

func (h *handler) OnTraffic(c gnet.Conn) gnet.Action {
	switch h.proto {
	case "echo":
		buf, _ := c.Next(-1)
		_, _ = c.Write(buf)
		return gnet.None
	case "resp":
		return h.resp(c)
	}
	return h.http(c)
}

func (h *handler) resp(c gnet.Conn) gnet.Action {
	st := c.Context().(*connState)
	buf, _ := c.Peek(-1)
	off := 0
	quit := false
	st.out = st.out[:0]
	for !quit && off < len(buf) {
		var n int
		var err error
		st.args, n, err = minresp.Parse(buf[off:], st.args)
		if err != nil {
			_, _ = c.Write(minresp.ErrorReply(st.out))
			return gnet.Close
		}
		if n == 0 {
			break
		}
		off += n
		st.out, quit = h.store.Exec(st.args, st.out)
	}
	if len(st.out) > 0 {
		_, _ = c.Write(st.out)
	}
	if off > 0 {
		_, _ = c.Discard(off) // Discard(0) would drop everything
	}
	if quit {
		return gnet.Close
	}
	return gnet.None
}

var crlf2 = []byte("\r\n\r\n")

func (h *handler) http(c gnet.Conn) gnet.Action {
	st := c.Context().(*connState)
	buf, _ := c.Peek(-1)
	off := 0
	st.out = st.out[:0]
	date := *h.date.Load()
	for {
		i := bytes.Index(buf[off:], crlf2)
		if i < 0 {
			break
		}
		off += i + 4
		st.out = append(st.out, "HTTP/1.1 200 OK\r\nServer: gnet\r\nContent-Type: text/plain; charset=utf-8\r\nDate: "...)
		st.out = append(st.out, date...)
		st.out = append(st.out, "\r\nContent-Length: "...)
		st.out = strconv.AppendInt(st.out, int64(len(Hello)), 10)
		st.out = append(st.out, "\r\n\r\n"+Hello...)
	}
	if len(st.out) > 0 {
		_, _ = c.Write(st.out)
	}
	if off > 0 {
		_, _ = c.Discard(off) // Discard(0) would drop everything
	}
	if len(buf)-off > 64<<10 {
		return gnet.Close
	}
	return gnet.None
}
