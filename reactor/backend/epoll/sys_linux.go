package epoll

import (
	"math/bits"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw system calls returning errnos, so the hot path neither allocates (no
// unix.Sockaddr conversions) nor wraps errors. Every memory argument is either
// the caller's op buffers (kept reachable by the op) or scratch inside the
// Backend, and every call here is synchronous: nothing outlives the call.

// bufPtr is the address of p's first byte, or nil for an empty slice.
func bufPtr(p []byte) unsafe.Pointer {
	if len(p) == 0 {
		return nil
	}
	return unsafe.Pointer(&p[0])
}

// The socket calls below are always made with MSG_DONTWAIT, so they never
// sleep waiting for data or room: they are raw system calls, without the
// runtime's entersyscall/exitsyscall bookkeeping (which exists so a call that
// blocks can hand its P to another thread). Calls that may block (accept and
// connect on a caller's socket, read and write on pipes and files, close)
// keep the ordinary form.

// sysRecv is recv(2); flags must include MSG_DONTWAIT.
func sysRecv(fd int32, p []byte, flags int) (int, unix.Errno) {
	r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(bufPtr(p)), uintptr(len(p)), uintptr(flags), 0, 0)
	return int(r), e
}

// sysSend is send(2); flags must include MSG_DONTWAIT.
func sysSend(fd int32, p []byte, flags int) (int, unix.Errno) {
	r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(bufPtr(p)), uintptr(len(p)), uintptr(flags), 0, 0)
	return int(r), e
}

// sysSendmsg is sendmsg(2); flags must include MSG_DONTWAIT.
func sysSendmsg(fd int32, msg *unix.Msghdr, flags int) (int, unix.Errno) {
	r, _, e := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(msg)), uintptr(flags))
	return int(r), e
}

// sysRecvmsg is recvmsg(2); flags must include MSG_DONTWAIT.
func sysRecvmsg(fd int32, msg *unix.Msghdr, flags int) (int, unix.Errno) {
	r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(msg)), uintptr(flags))
	return int(r), e
}

func sysAccept(fd int32) (int, unix.Errno) {
	r, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(fd), 0, 0, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	return int(r), e
}

func sysConnect(fd int32, addr *unix.RawSockaddrAny, n uint32) unix.Errno {
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(addr)), uintptr(n))
	return e
}

// offHiLo splits a file offset the way preadv2/pwritev2 take it.
func offHiLo(off int64) (lo, hi uintptr) {
	return uintptr(off), uintptr(uint64(off) >> (bits.UintSize - 1) >> 1)
}

// sysRWv2 is preadv2 (write false) or pwritev2 at the current offset (-1).
func sysRWv2(write bool, fd int32, iov *unix.Iovec, n int, flags int) (int, unix.Errno) {
	nr := uintptr(unix.SYS_PREADV2)
	if write {
		nr = unix.SYS_PWRITEV2
	}
	lo, hi := offHiLo(-1)
	r, _, e := unix.Syscall6(nr, uintptr(fd), uintptr(unsafe.Pointer(iov)), uintptr(n), lo, hi, uintptr(flags))
	return int(r), e
}

// sysRW is plain read or write.
func sysRW(write bool, fd int32, p []byte) (int, unix.Errno) {
	nr := uintptr(unix.SYS_READ)
	if write {
		nr = unix.SYS_WRITE
	}
	r, _, e := unix.Syscall(nr, uintptr(fd), uintptr(bufPtr(p)), uintptr(len(p)))
	return int(r), e
}

// sysEpollWait waits on epfd. timeout < 0 waits forever. It uses epoll_pwait2
// (nanosecond timeouts) and falls back to epoll_wait, rounding the timeout up
// to whole milliseconds so timers never fire early, when the kernel lacks it.
func (b *Backend) sysEpollWait(timeout time.Duration) (int, unix.Errno) {
	ev := unsafe.Pointer(&b.events[0])
	if timeout != 0 {
		b.stats.Waits++
	} else {
		b.stats.Polls++
	}
	if !b.noPwait2 {
		var ts uintptr
		if timeout >= 0 {
			b.ts = unix.NsecToTimespec(int64(timeout))
			ts = uintptr(unsafe.Pointer(&b.ts))
		}
		var r uintptr
		var e unix.Errno
		if timeout == 0 { // a look that cannot sleep: raw, as the socket calls
			r, _, e = unix.RawSyscall6(unix.SYS_EPOLL_PWAIT2, uintptr(b.epfd), uintptr(ev), uintptr(len(b.events)), ts, 0, 0)
		} else {
			r, _, e = unix.Syscall6(unix.SYS_EPOLL_PWAIT2, uintptr(b.epfd), uintptr(ev), uintptr(len(b.events)), ts, 0, 0)
		}
		if e != unix.ENOSYS {
			return int(r), e
		}
		b.noPwait2 = true
	}
	msec := -1
	if timeout >= 0 {
		msec = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	if msec == 0 {
		r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(b.epfd), uintptr(ev), uintptr(len(b.events)), 0, 0, 0)
		return int(r), e
	}
	r, _, e := unix.Syscall6(unix.SYS_EPOLL_PWAIT, uintptr(b.epfd), uintptr(ev), uintptr(len(b.events)), uintptr(msec), 0, 0)
	return int(r), e
}
