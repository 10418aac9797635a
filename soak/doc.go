// Package soak is gyre's seeded fault soak (tests only): clients and
// servers on one loop whose backend is wrapped by the fault injector
// (reactor/backend/faulty), over TCP, UNIX sockets and TLS over TCP, running
// the echo, RESP and HTTP servers. After every run it checks that
//
//   - every byte accepted by Write reached the peer's protocol in order, or
//     one end of that connection reported a loss (a ConnectionLost reason
//     other than a clean close); what arrives is always a prefix of what was
//     written (no duplicate, reordered or corrupted byte);
//   - each connection saw ConnectionLost exactly once and nothing after it;
//   - every op reached its final completion (Loop.InFlight() == 0, and the
//     injector holds no op and no lent buffer), no delayed call is left
//     (PendingCalls), and descriptors (/proc/self/fd) and goroutines
//     (goleak) are back to their baseline.
//
// A failing run names its seed; one seed runs alone with
//
//	GYRE_SOAK_SEED=1234 go test ./soak/ -run 'Soak/.*/seed=1234$' -v
//
// (GYRE_SOAK_DEBUG_OFF=fsdr switches off, per letter, failed ops, short
// transfers, delays and reordering, to narrow a failure down) and replays the same faults as far as the run takes the same path (see
// package faulty on the limits of determinism with real sockets). CI runs a
// fixed small set of seeds on each backend; a long soak is
//
//	GYRE_SOAK_SEEDS=1000 go test ./soak/ -run Soak -timeout 30m
package soak
