package netconn_test

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/netconn"
)

// TestLoopStop: stopping the loop ends a blocked Read, a blocked Write, a
// blocked Accept and an accepted-but-idle conn's later calls, leaving no
// goroutine behind (goleak in TestMain); Dial and Listen on the stopped loop
// fail.
func TestLoopStop(t *testing.T) {
	each(t, func(t *testing.T, h *reactortest.Loop, network string) {
		ln := listen(t, h.Loop, network, netconn.Config{})
		a, b, err := pipeOn(h.Loop, ln, netconn.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		defer b.Close()
		defer ln.Close()
		errs := make(chan error, 3)
		go func() {
			_, err := b.Read(make([]byte, 1)) // a never writes
			errs <- err
		}()
		go func() {
			chunk := make([]byte, 1<<20)
			for i := 0; i < 1000; i++ {
				if _, err := b.Write(chunk); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
		go func() {
			_, err := ln.Accept()
			errs <- err
		}()
		time.Sleep(100 * time.Millisecond)
		h.StopWait()
		for i := 0; i < 3; i++ {
			select {
			case err := <-errs:
				if err == nil {
					t.Fatal("a blocked call returned no error at loop stop")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a blocked call did not return at loop stop")
			}
		}
		// The shutdown closed the connection cleanly (EPIPE) or reset it.
		if _, err := a.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) && !errors.Is(err, transports.ErrConnectionLost) {
			t.Fatalf("Write after stop: %v", err)
		}
		if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after stop: %v", err)
		}
		if _, err := netconn.Dial(context.Background(), h.Loop, network, ln.Addr().String()); !errors.Is(err, reactor.ErrStopped) {
			t.Fatalf("Dial after stop: %v", err)
		}
	})
}
