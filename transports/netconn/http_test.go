package netconn_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports/netconn"
)

const body = "hello from net/http on gyre\n"

// serveHTTP serves a small handler on an adapter listener; the returned
// function shuts the server down and checks Serve's result.
func serveHTTP(t *testing.T, h *reactortest.Loop, network string) (net.Listener, func()) {
	t.Helper()
	ln := listen(t, h.Loop, network, netconn.Config{})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			_, _ = io.Copy(w, r.Body)
			return
		}
		_, _ = io.WriteString(w, body)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	return ln, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}
}

// TestHTTP serves net/http on the adapter's listener and drives it with
// net/http's client dialing through the adapter too (keep-alive, a 1 MiB
// POST echoed back), on TCP and UNIX.
func TestHTTP(t *testing.T) {
	each(t, func(t *testing.T, h *reactortest.Loop, network string) {
		ln, stop := serveHTTP(t, h, network)
		defer stop()
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return netconn.Dial(ctx, h.Loop, network, ln.Addr().String())
		}}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
		for i := 0; i < 20; i++ {
			resp, err := client.Get("http://gyre/")
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil || string(b) != body {
				t.Fatalf("GET %d: %q, %v", i, b, err)
			}
		}
		big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
		resp, err := client.Post("http://gyre/", "text/plain", strings.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || string(b) != big {
			t.Fatalf("POST: %d bytes, %v", len(b), err)
		}
	})
}

// TestHTTPStdClient drives the adapter's listener with net/http's client on
// Go's own net (TCP).
func TestHTTPStdClient(t *testing.T) {
	each(t, func(t *testing.T, h *reactortest.Loop, network string) {
		if network != "tcp" {
			t.Skip("covered by TestHTTP and TestHTTPCurl over UNIX")
		}
		ln, stop := serveHTTP(t, h, network)
		defer stop()
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
		for i := 0; i < 20; i++ {
			resp, err := client.Get("http://" + ln.Addr().String() + "/")
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil || string(b) != body {
				t.Fatalf("GET %d: %q, %v", i, b, err)
			}
		}
	})
}

// TestHTTPCurl drives the adapter's listener with curl (two requests on one
// connection), over TCP and with --unix-socket.
func TestHTTPCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	each(t, func(t *testing.T, h *reactortest.Loop, network string) {
		ln, stop := serveHTTP(t, h, network)
		defer stop()
		args := []string{"-sS", "--max-time", "20"}
		url := "http://" + ln.Addr().String() + "/"
		if network == "unix" {
			args = append(args, "--unix-socket", ln.Addr().String())
			url = "http://gyre/"
		}
		args = append(args, url, url)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, curl, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl: %v: %s", err, out)
		}
		if string(out) != body+body {
			t.Fatalf("curl printed %q", out)
		}
	})
}
