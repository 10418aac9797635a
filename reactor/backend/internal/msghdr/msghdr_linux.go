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
// and its completion c: AddrLen gets the sender's address length (and c.Name
// the address, a view of op.Addr), c.Control
// the control messages received (a view of op.Control), and c.Flags
// FlagTrunc and FlagCtrunc from MSG_TRUNC and MSG_CTRUNC.
func Result(m *unix.Msghdr, op *backend.Op, c *backend.Completion) {
	if op.Addr != nil {
		op.AddrLen = m.Namelen
		if n := min(int(m.Namelen), unix.SizeofSockaddrAny); n > 0 {
			c.Name = unsafe.Slice((*byte)(unsafe.Pointer(op.Addr)), n)[:n:n]
		}
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

// PrepareMultishot points m at provided buffer buf for one datagram of an
// emulated multishot recvmsg (op.Multishot): the payload goes to buf[:room]
// and the name and control rooms follow it, so a datagram is cut where
// io_uring's native layout cuts it (backend.MultishotRecvMsgRoom). iov is
// the caller's iovec that stays valid during the call. A backend whose
// kernel writes name and control elsewhere (a single-shot recvmsg with
// buffer select) calls Prepare instead and ResultMultishot copies them in.
func PrepareMultishot(m *unix.Msghdr, iov *unix.Iovec, op *backend.Op, buf []byte, room, nameLen, controlLen int) {
	*m = unix.Msghdr{}
	*iov = unix.Iovec{Base: unsafe.SliceData(buf)}
	iov.SetLen(room)
	m.Iov = iov
	m.SetIovlen(1)
	if nameLen > 0 {
		m.Name = &buf[room]
		m.Namelen = uint32(nameLen)
	}
	if controlLen > 0 {
		m.Control = &buf[room+nameLen]
		m.SetControllen(controlLen)
	}
}

// ResultMultishot fills completion c of an emulated multishot recvmsg op
// that received n payload bytes into buf[:n] with the msghdr m the kernel
// left: Res, Buf, Name and Control, FlagTrunc, FlagCtrunc, FlagMore, and
// FlagBuffer when it returns true. A datagram with payload keeps buf: Name
// and Control are views of buf (copied to buf[room:] first when m pointed
// elsewhere) and the caller sets BufID. An empty datagram does not (false:
// the caller gives buf back): Name and Control are then copied to, and views
// of, op.Addr and op.Control (see backend.KindRecvMsg).
func ResultMultishot(m *unix.Msghdr, op *backend.Op, buf []byte, room, nameLen, controlLen, n int, c *backend.Completion) (keep bool) {
	c.Res = int32(n)
	c.Flags |= backend.FlagMore
	keep = n > 0
	var nameTo, controlTo []byte
	if keep {
		c.Buf = buf[:n:n]
		c.Flags |= backend.FlagBuffer
		nameTo, controlTo = buf[room:room+nameLen], buf[room+nameLen:room+nameLen+controlLen]
	} else {
		if op.Addr != nil {
			nameTo = unsafe.Slice((*byte)(unsafe.Pointer(op.Addr)), nameLen)
		}
		controlTo = op.Control[:controlLen]
	}
	CopyOut(c, unsafe.Slice(m.Name, min(int(m.Namelen), nameLen)), unsafe.Slice(m.Control, min(int(m.Controllen), controlLen)), nameTo, controlTo)
	if m.Flags&unix.MSG_TRUNC != 0 {
		c.Flags |= backend.FlagTrunc
	}
	if m.Flags&unix.MSG_CTRUNC != 0 {
		c.Flags |= backend.FlagCtrunc
	}
	return keep
}

// CopyOut sets c.Name and c.Control to copies of name and control made in
// nameTo and controlTo (which have room for them; a copy onto itself is
// free), nil when empty.
func CopyOut(c *backend.Completion, name, control, nameTo, controlTo []byte) {
	c.Name, c.Control = nil, nil
	if l := len(name); l > 0 {
		copy(nameTo, name)
		c.Name = nameTo[:l:l]
	}
	if l := len(control); l > 0 {
		copy(controlTo, control)
		c.Control = controlTo[:l:l]
	}
}
