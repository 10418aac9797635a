// Package netconn gives Go code that wants a net.Conn or a net.Listener —
// net/http, crypto/tls, bufio, any library written against package net —
// connections that run on a gyre loop: Listen returns a net.Listener and
// Dial a net.Conn, for the networks "tcp", "tcp4", "tcp6" and "unix". Their
// methods are goroutine-safe and block in the Go way, with deadlines
// (errors matching os.ErrDeadlineExceeded, net.Error with Timeout() true),
// CloseRead and CloseWrite, and net.ErrClosed after Close.
//
// The loop does the socket work (io_uring or epoll, gyre's transports/tcp and
// transports/unix); user goroutines meet it through one mutex and two
// condition variables per connection. A goroutine that stops reading pauses
// the socket once Config.ReadBuffer bytes are waiting, so the kernel's
// receive window pushes back on the peer instead of memory growing; Write
// waits while the transport's write queue is above its high watermark.
// When the loop stops, every connection ends: blocked calls return (Read:
// io.EOF or the loss's reason, Write: syscall.EPIPE or the loss's reason,
// Accept: net.ErrClosed), and the package runs no goroutine of its own.
//
// # When to use it, and when not
//
// Use it to run Go-ecosystem code on a process whose connections live on
// gyre loops: an HTTP admin or metrics endpoint beside gyre protocols on the
// same loop, a Go library (a database driver, gRPC, TLS) reaching a peer
// through gyre, tests that drive a gyre server with Go clients on gyre, one
// place (the loop's shutdown) that ends every connection.
//
// Do not use it for speed. Every Read and Write crosses between a user
// goroutine and the loop goroutine (a loop.Call one way, a condition
// variable the other), which costs more than Go's own netpoller does for
// the same blocking code; a program whose connections are all served by
// goroutines is faster on package net. gyre's speed comes from protocols
// that run on the loop (transports.Protocol), which is what to write when
// throughput or latency matters. Measured on a shared 2-core machine under
// heavy load (load average 7 to 15, one run each, so only the order of
// magnitude holds; see bench_test.go): net/http served over this adapter
// answered sequential keep-alive GETs at 0.3 to 0.65 times the rate of the
// same server on net.Listen, and a blocking 1 KiB echo with both ends on the
// adapter ran at 0.1 to 0.15 times Go net's rate — each round trip there
// crosses between goroutines and the loop four times. Steady-state reading
// and writing allocate nothing, and Writes from concurrent goroutines share
// loop calls (about 0.26 calls per Write with 4 writers).
//
// # Goroutines
//
// Blocking methods (Read, Write, Dial, Accept, Listener.Close) must not be
// called on the loop's goroutine (from a Protocol callback or a function
// passed to loop.Call): the loop would wait for itself.
package netconn

import "github.com/gyre-io/gyre/transports"

// Config tunes Listen and Dial. The zero value is a good default.
type Config struct {
	// ReadBuffer is how many received bytes a connection buffers for its
	// readers before it pauses the socket (it resumes once readers have
	// drained it to half). At most one delivery from the transport more than
	// this is held: the bound is ReadBuffer plus 64 KiB (a stream.Conn hands
	// over at most a provided buffer, or 64 KiB of bytes it held while
	// paused, at once). Default 64 KiB.
	ReadBuffer int
	// Backlog is how many connections the loop accepts ahead of
	// Listener.Accept; beyond it, new connections are closed. Default 128.
	Backlog int
	// Watermarks of each connection's write queue (transports.Watermarks'
	// defaults: 64 KiB high, 16 KiB low): Write waits while the queue is
	// above High, until it has drained to Low.
	Watermarks transports.Watermarks
}

func (c Config) withDefaults() Config {
	if c.ReadBuffer <= 0 {
		c.ReadBuffer = 64 << 10
	}
	if c.Backlog <= 0 {
		c.Backlog = 128
	}
	c.Watermarks = c.Watermarks.WithDefaults()
	return c
}
