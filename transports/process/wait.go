package process

import (
	"encoding/binary"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/transports"
)

// si_code values of a SIGCHLD siginfo (include/uapi/asm-generic/siginfo.h).
const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

// sigchldOff is the offset of the SIGCHLD fields (si_pid, si_uid,
// si_status) in a siginfo_t: after three ints, aligned to the word size.
const sigchldOff = (12 + unsafe.Sizeof(uintptr(0)) - 1) &^ (unsafe.Sizeof(uintptr(0)) - 1)

// reap collects the child behind pidfd without blocking: waitid(P_PIDFD,
// WEXITED|WNOHANG) (Linux 5.4). done is false while the child runs. It
// touches only this child, so it cannot race with code that waits for
// children it started itself. ECHILD means something else reaped it.
func reap(pidfd int) (st transports.ProcessStatus, done bool, err error) {
	var info unix.Siginfo
	for {
		err = unix.Waitid(unix.P_PIDFD, pidfd, &info, unix.WEXITED|unix.WNOHANG, nil)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return st, false, err
	}
	raw := (*[unsafe.Sizeof(info)]byte)(unsafe.Pointer(&info))[:]
	pid := int32(binary.NativeEndian.Uint32(raw[sigchldOff:]))
	if pid == 0 {
		return st, false, nil // WNOHANG: still running
	}
	status := int(int32(binary.NativeEndian.Uint32(raw[sigchldOff+8:])))
	switch info.Code {
	case cldExited:
		st.Code = status
	case cldKilled, cldDumped:
		st.Signal = syscall.Signal(status)
		st.CoreDumped = info.Code == cldDumped
	default:
		st.Detached = true // not an exit (stopped/continued are not asked for)
	}
	return st, true, nil
}
