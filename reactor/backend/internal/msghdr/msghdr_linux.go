// Package msghdr is the one place where the backends under reactor/backend
// turn KindSendMsg and KindRecvMsg ops into struct msghdr fields (name and
// control buffer; the data iovecs are each backend's) and a finished
// recvmsg's msghdr back into the op and its completion, so that both
// backends report identical results. Nothing here allocates or keeps state.
package msghdr

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
)

// RecvFlags are the msg_flags every backend passes to recvmsg:
// MSG_CMSG_CLOEXEC, so that descriptors received with SCM_RIGHTS are
// close-on-exec (recvmsg(2)).
const RecvFlags = unix.MSG_CMSG_CLOEXEC

// SendFlags are the msg_flags every backend passes to sendmsg: MSG_NOSIGNAL.
const SendFlags = unix.MSG_NOSIGNAL

// Prepare points m's name and control fields at op's Addr and Control; the
// caller zeroes m beforehand and sets the iovecs. For a
// sendmsg the name is Addr[:AddrLen] (none when AddrLen is 0); for a recvmsg
// it is all of Addr, which always has room for a unix.RawSockaddrAny. The
// kernel reads and (recvmsg) writes these buffers until the op's final
// completion; they belong to the op, so they stay valid that long.
func Prepare(m *unix.Msghdr, op *backend.Op) {
	switch op.Kind {
	case backend.KindSendMsg:
		if op.AddrLen > 0 && op.Addr != nil {
			m.Name = (*byte)(unsafe.Pointer(op.Addr))
			m.Namelen = min(op.AddrLen, unix.SizeofSockaddrAny)
		}
	case backend.KindRecvMsg:
		if op.Addr != nil {
			m.Name = (*byte)(unsafe.Pointer(op.Addr))
			m.Namelen = unix.SizeofSockaddrAny
		}
	default:
		return
	}
	if len(op.Control) > 0 {
		m.Control = unsafe.SliceData(op.Control)
		m.SetControllen(len(op.Control))
	}
}

// Result applies a successful recvmsg's msghdr m (as the kernel left it) to op
// and its completion c: AddrLen gets the sender's address length, c.Control
// the control messages received (a view of op.Control), and c.Flags
// FlagTrunc and FlagCtrunc from MSG_TRUNC and MSG_CTRUNC.
func Result(m *unix.Msghdr, op *backend.Op, c *backend.Completion) {
	if op.Addr != nil {
		op.AddrLen = m.Namelen
	}
	if n := min(int(m.Controllen), len(op.Control)); n > 0 && m.Control != nil {
		c.Control = op.Control[:n:n]
	}
	if m.Flags&unix.MSG_TRUNC != 0 {
		c.Flags |= backend.FlagTrunc
	}
	if m.Flags&unix.MSG_CTRUNC != 0 {
		c.Flags |= backend.FlagCtrunc
	}
}

// CloseRights closes every descriptor in the SCM_RIGHTS messages of control
// (control messages a recvmsg wrote) and returns how many it closed. A
// backend calls it on a completion it discards at Close, so that descriptors
// the kernel already installed do not leak. It walks the messages in place
// and allocates nothing; a malformed message ends the walk.
func CloseRights(control []byte) int {
	n := 0
	for len(control) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(unsafe.SliceData(control)))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(control) {
			break
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_RIGHTS {
			data := control[unix.CmsgLen(0):l]
			for ; len(data) >= 4; data = data[4:] {
				fd := *(*int32)(unsafe.Pointer(unsafe.SliceData(data)))
				if unix.Close(int(fd)) == nil {
					n++
				}
			}
		}
		control = control[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(control)):]
	}
	return n
}
