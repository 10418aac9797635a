package netconn_test

import (
	"bufio"
	"bytes"
	ctls "crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports/netconn"
	"github.com/gyre-io/gyre/transports/tls/tlstest"
)

// TestTLSAndBufio runs crypto/tls over the adapter (tls.Server on the
// accepted conn, tls.Client on the dialed one) and bufio over the TLS
// conns: lines go both ways, then a close_notify ends the stream.
func TestTLSAndBufio(t *testing.T) {
	dir := t.TempDir()
	pki, err := tlstest.New(dir, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	each(t, func(t *testing.T, h *reactortest.Loop, network string) {
		a, b, stop := pipe(t, h.Loop, network, netconn.Config{})
		defer stop()
		srv := ctls.Server(b, pki.ServerConfig())
		cli := ctls.Client(a, pki.ClientConfig("localhost"))
		errc := make(chan error, 1)
		go func() {
			r := bufio.NewReader(srv)
			w := bufio.NewWriter(srv)
			for {
				line, err := r.ReadString('\n')
				if err == io.EOF {
					errc <- srv.Close()
					return
				}
				if err != nil {
					errc <- err
					return
				}
				_, _ = w.WriteString("echo " + line)
				if err := w.Flush(); err != nil {
					errc <- err
					return
				}
			}
		}()
		r := bufio.NewReader(cli)
		for i := 0; i < 100; i++ {
			if _, err := cli.Write([]byte("line " + string(rune('a'+i%26)) + "\n")); err != nil {
				t.Fatal(err)
			}
			got, err := r.ReadString('\n')
			if err != nil || got != "echo line "+string(rune('a'+i%26))+"\n" {
				t.Fatalf("%d: %q %v", i, got, err)
			}
		}
		if err := cli.CloseWrite(); err != nil { // close_notify, then our FIN stays open
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if _, err := r.ReadByte(); err != io.EOF {
			t.Fatalf("after the server's close: %v", err)
		}
		if cli.ConnectionState().Version == 0 {
			t.Fatal("no TLS state")
		}
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

// TestDeadlines: a blocked Read and a blocked Write (the peer not reading)
// return a timeout error when their deadline passes, a deadline moved while
// they block takes effect at once, and clearing it lets the call go on.
func TestDeadlines(t *testing.T) {
	each(t, func(t *testing.T, h *reactortest.Loop, network string) {
		a, b, stop := pipe(t, h.Loop, network, netconn.Config{})
		defer stop()

		// A Read blocked without deadline is woken by setting one in the past.
		errc := make(chan error, 1)
		go func() {
			_, err := a.Read(make([]byte, 10))
			errc <- err
		}()
		time.Sleep(20 * time.Millisecond)
		if err := a.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !isTimeout(err) {
			t.Fatalf("read: %v, want a timeout", err)
		}
		// Cleared, Read works again and sees data written meanwhile.
		_ = a.SetReadDeadline(time.Time{})
		if _, err := b.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1)
		if n, err := a.Read(buf); n != 1 || err != nil {
			t.Fatalf("read after clearing: %d %v", n, err)
		}
		// A future deadline fires.
		_ = a.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		if _, err := a.Read(buf); !isTimeout(err) {
			t.Fatalf("read: %v, want a timeout", err)
		}
		_ = a.SetReadDeadline(time.Time{})

		// Write blocks once b stops reading; its deadline ends it with the
		// count accepted so far.
		_ = a.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		chunk := make([]byte, 64<<10)
		var total int
		var werr error
		for i := 0; i < 10000 && werr == nil; i++ {
			var n int
			n, werr = a.Write(chunk)
			total += n
		}
		if !isTimeout(werr) {
			t.Fatalf("write: %v after %d bytes, want a timeout", werr, total)
		}
		// Moving the deadline earlier wakes a blocked Write at once.
		_ = a.SetWriteDeadline(time.Time{})
		wc := make(chan error, 1)
		var n2 int
		go func() {
			var err error
			n2, err = a.Write(chunk)
			wc <- err
		}()
		select {
		case err := <-wc:
			t.Fatalf("write did not block: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		_ = a.SetWriteDeadline(time.Now())
		if err := <-wc; !isTimeout(err) {
			t.Fatalf("write: %v, want a timeout", err)
		}
		total += n2
		// Everything accepted arrives, in order and whole.
		_ = a.CloseWrite()
		got, err := io.ReadAll(b)
		if err != nil || len(got) != total {
			t.Fatalf("peer read %d bytes (%v), %d accepted", len(got), err, total)
		}
	})
}

// TestSlowReaderBounded: a goroutine that stops reading pauses the socket;
// the adapter then holds at most Config.ReadBuffer plus one receive, the
// sender ends up blocked, and every byte arrives once reading resumes.
func TestSlowReaderBounded(t *testing.T) {
	const limit = 32 << 10
	each(t, func(t *testing.T, h *reactortest.Loop, network string) {
		a, b, stop := pipe(t, h.Loop, network, netconn.Config{ReadBuffer: limit})
		defer stop()
		const total = 16 << 20
		var sent int
		var mu sync.Mutex
		done := make(chan error, 1)
		go func() {
			chunk := bytes.Repeat([]byte("abcdefgh"), 8<<10)
			for sent < total {
				n, err := a.Write(chunk)
				mu.Lock()
				sent += n
				mu.Unlock()
				if err != nil {
					done <- err
					return
				}
			}
			done <- a.CloseWrite()
		}()
		// Wait until the sender stalls (no progress over 100 ms).
		last := -1
		for i := 0; i < 100; i++ {
			time.Sleep(100 * time.Millisecond)
			mu.Lock()
			s := sent
			mu.Unlock()
			if s == last {
				break
			}
			last = s
		}
		if last >= total || last < 0 {
			t.Fatalf("sender never stalled (%d of %d bytes sent)", last, total)
		}
		bound := limit + max(h.Sizes().BufferSize, 64<<10) // one delivery more: a provided buffer, or a 64 KiB slice of bytes held while paused
		if p := netconn.Peak(b); p > bound || p < limit {
			t.Fatalf("reader buffered %d bytes at its peak; bound %d", p, bound)
		}
		// Now read it all.
		var got int
		buf := make([]byte, 32<<10)
		for {
			n, err := b.Read(buf)
			for _, c := range buf[:n] {
				if c < 'a' || c > 'h' {
					t.Fatalf("corrupt byte %q", c)
				}
			}
			got += n
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got != total {
			t.Fatalf("got %d of %d bytes", got, total)
		}
		if p := netconn.Peak(b); p > bound {
			t.Fatalf("reader buffered %d bytes at its peak; bound %d", p, bound)
		}
	})
}

// TestCloseSemantics: net.ErrClosed after Close (and for a blocked Read and
// Write), CloseWrite and CloseRead, a listener's Close leaves accepted conns
// alone and ends Accept.
func TestCloseSemantics(t *testing.T) {
	each(t, func(t *testing.T, h *reactortest.Loop, network string) {
		ln := listen(t, h.Loop, network, netconn.Config{})
		a, b, err := pipeOn(h.Loop, ln, netconn.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		defer b.Close()
		// Accept blocked, then the listener closes.
		acc := make(chan error, 1)
		go func() {
			_, err := ln.Accept()
			acc <- err
		}()
		time.Sleep(10 * time.Millisecond)
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-acc; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v", err)
		}
		if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v", err)
		}
		if err := ln.Close(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("second Close: %v", err)
		}
		// The accepted conn still works; half-closes.
		if _, err := a.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if err := a.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("Write after CloseWrite: %v", err)
		}
		got, err := io.ReadAll(b)
		if err != nil || string(got) != "ping" {
			t.Fatalf("ReadAll: %q %v", got, err)
		}
		if _, err := b.Write([]byte("pong")); err != nil { // b may still write
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "pong" {
			t.Fatalf("a read %q %v", buf, err)
		}
		if err := b.CloseRead(); err != nil {
			t.Fatal(err)
		}
		if n, err := b.Read(buf); n != 0 || err != io.EOF {
			t.Fatalf("Read after CloseRead: %d %v", n, err)
		}
		// Blocked Read and Write end with net.ErrClosed on Close.
		rc := make(chan error, 1)
		go func() {
			_, err := a.Read(buf)
			rc <- err
		}()
		time.Sleep(10 * time.Millisecond)
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-rc; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked Read at Close: %v", err)
		}
		for _, err := range []error{a.Close(), a.SetDeadline(time.Now()), a.CloseWrite()} {
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("after Close: %v", err)
			}
		}
		if _, err := a.Write(buf); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Write after Close: %v", err)
		}
	})
}

// TestBlockedWriteClose: a Write blocked on a full queue returns
// net.ErrClosed when its Conn is closed.
func TestBlockedWriteClose(t *testing.T) {
	each(t, func(t *testing.T, h *reactortest.Loop, network string) {
		a, _, stop := pipe(t, h.Loop, network, netconn.Config{})
		defer stop()
		wc := make(chan error, 1)
		go func() {
			chunk := make([]byte, 1<<20)
			for i := 0; i < 1000; i++ {
				if _, err := a.Write(chunk); err != nil {
					wc <- err
					return
				}
			}
			wc <- nil
		}()
		time.Sleep(100 * time.Millisecond)
		_ = a.Close()
		if err := <-wc; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked Write at Close: %v", err)
		}
	})
}

// TestAddrs: LocalAddr and RemoteAddr are *net.TCPAddr / *net.UnixAddr, and
// the two ends agree.
func TestAddrs(t *testing.T) {
	each(t, func(t *testing.T, h *reactortest.Loop, network string) {
		a, b, stop := pipe(t, h.Loop, network, netconn.Config{})
		defer stop()
		for _, ad := range []net.Addr{a.LocalAddr(), a.RemoteAddr(), b.LocalAddr(), b.RemoteAddr()} {
			switch network {
			case "tcp":
				if _, ok := ad.(*net.TCPAddr); !ok {
					t.Fatalf("%T, want *net.TCPAddr", ad)
				}
			case "unix":
				if _, ok := ad.(*net.UnixAddr); !ok {
					t.Fatalf("%T, want *net.UnixAddr", ad)
				}
			}
		}
		if network == "tcp" && (a.LocalAddr().String() != b.RemoteAddr().String() || a.RemoteAddr().String() != b.LocalAddr().String()) {
			t.Fatalf("addresses disagree: %v-%v vs %v-%v", a.LocalAddr(), a.RemoteAddr(), b.LocalAddr(), b.RemoteAddr())
		}
	})
}

// TestWriteBackpressure: with the peer not reading, Write stops handing
// bytes to the transport once its queue is above the high watermark (the
// adapter is paused as a producer), so the queue never holds more than the
// watermark plus one 64 KiB chunk.
func TestWriteBackpressure(t *testing.T) {
	each(t, func(t *testing.T, h *reactortest.Loop, network string) {
		a, _, stop := pipe(t, h.Loop, network, netconn.Config{})
		defer stop()
		werr := make(chan error, 1)
		go func() {
			chunk := make([]byte, 1<<20)
			for i := 0; i < 4096; i++ { // far more than the kernel's buffers hold
				if _, err := a.Write(chunk); err != nil {
					werr <- err
					return
				}
			}
			werr <- nil
		}()
		peak := 0
		for i := 0; i < 200; i++ {
			time.Sleep(5 * time.Millisecond)
			h.Do(func() { peak = max(peak, netconn.Queued(a)) })
		}
		_ = a.Close()
		if err := <-werr; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked Write at Close: %v", err)
		}
		if bound := 64<<10 + 64<<10; peak > bound || peak == 0 {
			t.Fatalf("transport queue peaked at %d bytes; bound %d", peak, bound)
		}
	})
}
