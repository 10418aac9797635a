package backendtest

import (
	"encoding/binary"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Descriptor helpers. Every descriptor they create is non-blocking and
// close-on-exec, and is closed by the harness at cleanup.

func closeFd(fd int) error { return unix.Close(fd) }

// track registers fd for closing at cleanup and returns it.
func (h *harness) track(fd int) int {
	h.fds = append(h.fds, fd)
	return fd
}

// untrack forgets fd (it was closed another way, e.g. by KindClose).
func (h *harness) untrack(fd int) {
	for i, f := range h.fds {
		if f == fd {
			h.fds = append(h.fds[:i], h.fds[i+1:]...)
			return
		}
	}
}

// closeNow closes a tracked descriptor immediately.
func (h *harness) closeNow(fd int) {
	h.t.Helper()
	h.untrack(fd)
	require.NoError(h.t, unix.Close(fd))
}

// socketpair returns a connected AF_UNIX stream pair.
func (h *harness) socketpair() (int, int) {
	h.t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(h.t, err)
	return h.track(fds[0]), h.track(fds[1])
}

// pipe returns a pipe's read and write ends; blocking selects blocking mode.
func (h *harness) pipe(blocking bool) (int, int) {
	h.t.Helper()
	flags := unix.O_CLOEXEC
	if !blocking {
		flags |= unix.O_NONBLOCK
	}
	var p [2]int
	require.NoError(h.t, unix.Pipe2(p[:], flags))
	return h.track(p[0]), h.track(p[1])
}

// socket returns a fresh non-blocking socket.
func (h *harness) socket(typ int) int {
	h.t.Helper()
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(h.t, err)
	return h.track(fd)
}

// listener returns a TCP listener on 127.0.0.1 and its port.
func (h *harness) listener() (int, int) {
	h.t.Helper()
	fd := h.socket(unix.SOCK_STREAM)
	require.NoError(h.t, unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(h.t, unix.Listen(fd, 128))
	return fd, h.port(fd)
}

// udp returns a UDP socket bound to 127.0.0.1 and its port.
func (h *harness) udp() (int, int) {
	h.t.Helper()
	fd := h.socket(unix.SOCK_DGRAM)
	require.NoError(h.t, unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	return fd, h.port(fd)
}

// port is the local port fd is bound to.
func (h *harness) port(fd int) int {
	h.t.Helper()
	sa, err := unix.Getsockname(fd)
	require.NoError(h.t, err)
	return sa.(*unix.SockaddrInet4).Port
}

// dial starts a non-blocking connect from a fresh socket to 127.0.0.1:port
// without the backend (for accept scenarios).
func (h *harness) dial(port int) int {
	h.t.Helper()
	fd := h.socket(unix.SOCK_STREAM)
	err := unix.Connect(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port})
	if err != nil {
		require.ErrorIs(h.t, err, unix.EINPROGRESS)
	}
	return fd
}

// tcpPair returns a connected TCP loopback pair (client, server side), made
// without the backend.
func (h *harness) tcpPair() (int, int) {
	h.t.Helper()
	ln, port := h.listener()
	c := h.dial(port)
	var s int
	for i := 0; ; i++ {
		fd, _, err := unix.Accept4(ln, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err == nil {
			s = h.track(fd)
			break
		}
		require.ErrorIs(h.t, err, unix.EAGAIN)
		require.Less(h.t, i, 10000, "loopback accept never became ready")
		pfd := []unix.PollFd{{Fd: int32(ln), Events: unix.POLLIN}}
		_, _ = unix.Poll(pfd, 10)
	}
	// Wait until the client side sees the connection as established.
	pfd := []unix.PollFd{{Fd: int32(c), Events: unix.POLLOUT}}
	_, err := unix.Poll(pfd, int(waitLimit.Milliseconds()))
	require.NoError(h.t, err)
	h.closeNow(ln)
	return c, s
}

// inet4 builds a raw 127.0.0.1:port address for connect and sendmsg.
func inet4(port int) (*unix.RawSockaddrAny, uint32) {
	var raw unix.RawSockaddrAny
	sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&raw))
	sa.Family = unix.AF_INET
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], uint16(port))
	sa.Addr = [4]byte{127, 0, 0, 1}
	return &raw, unix.SizeofSockaddrInet4
}

// rawPort returns the port of a raw AF_INET address.
func rawPort(raw *unix.RawSockaddrAny) (family uint16, port int) {
	sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
	return sa.Family, int(binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:]))
}

// writeAll writes p to the non-blocking fd outside the backend, polling when the
// socket is full. It is for peers the scenario does not drive through the backend.
func (h *harness) writeAll(fd int, p []byte) {
	h.t.Helper()
	for len(p) > 0 {
		n, err := unix.Write(fd, p)
		if err == unix.EAGAIN {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			_, _ = unix.Poll(pfd, 100)
			continue
		}
		require.NoError(h.t, err)
		p = p[n:]
	}
}

// readSome reads what is available on the non-blocking fd outside the backend,
// waiting up to waitLimit for at least one byte (or end of stream).
func (h *harness) readSome(fd int, p []byte) int {
	h.t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	_, err := unix.Poll(pfd, int(waitLimit.Milliseconds()))
	require.NoError(h.t, err)
	n, err := unix.Read(fd, p)
	require.NoError(h.t, err)
	return n
}

// readN reads exactly n bytes from fd outside the backend.
func (h *harness) readN(fd int, n int) []byte {
	h.t.Helper()
	buf := make([]byte, n)
	got := 0
	for got < n {
		k := h.readSome(fd, buf[got:])
		require.NotZero(h.t, k, "unexpected end of stream after %d of %d bytes", got, n)
		got += k
	}
	return buf
}

// pattern returns n bytes of a recognisable, position-dependent pattern.
func pattern(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7) + seed + byte(i>>8)
	}
	return p
}
