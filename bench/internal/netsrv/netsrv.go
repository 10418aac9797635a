// Package netsrv holds the bench's Go `net` servers: one goroutine per
// connection for echo and RESP, net/http for HTTP.
package netsrv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/gyre-io/gyre/bench/internal/minresp"
)

// Hello is the body every bench HTTP server answers with.
const Hello = "Hello, World!"

// Serve listens on addr and serves proto ("echo", "resp", "http", or
// "udpecho": UDP echo, a net.UDPConn ReadFrom/WriteTo loop) until ctx
// is done, then closes the listener and every connection and returns nil.
// ready, if not nil, is called with the bound address once listening.
func Serve(ctx context.Context, proto, addr string, ready func(net.Addr)) error {
	return ServeTLS(ctx, proto, addr, nil, ready)
}

// ServeTLS is Serve over crypto/tls (tls.NewListener; net/http then serves
// HTTPS, HTTP/1.1 only without "h2" in cfg.NextProtos) when cfg is not nil.
func ServeTLS(ctx context.Context, proto, addr string, cfg *tls.Config, ready func(net.Addr)) error {
	if proto == "udpecho" {
		return serveUDP(ctx, addr, ready)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	if ready != nil {
		ready(ln.Addr())
	}
	switch proto {
	case "http":
		return serveHTTP(ctx, ln)
	case "echo":
		return serveConns(ctx, ln, echo)
	case "resp":
		st := minresp.NewStore()
		return serveConns(ctx, ln, func(c net.Conn) { respConn(c, st) })
	}
	_ = ln.Close()
	return fmt.Errorf("netsrv: unknown protocol %q", proto)
}

func serveHTTP(ctx context.Context, ln net.Listener) error {
	body := []byte(Hello)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(body)
	})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	_ = srv.Close()
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func serveConns(ctx context.Context, ln net.Listener, handle func(net.Conn)) error {
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	stop := context.AfterFunc(ctx, func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	var err error
	for {
		c, aerr := ln.Accept()
		if aerr != nil {
			if ctx.Err() == nil {
				err = aerr
				_ = ln.Close()
			}
			break
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			_ = c.Close()
			break
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			handle(c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			_ = c.Close()
		}()
	}
	mu.Lock()
	for c := range conns {
		_ = c.Close()
	}
	mu.Unlock()
	wg.Wait()
	return err
}

func echo(c net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// respConn serves RESP on c: read what is there, answer every complete
// request in one write.
func respConn(c net.Conn, st *minresp.Store) {
	in := make([]byte, 0, 16<<10)
	out := make([]byte, 0, 16<<10)
	var args [][]byte
	for {
		if len(in) == cap(in) {
			grown := make([]byte, len(in), 2*cap(in))
			copy(grown, in)
			in = grown
		}
		n, err := c.Read(in[len(in):cap(in)])
		in = in[:len(in)+n]
		off := 0
		quit := false
		for !quit && off < len(in) {
			var m int
			var perr error
			args, m, perr = minresp.Parse(in[off:], args)
			if perr != nil {
				out = minresp.ErrorReply(out)
				_, _ = c.Write(out)
				return
			}
			if m == 0 {
				break
			}
			off += m
			out, quit = st.Exec(args, out)
		}
		in = in[:copy(in, in[off:])]
		if len(out) > 0 {
			if _, werr := c.Write(out); werr != nil {
				return
			}
			out = out[:0]
		}
		if quit || err != nil {
			return
		}
	}
}

// serveUDP echoes every UDP datagram to its sender from one goroutine (the
// plain Go way: net.UDPConn ReadFromUDPAddrPort / WriteToUDPAddrPort, no
// allocation per datagram) until ctx is done.
func serveUDP(ctx context.Context, addr string, ready func(net.Addr)) error {
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return err
	}
	c := pc.(*net.UDPConn)
	if ready != nil {
		ready(c.LocalAddr())
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		_, _ = c.WriteToUDPAddrPort(buf[:n], from)
	}
}
