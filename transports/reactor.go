package transports

// ReactorTCP listens and connects over TCP (Twisted's IReactorTCP).
//
// addr is "host:port" (an empty host listens on every address; port 0 picks a
// free port). opts is nil for the defaults or the TCP transport's options
// value: tcp.ListenOptions for ListenTCP and tcp.ConnectOptions for
// ConnectTCP (a value or a pointer; a nil pointer means the defaults). Any
// other type fails with an error matching ErrBadOptions.
type ReactorTCP interface {
	// ListenTCP listens on addr and builds a protocol with f for each
	// accepted connection (Twisted's listenTCP).
	ListenTCP(addr string, f Factory, opts any) (Port, error)
	// ConnectTCP starts connecting to addr; f sees the attempt's outcome
	// (Twisted's connectTCP).
	ConnectTCP(addr string, f ClientFactory, opts any) (Connector, error)
}

// ReactorUNIX listens and connects over UNIX stream sockets (Twisted's
// IReactorUNIX).
//
// path is a filesystem path, or "@name" for a Linux abstract socket. opts is
// nil for the defaults or the UNIX transport's options value (unix.ListenOptions,
// unix.ConnectOptions); any other type fails with an error matching
// ErrBadOptions. While the UNIX transport is not linked into the program both
// methods fail with an error matching ErrUnsupportedNetwork.
type ReactorUNIX interface {
	// ListenUNIX listens on path (Twisted's listenUNIX).
	ListenUNIX(path string, f Factory, opts any) (Port, error)
	// ConnectUNIX starts connecting to path (Twisted's connectUNIX).
	ConnectUNIX(path string, f ClientFactory, opts any) (Connector, error)
}

// ReactorUDP listens on UDP (Twisted's IReactorUDP.listenUDP).
//
// addr is "host:port" (the host an IP literal, empty for 0.0.0.0; port 0
// picks a free port). opts is nil for the defaults or udp.ListenOptions (a
// value or a pointer); any other type fails with an error matching
// ErrBadOptions. While transports/udp is not linked into the program it
// fails with an error matching ErrUnsupportedNetwork.
type ReactorUDP interface {
	// ListenUDP binds addr and delivers its datagrams to p; the returned
	// transport is the one p's StartProtocol receives.
	ListenUDP(addr string, p DatagramProtocol, opts any) (DatagramTransport, error)
}

// ReactorUNIXDatagram listens and connects over UNIX datagram sockets
// (Twisted's IReactorUNIXDatagram).
//
// path is a filesystem path or "@name" for a Linux abstract socket. opts is
// nil or unixgram.ListenOptions for ListenUNIXDatagram and
// unixgram.ConnectOptions for ConnectUNIXDatagram (a value or a pointer);
// any other type fails with an error matching ErrBadOptions. While
// transports/unixgram is not linked into the program both fail with an
// error matching ErrUnsupportedNetwork.
type ReactorUNIXDatagram interface {
	// ListenUNIXDatagram binds path and delivers its datagrams to p
	// (Twisted's listenUNIXDatagram).
	ListenUNIXDatagram(path string, p UnixDatagramProtocol, opts any) (UnixDatagramTransport, error)
	// ConnectUNIXDatagram makes a socket connected to path (Twisted's
	// connectUNIXDatagram).
	ConnectUNIXDatagram(path string, p UnixDatagramProtocol, opts any) (UnixDatagramTransport, error)
}

// Reactor is what user code needs of an event loop: time, a way in from
// other goroutines, and listening and connecting. The real loop's
// implementation is stream.Reactor(loop) (also what a connection's
// Transport.Reactor returns); transporttest.MemoryReactor is the test double,
// so code written against Reactor is tested without sockets.
//
// Call is goroutine-safe: it runs f on the reactor's goroutine at a later
// turn, or returns an error (the loop stopped) and never runs f. The other
// methods follow the package's threading rule (the reactor's goroutine),
// except where an implementation documents more (the real loop's Listen and
// Connect are goroutine-safe).
type Reactor interface {
	Clock
	// Call runs f on the reactor's goroutine at a later turn.
	Call(f func()) error
	ReactorTCP
	ReactorUNIX
	ReactorUDP
	ReactorUNIXDatagram
}
