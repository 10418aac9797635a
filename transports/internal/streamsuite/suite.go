// Package streamsuite is the scenario suite of gyre's stream transports:
// chunked echo, a 64 MiB write, slow readers and producers, pause and
// resume, half-close, the lose/abort matrix (cancel races), peer resets,
// descriptor-number reuse, Stop with traffic in flight, EMFILE on accept,
// 10k connect/close cycles. It is written once against a Kind (how to
// listen, connect and make a raw peer for one address family) and run by
// every stream transport's test package over both backends:
//
//	func TestSuite(t *testing.T) { streamsuite.Run(t, kind) }
//
// The peers are real sockets (Go's net package or raw descriptors), never
// test doubles. The running test package must check for leaked goroutines
// (goleak.VerifyTestMain); some scenarios check descriptors and goroutines
// themselves.
//
// A scenario whose semantics depend on the protocol (TCP's RST, TCP_INFO,
// shutdown of a listening socket) declares the capability it needs; a Kind
// without it skips the scenario with the reason, so nothing is copied and
// nothing is silently dropped.
package streamsuite

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
	"weak"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
)

// Port is what the suite needs of a listening port: transports.Port and the
// signal that its descriptor is released (tcp.Port.Done).
type Port interface {
	transports.Port
	Done() <-chan struct{}
}

// Kind describes one stream transport for the suite.
type Kind struct {
	// Name names the kind in messages ("tcp", "unix").
	Name string
	// Network is the net package's network of the raw peers: "tcp" (IPv4
	// loopback) or "unix" (stream sockets on filesystem paths).
	Network string
	// Listen listens on addr (from the suite: Network's fresh address, see
	// Kind.NewAddr, or an address a previous port had) with the transport's
	// default options and the given producer watermarks.
	Listen func(loop *reactor.Loop, addr string, f transports.Factory, wm transports.Watermarks) (Port, error)
	// Connect connects to addr (a Port's Addr().String() or a raw
	// listener's address) with the given connect timeout (0: the
	// transport's default).
	Connect func(loop *reactor.Loop, addr string, f transports.ClientFactory, timeout time.Duration) (transports.Connector, error)
	// Weak returns a probe of the transport's reachability (true while the
	// garbage collector has not freed it); see WeakProbe.
	Weak func(tr transports.Transport) (alive func() bool)
	// Caps lists the protocol-specific behaviours the kind has.
	Caps Caps
}

// Caps are behaviours only some stream protocols have. A scenario needing
// one is skipped, with the reason, on a kind without it.
type Caps struct {
	// ResetWithoutUnread: a peer can reset the connection whatever is
	// queued (TCP: SO_LINGER 0 then close sends RST). AF_UNIX has no RST:
	// a close gives the other end ECONNRESET only when unread bytes were
	// left in the closing socket's receive queue, else a plain EOF.
	ResetWithoutUnread bool
	// EOFBeforeUnreadReset: when our side closes with the peer's bytes
	// still unread (LoseConnection stops reading), the peer reads
	// everything sent and then EOF (TCP: the FIN of the shutdown is read
	// before the RST of the close). On AF_UNIX the close sets ECONNRESET on
	// the peer, which its next read reports instead of EOF once the queued
	// bytes are read: the scenarios then still require every byte, and
	// accept ECONNRESET in place of EOF.
	EOFBeforeUnreadReset bool
	// ConnStateInfo: the socket reports its protocol state (TCP_INFO), so a
	// test can wait until a reset has arrived without reading; and a
	// shutdown(2) after the reset fails with ENOTCONN. AF_UNIX has neither.
	ConnStateInfo bool
	// ConnectWaitsOnFullBacklog: a connect to a listener whose accept queue
	// is full waits (TCP: the SYN is dropped and retried) until the
	// connector's timeout or StopConnecting. Without it (gyre's UNIX
	// transport, as AF_UNIX and Go's net.Dial("unix")) the attempt fails at
	// once with EAGAIN.
	ConnectWaitsOnFullBacklog bool
	// ShutdownListener: shutdown(SHUT_RD) of a listening socket makes
	// accept fail with EINVAL (TCP). AF_UNIX ignores it.
	ShutdownListener bool
}

// WeakProbe is a Kind.Weak for transports whose concrete type is *T.
func WeakProbe[T any, PT interface {
	*T
	transports.Transport
}](tr transports.Transport) func() bool {
	w := weak.Make((*T)(tr.(PT)))
	return func() bool { return w.Value() != nil }
}

type scenario struct {
	name string
	run  func(t *testing.T, k *Kind)
	// skip, when set, returns why the kind cannot run the scenario ("" if
	// it can).
	skip func(c Caps) string
}

func needReset(c Caps) string {
	if c.ResetWithoutUnread {
		return ""
	}
	return "no abortive close without unread data (AF_UNIX has no RST: a close with nothing unread is a clean EOF)"
}

func needStateInfo(c Caps) string {
	if c.ConnStateInfo {
		return ""
	}
	return "no TCP_INFO-like state to see a reset arrive without reading, and no ENOTCONN from shutdown after it"
}

func needHungConnect(c Caps) string {
	if c.ConnectWaitsOnFullBacklog {
		return ""
	}
	return "a connect to a full backlog fails at once with EAGAIN (it cannot hang)"
}

func needShutdownListener(c Caps) string {
	if c.ShutdownListener {
		return ""
	}
	return "shutdown(2) of a listening AF_UNIX socket does not stop accept"
}

// scenarios is the suite, in the order it runs.
var scenarios = []scenario{
	// Data path.
	{name: "EchoChunked", run: testEchoChunked},
	{name: "LargeWrite", run: testLargeWrite},
	{name: "WritesFromOtherGoroutinesKeepOrder", run: testWritesFromOtherGoroutinesKeepOrder},
	{name: "WriteOwnedKeepsOrderAndReleasesAfterSend", run: testWriteOwnedKeepsOrderAndReleasesAfterSend},
	{name: "ZeroCopyOnlyToOtherHosts", run: testZeroCopyOnlyToOtherHosts},
	{name: "KeepReceivedForwards", run: testKeepReceivedForwards},
	{name: "KeepNeverReleasedDoesNotStarve", run: testKeepNeverReleasedDoesNotStarve},
	{name: "KeepHeldBytes", run: testKeepHeldBytes},
	{name: "KeepStopWithKeptQueued", run: testKeepStopWithKeptQueued},
	{name: "SlowReaderPausesPushProducer", run: testSlowReaderPausesPushProducer},
	{name: "PauseReadingHoldsData", run: testPauseReadingHoldsData},
	{name: "SlowConsumerOthersFlow", run: testSlowConsumerOthersFlow},
	{name: "HotConnectionsDoNotStarveOthers", run: testHotConnectionsDoNotStarveOthers},
	{name: "NoDataAfterLoseConnectionWithHeldBytes", run: testNoDataAfterLoseConnectionWithHeldBytes},
	{name: "HeldBytesSurvivePeerFIN", run: testHeldBytesSurvivePeerFIN},
	// Half-close, lose and abort.
	{name: "HalfCloseFromPeer", run: testHalfCloseFromPeer},
	{name: "HalfCloseableProtocol", run: testHalfCloseableProtocol},
	{name: "AbortAndLoseConnection", run: testAbortAndLoseConnection},
	{name: "LoseConnectionStopsReading", run: testLoseConnectionStopsReading},
	{name: "HalfCloseFailureIsLost", run: testHalfCloseFailureIsLost, skip: needStateInfo},
	{name: "CancelRacesServer", run: testCancelRacesServer},
	{name: "CancelRacesClient", run: testCancelRacesClient},
	{name: "CancelRacesFromOtherGoroutines", run: testCancelRacesFromOtherGoroutines},
	{name: "CallbackPanicAbortsOnlyItsConnection", run: testCallbackPanicAbortsOnlyItsConnection},
	// Peer resets and closes.
	{name: "PeerResetMidWrite", run: testPeerResetMidWrite},
	{name: "PeerCloseWhileRecvInFlight", run: testPeerCloseWhileRecvInFlight},
	// Descriptors.
	{name: "FDReuseServerSide", run: testFDReuseServerSide},
	{name: "FDReuseClientSide", run: testFDReuseClientSide},
	{name: "NoProtocolRetainedAfterConnectionLost", run: testNoProtocolRetainedAfterConnectionLost},
	{name: "AcceptEMFILEBacksOff", run: testAcceptEMFILEBacksOff},
	// Ports and connectors.
	{name: "PortCloseDone", run: testPortCloseDone},
	{name: "PortCloseAndRebind", run: testPortCloseAndRebind},
	{name: "AcceptEINVALClosesPort", run: testAcceptEINVALClosesPort, skip: needShutdownListener},
	{name: "ConnectRefusedAndEcho", run: testConnectRefusedAndEcho},
	{name: "StopConnecting", run: testStopConnecting},
	{name: "ConnectTimeoutFullBacklog", run: testConnectTimeoutFullBacklog, skip: needHungConnect},
	{name: "StopConnectingHungConnect", run: testStopConnectingHungConnect, skip: needHungConnect},
	// Cycles and shutdown.
	{name: "ManyConnectCloseCycles", run: testManyConnectCloseCycles},
	{name: "TenThousandConnectCloseCycles", run: testTenThousandConnectCloseCycles},
	{name: "StopWithTrafficInFlight", run: testStopWithTrafficInFlight},
	{name: "StopEndsEveryResource", run: testStopEndsEveryResource},
}

// Run runs every scenario of the suite over k, each as a subtest, on every
// backend (reactortest.Backends: GYRE_BACKEND picks one).
func Run(t *testing.T, k Kind) {
	switch k.Network {
	case "tcp", "unix":
	default:
		t.Fatalf("streamsuite: kind %q: unknown network %q", k.Name, k.Network)
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			if sc.skip != nil {
				if why := sc.skip(k.Caps); why != "" {
					t.Skipf("%s: %s", k.Name, why)
				}
			}
			sc.run(t, &k)
		})
	}
}

// NewAddr returns a fresh address to listen on: 127.0.0.1:0 for TCP, a
// path in a directory of t's (removed at cleanup) for UNIX.
func (k *Kind) NewAddr(t testing.TB) string {
	if k.Network == "unix" {
		return shortTempDir(t) + "/s"
	}
	return "127.0.0.1:0"
}

// listen listens on a fresh address with default options.
func (k *Kind) listen(t testing.TB, h *reactortest.Loop, f transports.Factory) (Port, error) {
	return k.Listen(h.Loop, k.NewAddr(t), f, transports.Watermarks{})
}

// netListen is a Go net listener of k's network on a fresh address.
func (k *Kind) netListen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen(k.Network, k.NewAddr(t))
	if err != nil {
		t.Fatalf("net.Listen: %v", err)
	}
	return ln
}

// shortTempDir is a t.TempDir under /tmp: a UNIX socket path is limited to
// 107 bytes, and t.TempDir's names (from the test's name) can be longer.
func shortTempDir(t testing.TB) string {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	if len(name) > 16 {
		name = name[:16]
	}
	dir, err := os.MkdirTemp("", "gyre-"+name+"-")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}
