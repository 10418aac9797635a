// Package loadgen is the bench's load generator for echo, RESP and HTTP/1.1:
// N connections, each sending batches of Depth requests (pipelined, as
// redis-benchmark -P does) and reading the replies, verifying every reply byte
// for byte (echo, RESP) or by status and body (HTTP), recording each
// request's latency (batch sent → reply read) in a histogram.
package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gyre-io/gyre/bench/internal/hist"
)

// Config describes one load run. Zero fields take the defaults noted.
type Config struct {
	// Proto is "echo", "resp", "http" or "udpecho" (UDP: each connection
	// is a connected UDP socket, each request one datagram of Size bytes,
	// its reply the same datagram; a lost datagram is a connection's
	// error, found at the grace deadline).
	Proto string
	// Addr is the server's HOST:PORT.
	Addr string
	// Conns is the number of connections (default 1).
	Conns int
	// Size is the echo message size, or the RESP SET value size (default 64).
	Size int
	// Depth is the number of requests in flight per connection, sent as one
	// batch (default 1).
	Depth int
	// Op selects RESP requests: "ping" (default) or "setget" (SET and GET of
	// the connection's own key, alternating).
	Op string
	// Warmup runs before measuring (default 0); Duration is the measured
	// window (default 1 s). Both bound the run; so does MaxRequests when > 0.
	Warmup, Duration time.Duration
	// MaxRequests stops the run after this many replies (0: no cap).
	MaxRequests int64
	// TLS, if set, makes every connection speak TLS with crypto/tls (the
	// handshake is done before the run starts).
	TLS *tls.Config
	// OnMeasure, if set, is called when the measured window starts, and
	// OnEnd when it ends (before connections close).
	OnMeasure, OnEnd func()
}

// Result is the outcome of one run.
type Result struct {
	// Requests completed inside the measured window.
	Requests int64
	// Errors: failed dials, I/O errors and wrong replies (each ends its
	// connection's run).
	Errors int64
	// Window is the measured window's length.
	Window time.Duration
	// Hist holds the latencies (ns) of the requests counted in Requests.
	Hist *hist.Histogram
}

// RPS is requests per second over the measured window.
func (r Result) RPS() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Window.Seconds()
}

// Line formats r as the one-line `RESULT key=value …` report.
func (r Result) Line(cfg Config) string {
	cfg = cfg.withDefaults()
	us := func(q float64) string {
		return strconv.FormatFloat(float64(r.Hist.Quantile(q))/1e3, 'f', 1, 64)
	}
	mean := 0.0
	if r.Hist.Count() > 0 {
		mean = r.Hist.Mean() / 1e3
	}
	return fmt.Sprintf("RESULT proto=%s op=%s conns=%d size=%d depth=%d window_s=%.3f requests=%d rps=%.0f p50_us=%s p99_us=%s p999_us=%s mean_us=%.1f max_us=%.1f errors=%d",
		cfg.Proto, cfg.Op, cfg.Conns, cfg.Size, cfg.Depth, r.Window.Seconds(), r.Requests, r.RPS(),
		us(0.5), us(0.99), us(0.999), mean, float64(r.Hist.Max())/1e3, r.Errors)
}

func (c Config) withDefaults() Config {
	if c.Conns <= 0 {
		c.Conns = 1
	}
	if c.Size <= 0 {
		c.Size = 64
	}
	if c.Depth <= 0 {
		c.Depth = 1
	}
	if c.Duration <= 0 {
		c.Duration = time.Second
	}
	if c.Op == "" {
		c.Op = "ping"
	}
	if c.Proto != "resp" {
		c.Op = "-"
	}
	return c
}

// ErrNoConnection is returned when no connection could be made.
var ErrNoConnection = errors.New("loadgen: no connection to the server")

// Run runs the load and returns its result. It is bounded by
// Warmup+Duration (plus a grace period for replies in flight) and by ctx.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	network := "tcp"
	switch cfg.Proto {
	case "echo", "http":
	case "udpecho":
		network = "udp"
	case "resp":
		if cfg.Op != "ping" && cfg.Op != "setget" {
			return Result{}, fmt.Errorf("loadgen: unknown RESP op %q", cfg.Op)
		}
	default:
		return Result{}, fmt.Errorf("loadgen: unknown protocol %q", cfg.Proto)
	}
	var errCount atomic.Int64
	conns := make([]net.Conn, 0, cfg.Conns)
	d := net.Dialer{Timeout: 3 * time.Second}
	for i := 0; i < cfg.Conns; i++ {
		c, err := d.DialContext(ctx, network, cfg.Addr)
		if err != nil {
			errCount.Add(1)
			continue
		}
		if cfg.TLS != nil {
			tc := tls.Client(c, cfg.TLS)
			hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = tc.HandshakeContext(hctx)
			cancel()
			if err != nil {
				_ = c.Close()
				errCount.Add(1)
				continue
			}
			c = tc
		}
		conns = append(conns, c)
	}
	if len(conns) == 0 {
		return Result{Errors: errCount.Load(), Hist: &hist.Histogram{}}, ErrNoConnection
	}
	start := time.Now()
	mStart := start.Add(cfg.Warmup)
	end := mStart.Add(cfg.Duration)
	grace := end.Add(2 * time.Second)
	var measureT *time.Timer
	if cfg.OnMeasure != nil {
		measureT = time.AfterFunc(cfg.Warmup, cfg.OnMeasure)
	}
	endCh := make(chan struct{})
	endT := time.AfterFunc(cfg.Warmup+cfg.Duration, func() {
		if cfg.OnEnd != nil {
			cfg.OnEnd()
		}
		close(endCh)
	})
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			_ = c.SetDeadline(time.Now())
		}
	})
	var budget atomic.Int64
	budget.Store(cfg.MaxRequests)
	ws := make([]*worker, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		_ = c.SetDeadline(grace)
		w := newWorker(cfg, i, c)
		ws[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.run(ctx, mStart, end, &budget); err != nil {
				errCount.Add(1)
			}
		}()
	}
	wg.Wait()
	stop()
	finished := time.Now()
	for _, c := range conns {
		_ = c.Close()
	}
	res := Result{Hist: &hist.Histogram{}}
	for _, w := range ws {
		res.Requests += w.count
		res.Hist.Merge(&w.h)
	}
	res.Errors = errCount.Load()
	res.Window = cfg.Duration
	if finished.Before(end) { // stopped early by MaxRequests, ctx or errors
		res.Window = max(finished.Sub(mStart), 0)
	}
	// OnMeasure and OnEnd are called exactly once each, in order, before Run
	// returns.
	if measureT != nil && measureT.Stop() {
		cfg.OnMeasure()
	}
	if endT.Stop() {
		if cfg.OnEnd != nil {
			cfg.OnEnd()
		}
	} else {
		<-endCh
	}
	return res, nil
}

type worker struct {
	cfg   Config
	c     net.Conn
	r     *bufio.Reader
	batch []byte   // requests of one batch
	want  [][]byte // expected reply per request of the batch (echo, RESP)
	rbuf  []byte
	tmpl  []byte // echo payload before its sequence number
	setS  []byte
	getS  []byte
	setR  []byte
	getR  []byte
	seq   uint64
	flip  bool
	h     hist.Histogram
	count int64
}

var (
	pingReq  = []byte("*1\r\n$4\r\nPING\r\n")
	pongResp = []byte("+PONG\r\n")
	okResp   = []byte("+OK\r\n")
	httpReq  = []byte("GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: gyre-bench\r\n\r\n")
)

// httpBody is what the bench HTTP servers answer.
const httpBody = "Hello, World!"

func newWorker(cfg Config, id int, c net.Conn) *worker {
	w := &worker{cfg: cfg, c: c, r: bufio.NewReaderSize(c, 64<<10)}
	w.want = make([][]byte, cfg.Depth)
	if cfg.Proto == "echo" || cfg.Proto == "udpecho" {
		w.rbuf = make([]byte, cfg.Size)
		if cfg.Proto == "udpecho" {
			w.rbuf = make([]byte, cfg.Size+1) // +1: a longer datagram shows
		}
		w.tmpl = make([]byte, cfg.Size)
		for j := range w.tmpl {
			w.tmpl[j] = byte('A' + (id+j)%26)
		}
	}
	if cfg.Proto == "resp" && cfg.Op == "setget" {
		key := "bench:key:" + strconv.Itoa(id)
		val := bytes.Repeat([]byte{byte('a' + id%26)}, cfg.Size)
		w.setS = fmt.Appendf(nil, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(key), key, len(val), val)
		w.getS = fmt.Appendf(nil, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(key), key)
		w.setR = okResp
		w.getR = fmt.Appendf(nil, "$%d\r\n%s\r\n", len(val), val)
	}
	return w
}

// fill builds the next batch and its expected replies.
func (w *worker) fill() {
	w.batch = w.batch[:0]
	for i := 0; i < w.cfg.Depth; i++ {
		switch w.cfg.Proto {
		case "echo", "udpecho":
			off := len(w.batch)
			w.batch = append(w.batch, w.tmpl...)
			w.seq++
			if w.cfg.Size >= 8 {
				binary.LittleEndian.PutUint64(w.batch[off:], w.seq)
			}
			w.want[i] = w.batch[off:len(w.batch):len(w.batch)]
		case "resp":
			if w.cfg.Op == "ping" {
				w.batch = append(w.batch, pingReq...)
				w.want[i] = pongResp
			} else {
				w.flip = !w.flip
				if w.flip {
					w.batch = append(w.batch, w.setS...)
					w.want[i] = w.setR
				} else {
					w.batch = append(w.batch, w.getS...)
					w.want[i] = w.getR
				}
			}
		case "http":
			w.batch = append(w.batch, httpReq...)
		}
	}
	// The echo batch may have been reallocated while growing: re-slice.
	if w.cfg.Proto == "echo" || w.cfg.Proto == "udpecho" {
		for i := range w.want {
			w.want[i] = w.batch[i*w.cfg.Size : (i+1)*w.cfg.Size]
		}
	}
}

// errMismatch reports a reply that is not the expected one.
var errMismatch = errors.New("loadgen: wrong reply")

func (w *worker) run(ctx context.Context, mStart, end time.Time, budget *atomic.Int64) error {
	capped := budget.Load() > 0
	for {
		if ctx.Err() != nil {
			return nil
		}
		now := time.Now()
		if !now.Before(end) {
			return nil
		}
		if capped && budget.Add(-int64(w.cfg.Depth)) < 0 {
			return nil
		}
		w.fill()
		sent := time.Now()
		if err := w.send(); err != nil {
			return w.failed(ctx, err, end)
		}
		measured := !sent.Before(mStart)
		for i := 0; i < w.cfg.Depth; i++ {
			if err := w.readOne(i); err != nil {
				return w.failed(ctx, err, end)
			}
			t := time.Now()
			if measured && !t.After(end) {
				w.h.RecordDuration(t.Sub(sent))
				w.count++
			}
		}
	}
}

// failed decides whether err counts as an error: a wrong reply always does,
// an I/O error inside the window does, and so does a reply still missing two
// seconds after the window (the grace deadline: a stalled server); the close
// and deadline at the end of a run, or a cancelled ctx, do not.
func (w *worker) failed(ctx context.Context, err error, end time.Time) error {
	switch {
	case errors.Is(err, errMismatch), time.Now().Before(end):
		return err
	case ctx.Err() == nil && errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("loadgen: no reply within the grace period: %w", err)
	}
	return nil
}

// send writes the batch: one write on a stream, one datagram per request
// over UDP.
func (w *worker) send() error {
	if w.cfg.Proto != "udpecho" {
		_, err := w.c.Write(w.batch)
		return err
	}
	for _, d := range w.want {
		if _, err := w.c.Write(d); err != nil {
			return err
		}
	}
	return nil
}

func (w *worker) readOne(i int) error {
	switch w.cfg.Proto {
	case "http":
		return w.readHTTP()
	case "udpecho":
		n, err := w.c.Read(w.rbuf)
		if err != nil {
			return err
		}
		if !bytes.Equal(w.rbuf[:n], w.want[i]) {
			return errMismatch
		}
		return nil
	case "echo":
		if _, err := io.ReadFull(w.r, w.rbuf); err != nil {
			return err
		}
		if !bytes.Equal(w.rbuf, w.want[i]) {
			return errMismatch
		}
		return nil
	}
	want := w.want[i]
	got, err := w.r.Peek(len(want))
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: %q", errMismatch, got)
	}
	_, _ = w.r.Discard(len(want))
	return nil
}

func (w *worker) readHTTP() error {
	line, err := w.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("%w: status %q", errMismatch, line)
	}
	clen := -1
	for {
		line, err = w.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return fmt.Errorf("%w: content-length %q", errMismatch, v)
			}
			clen = n
		}
	}
	if clen != len(httpBody) {
		return fmt.Errorf("%w: content-length %d", errMismatch, clen)
	}
	body, err := w.r.Peek(clen)
	if err != nil {
		return err
	}
	if string(body) != httpBody {
		return fmt.Errorf("%w: body %q", errMismatch, body)
	}
	_, _ = w.r.Discard(clen)
	return nil
}
