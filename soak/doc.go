// Package soak is gyre's seeded fault soak (tests only): transports and
// protocols on one loop whose backend is wrapped by the fault injector
// (reactor/backend/faulty). The stream soak (TestSoak) runs the echo, RESP
// and HTTP servers over TCP, UNIX sockets and TLS over TCP; after every run
// it checks that
//
//   - every byte accepted by Write reached the peer's protocol in order, or
//     one end of that connection reported a loss (a ConnectionLost reason
//     other than a clean close); what arrives is always a prefix of what was
//     written (no duplicate, reordered or corrupted byte);
//   - each connection saw ConnectionLost exactly once and nothing after it.
//
// The datagram soak (TestSoakDgram) runs an echo DatagramProtocol over UDP
// and UNIX datagram sockets with clients sending numbered datagrams: every
// datagram delivered is byte-exact one that was sent, at most once; every
// datagram Write accepted arrives unless an echo was refused with
// ErrQueueFull (and counted); UNIX datagrams in order; none while paused;
// StartProtocol and StopProtocol once per port. The process soak
// (TestSoakProcess) feeds cat-like children (cat, sh -c 'cat; exit N',
// head -c K, a killed cat): stdout is a prefix of stdin (all of it unless a
// pipe reported a loss), the exit status is the right one, each pipe's end,
// ProcessExited and ProcessEnded come once and in order, and the child is
// reaped (no zombie).
//
// Every soak then checks that every op reached its final completion
// (Loop.InFlight() == 0, and the injector holds no op and no lent buffer),
// no delayed call is left (PendingCalls), no callback panicked, and
// descriptors (/proc/self/fd) and goroutines (goleak) are back to their
// baseline.
//
// A failing run prints its seed and the command that runs it alone, e.g.
//
//	GYRE_SOAK_SEED=1234 GYRE_BACKEND=epoll go test ./soak/ -run '^TestSoakDgram$/^epoll/udp/echo/seed=1234$' -v
//
// (GYRE_SOAK_DEBUG_OFF=fsdr switches off, per letter, failed ops, short
// transfers, delays and reordering, to narrow a failure down) and replays the
// same faults as far as the run takes the same path (see package faulty on
// the limits of determinism with real sockets and children). CI runs a fixed
// small set of seeds on each backend; a long soak is
//
//	GYRE_SOAK_SEEDS=1000 go test ./soak/ -run Soak -timeout 30m
package soak
