// Package hostile holds load and hostile-peer tests for gyre's shipped servers
// (echo, RESP, HTTP, TLS echo) over real loopback sockets, on both backends:
// ten thousand concurrent connections, accept storms, peers that connect and
// vanish or reset mid-write, slow (slowloris) and half-open clients, and
// clients that pipeline without ever reading. Each test checks that the
// server keeps serving a well-behaved client meanwhile and that descriptors,
// connections, buffered bytes and memory come back to (or stay near) their
// baseline. Pass/fail conditions are counts, never timings.
//
// The package has no non-test code; run it with
//
//	GYRE_BACKEND=uring go test -race -count=1 ./hostile/
//	GYRE_BACKEND=epoll go test -race -count=1 ./hostile/
package hostile
