// Package unixgram is gyre's UNIX datagram socket transport (Twisted's
// IReactorUNIXDatagram: listenUNIXDatagram and connectUNIXDatagram,
// unix.DatagramPort and ConnectedDatagramPort): a SOCK_DGRAM AF_UNIX socket
// driven by the loop with the same machinery, semantics and protocol
// contract as transports/udp (transports.DatagramProtocolOf, here with
// string addresses: transports.UnixDatagramProtocol), plus descriptor
// passing (SCM_RIGHTS).
//
// Addresses are filesystem paths or Linux abstract names written "@name"
// (as in Go's net and transports/unix); an unnamed sender is "" and cannot
// be answered (Write to "" on a port that is not connected returns
// ErrNoAddress) — a client that wants replies binds its own address
// (ConnectOptions.Bind, or Listen and Write to the server). The socket
// file is handled as for UNIX streams (the shared code is
// transports/internal/unixpath): an exact Mode, a stale file told from a
// live socket (ErrStaleSocket, RemoveStale), a file that is not a socket
// never removed (ErrNotSocket), and at StopListening the file our bind
// created removed, once, and only while the path still names it.
//
// Sending: a receiver whose queue is full makes sendmsg fail with EAGAIN;
// the datagram is then queued (bounded, as in udp) and sent when there is
// room, or refused with transports.ErrQueueFull once the queue is full —
// never dropped silently. A connected socket learns of room from poll; an
// unconnected one cannot (poll sees only its own buffer) and retries on a
// timer backing off from 1 ms to 64 ms.
//
// Importing the package registers the "unixgram" datagram network
// (transports.ReactorUNIXDatagram). Loop goroutine only, like every
// transport, except Listen and Connect.
package unixgram

import (
	"errors"
	"fmt"
	"net"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/internal/dgram"
	"github.com/gyre-io/gyre/transports/internal/unixpath"
)

// Errors (errors.Is-able; the address ones are transports/unix's values).
var (
	// ErrBadAddress: a path that cannot name a UNIX socket (empty, NUL
	// byte, longer than 107 bytes).
	ErrBadAddress = unixpath.ErrBadAddress
	// ErrStaleSocket: the path is a socket file with no socket behind it
	// and RemoveStale is not set (wrapped together with
	// syscall.EADDRINUSE).
	ErrStaleSocket = unixpath.ErrStaleSocket
	// ErrNotSocket: the path exists and is not a socket (wrapped together
	// with syscall.EADDRINUSE); it is never removed.
	ErrNotSocket = unixpath.ErrNotSocket
	// ErrTooManyFDs: WriteFDs with more than MaxFDs descriptors.
	ErrTooManyFDs = fmt.Errorf("gyre/unixgram: more than %d descriptors in one datagram", MaxFDs)
	// ErrNoAddress: Write or WriteFDs with the empty address on a port that
	// is not connected. "" is how an unnamed sender appears (a socket that
	// never bound an address): it cannot be answered, so a reply to it
	// fails with this error, which also matches transports.ErrNotConnected.
	ErrNoAddress error = &dgram.Error{Net: "unixgram", Msg: "no address to send to: the empty address (an unnamed sender) cannot be answered, and the port is not connected", Sentinel: transports.ErrNotConnected}
)

// MaxFDs is the most descriptors one datagram carries (the kernel's
// SCM_MAX_FD).
const MaxFDs = 253

// FDReceiver is implemented by a protocol that receives descriptors passed
// with datagrams (SCM_RIGHTS; the same method as transports/unix's). Its
// port reserves room for one SCM_RIGHTS message of MaxFDs descriptors in
// each receive buffer, which lowers MaxPacketSize's multishot room by about
// 1 KiB. Without it the kernel closes descriptors sent to the port.
type FDReceiver interface {
	// FDsReceived is called on the loop with the descriptors that came
	// with a datagram, just before its DatagramReceived. They are open,
	// close-on-exec and the protocol's from now on: it must close them (or
	// hand them on). fds is valid only during the call. Descriptors of a
	// datagram that is not delivered (truncated, or arriving while the port
	// stops) are closed by the transport.
	FDsReceived(fds []int)
}

// ListenOptions configure Listen (and the bound side of Connect). The zero
// value is a good default.
type ListenOptions struct {
	// MaxPacketSize is the largest datagram delivered whole; 0 is the
	// multishot room of the loop's provided buffers (MaxPacketSize: 3968
	// bytes with the default 4 KiB buffers, about 1 KiB less for an
	// FDReceiver). Larger values receive one datagram at a time into a
	// buffer of this size, as in udp (see udp.ListenOptions).
	// Larger values (up to 65535) receive one datagram at a time into the
	// port's own buffer. A larger datagram is reported truncated
	// (transports.TruncatedReceiverOf), never delivered cut.
	MaxPacketSize int
	// QueueDatagrams and QueueBytes bound the send queue used while the
	// receiver's queue is full; defaults 256 datagrams and 1 MiB.
	QueueDatagrams, QueueBytes int
	// Mode, if not zero, is the exact permission bits of the socket file
	// (sending to it needs write permission), whatever the umask; ignored
	// for an abstract name. See transports/unix.ListenOptions.Mode.
	Mode os.FileMode
	// RemoveStale removes a stale socket file at the path (a socket file
	// with no socket behind it) and binds in its place; without it Listen
	// fails with ErrStaleSocket. A live socket and a file that is not a
	// socket are never removed.
	RemoveStale bool
}

// ConnectOptions configure Connect.
type ConnectOptions struct {
	// Bind, if not empty, is the port's own address (a path or "@name"),
	// bound before connecting so that the peer can answer; ListenOptions'
	// Mode and RemoveStale apply to it. Empty: the socket is unnamed (it
	// can send, and receive only what is sent to it by a peer that knows
	// it, which none can).
	Bind string
	ListenOptions
}

// MaxPacketSize is the largest datagram a port on loop receives whole with
// the multishot fast path; fds: the protocol receives descriptors
// (FDReceiver).
func MaxPacketSize(loop *reactor.Loop, fds bool) int {
	return dgram.MaxPacketSize(loop, controlRoom(fds))
}

func controlRoom(fds bool) int {
	if !fds {
		return 0
	}
	return unix.CmsgSpace(MaxFDs * 4)
}

// codec is the AF_UNIX dgram.Codec. Decode keeps the string of the last
// sender and returns it again while the sender stays the same: no
// allocation per datagram from a steady peer.
type codec struct{ last string }

func (c *codec) Decode(name []byte) string {
	b := unixpath.Decode(name)
	if len(b) == 0 {
		return ""
	}
	if string(b) != c.last {
		c.last = string(b)
	}
	return c.last
}

func (c *codec) Encode(a string, raw *unix.RawSockaddrAny) (uint32, error) {
	if _, err := unixpath.Parse(a); err != nil {
		return 0, fmt.Errorf("gyre/unixgram: %w (%w)", err, transports.ErrBadOptions)
	}
	return unixpath.RawName(a, raw), nil
}

func (c *codec) Local(fd int) string { return unixpath.Local(fd, "unixgram").Name }

// Port is a UNIX datagram socket; it implements
// transports.UnixDatagramTransport. Loop goroutine only, except where
// noted.
type Port struct {
	d    *dgram.Port[string, *codec]
	file *unixpath.File
	recv FDReceiver
}

var _ transports.UnixDatagramTransport = (*Port)(nil)

// Listen binds a UNIX datagram socket to path (a filesystem path, or
// "@name" for a Linux abstract name) and starts delivering its datagrams to
// proto: StartProtocol and the first receive run on the loop's next turn.
// Goroutine-safe (the bind is done before Listen returns). Errors, each in
// a *net.OpError: ErrBadAddress, syscall.EADDRINUSE (a live socket, or an
// abstract name in use), ErrStaleSocket, ErrNotSocket, bad options
// (transports.ErrBadOptions), and the system calls' errors.
func Listen(loop *reactor.Loop, path string, proto transports.UnixDatagramProtocol, opts ListenOptions) (*Port, error) {
	a, err := unixpath.Parse(path)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "unixgram", Err: err}
	}
	p, err := open(loop, &a, "", proto, opts)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "unixgram", Addr: a.NetAddr("unixgram"), Err: err}
	}
	return p, nil
}

// Connect makes a UNIX datagram socket connected to path (Twisted's
// connectUNIXDatagram): it receives only path's datagrams, Write with an
// empty address goes to path, and a peer that goes away reaches
// ConnectionRefused. opts.Bind names the socket so that the peer can
// answer. Goroutine-safe. Errors as Listen's (for Bind), and ECONNREFUSED
// (transports.ErrConnectionRefused) or ENOENT when nothing is bound at
// path.
func Connect(loop *reactor.Loop, path string, proto transports.UnixDatagramProtocol, opts ConnectOptions) (*Port, error) {
	dst, err := unixpath.Parse(path)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "unixgram", Err: err}
	}
	var bind *unixpath.Addr
	if opts.Bind != "" {
		b, err := unixpath.Parse(opts.Bind)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: "unixgram", Addr: dst.NetAddr("unixgram"), Err: err}
		}
		bind = &b
	}
	p, err := open(loop, bind, path, proto, opts.ListenOptions)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "unixgram", Addr: dst.NetAddr("unixgram"), Err: err}
	}
	return p, nil
}

// open makes the socket, binds it to bind (nil: unnamed), connects it to
// peer ("" : not connected) and starts the port.
func open(loop *reactor.Loop, bind *unixpath.Addr, peer string, proto transports.UnixDatagramProtocol, opts ListenOptions) (*Port, error) {
	if opts.MaxPacketSize < 0 || opts.MaxPacketSize > 65535 {
		return nil, fmt.Errorf("MaxPacketSize %d (0..65535): %w", opts.MaxPacketSize, transports.ErrBadOptions)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	p := &Port{}
	if bind != nil {
		if p.file, err = unixpath.Bind(fd, *bind, unix.SOCK_DGRAM, opts.Mode, opts.RemoveStale); err != nil {
			_ = unix.Close(fd)
			return nil, err
		}
	}
	if peer != "" {
		var raw unix.RawSockaddrAny
		n := unixpath.RawName(peer, &raw)
		if err := connect(fd, &raw, n); err != nil {
			p.file.Remove()
			_ = unix.Close(fd)
			if errors.Is(err, unix.ECONNREFUSED) {
				return nil, &dgram.Also{Err: err, Sentinel: transports.ErrConnectionRefused}
			}
			return nil, err
		}
	}
	p.recv, _ = proto.(FDReceiver)
	cfg := dgram.Config{
		Net: "unixgram", MaxPacketSize: opts.MaxPacketSize,
		QueueDatagrams: opts.QueueDatagrams, QueueBytes: opts.QueueBytes,
		Closing: p.file.Remove, NoAddress: ErrNoAddress,
	}
	if p.recv != nil {
		cfg.ControlRoom = controlRoom(true)
		cfg.Control = p.control
	}
	if p.d, err = dgram.New(loop, fd, proto, &codec{}, peer, cfg); err != nil {
		return nil, err
	}
	return p, nil
}

// control handles the control messages of one received datagram.
func (p *Port) control(ctl []byte, ctrunc, deliver bool) {
	if ctrunc {
		p.d.Loop().ReportError(fmt.Errorf("gyre/unixgram: %s: control messages truncated: the kernel closed descriptors that did not fit", p.d.LocalAddr()))
	}
	msgs, err := unix.ParseSocketControlMessage(ctl)
	if err != nil {
		p.d.Loop().ReportError(fmt.Errorf("gyre/unixgram: %s: control messages: %w", p.d.LocalAddr(), err))
		return
	}
	var fds []int
	for i := range msgs {
		if msgs[i].Header.Level == unix.SOL_SOCKET && msgs[i].Header.Type == unix.SCM_RIGHTS {
			if got, err := unix.ParseUnixRights(&msgs[i]); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	if len(fds) == 0 {
		return
	}
	if !deliver || p.recv == nil {
		closeAll(fds)
		return
	}
	p.recv.FDsReceived(fds)
}

func closeAll(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}

// WriteFDs is Write passing fds with the datagram (SCM_RIGHTS; an empty p
// is allowed). The caller keeps its descriptors and may close them once
// WriteFDs returns: the kernel takes its own references when the datagram
// is sent, and a datagram that must wait in the send queue holds duplicates
// (close-on-exec) that the port closes once it was sent or dropped. The
// receiver gets its own descriptors (its kernel closes them if its
// protocol does not take descriptors).
//
// Errors: those of Write, ErrTooManyFDs for more than MaxFDs, and EBADF
// (wrapped) for a descriptor that is not open (nothing is sent or queued
// then).
func (p *Port) WriteFDs(b []byte, fds []int, addr string) error {
	if len(fds) == 0 {
		return p.d.Write(b, addr)
	}
	if len(fds) > MaxFDs {
		return ErrTooManyFDs
	}
	hold := func() ([]byte, func(), error) {
		dups := make([]int, 0, len(fds))
		for _, fd := range fds {
			d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				closeAll(dups)
				return nil, nil, os.NewSyscallError("fcntl", err)
			}
			dups = append(dups, d)
		}
		return unix.UnixRights(dups...), func() { closeAll(dups) }, nil
	}
	return p.d.WriteControl(b, addr, unix.UnixRights(fds...), hold)
}

// Write implements transports.UnixDatagramTransport: addr is a path or
// "@name", or "" for the connected peer.
func (p *Port) Write(b []byte, addr string) error { return p.d.Write(b, addr) }

// Connect implements transports.UnixDatagramTransport.
func (p *Port) Connect(addr string) error { return p.d.Connect(addr) }

// LocalAddr implements transports.UnixDatagramTransport: the bound path or
// "@name" ("" for an unnamed socket). Goroutine-safe until Connect.
func (p *Port) LocalAddr() string { return p.d.LocalAddr() }

// Addr is LocalAddr as a *net.UnixAddr ("unixgram").
func (p *Port) Addr() net.Addr { return &net.UnixAddr{Name: p.d.LocalAddr(), Net: "unixgram"} }

// SetBroadcast implements transports.UnixDatagramTransport (no effect on
// a UNIX socket).
func (p *Port) SetBroadcast(on bool) error { return p.d.SetBroadcast(on) }

// Broadcast implements transports.UnixDatagramTransport.
func (p *Port) Broadcast() (bool, error) { return p.d.Broadcast() }

// SetReadBuffer implements transports.UnixDatagramTransport.
func (p *Port) SetReadBuffer(n int) error { return p.d.SetReadBuffer(n) }

// SetWriteBuffer implements transports.UnixDatagramTransport.
func (p *Port) SetWriteBuffer(n int) error { return p.d.SetWriteBuffer(n) }

// PauseReading implements transports.UnixDatagramTransport.
func (p *Port) PauseReading() { p.d.PauseReading() }

// ResumeReading implements transports.UnixDatagramTransport.
func (p *Port) ResumeReading() { p.d.ResumeReading() }

// Stats implements transports.UnixDatagramTransport.
func (p *Port) Stats() transports.DatagramStats { return p.d.Stats() }

// StopListening implements transports.UnixDatagramTransport. The socket
// file Listen (or Connect's Bind) created is removed before it returns, if
// the path still names it, so the path can be bound again at once.
func (p *Port) StopListening(done func()) error { return p.d.StopListening(done) }

// Close is StopListening(nil) (transports.Port).
func (p *Port) Close() error { return p.d.StopListening(nil) }

func connect(fd int, raw *unix.RawSockaddrAny, n uint32) error {
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(raw)), uintptr(n))
	if e != 0 {
		return os.NewSyscallError("connect", e)
	}
	return nil
}
