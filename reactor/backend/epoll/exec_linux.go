package epoll

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/backend/internal/bufpool"
	"github.com/gyre-io/gyre/reactor/backend/internal/msghdr"
)

// Which wait list an op parks on.
type direction uint8

const (
	dirNone direction = iota
	dirRd
	dirWr
	dirPoll
)

func dirOf(k backend.Kind) direction {
	switch k {
	case backend.KindAccept, backend.KindRecv, backend.KindRecvMsg, backend.KindRead:
		return dirRd
	case backend.KindConnect, backend.KindSend, backend.KindSendv, backend.KindSendZC, backend.KindSendMsg, backend.KindWrite:
		return dirWr
	case backend.KindPoll:
		return dirPoll
	}
	return dirNone
}

func (st *fdState) list(d direction) *opList {
	switch d {
	case dirRd:
		return &st.rd
	case dirWr:
		return &st.wr
	}
	return &st.poll
}

// maxTimeout caps KindTimeout so deadlines cannot overflow (about 146 years).
const maxTimeout = time.Duration(1 << 62)

// epollEvents is the interest set of every registered descriptor. EPOLLPRI is
// in it so urgent TCP data is seen (it ends reads early, see fdState.edgy)
// and so poll ops asking for POLLPRI fire.
const epollEvents = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLPRI | unix.EPOLLET

var parkBit = [...]uint32{dirRd: stParkRd, dirWr: stParkWr, dirPoll: stParkPoll}

// start1 starts one submitted op: run it now, or park it behind earlier ops of
// the same direction on its descriptor so a stream keeps its order. A
// multishot read-side op runs one bounded pass at most; if that pass ends
// before EAGAIN, or if a batch of completions is already queued (it does not
// run at all then), its descriptor joins the ready list for later passes.
func (b *Backend) start1(op *backend.Op) {
	if op.Kind == backend.KindTimeout && op.Timeout > 0 {
		b.timerPush(timer{when: b.now() + int64(min(op.Timeout, maxTimeout)), op: op})
		op.Sys.State |= stTimer
		b.index.Add(op)
		return
	}
	d := dirOf(op.Kind)
	if d == dirRd || d == dirWr {
		if st := b.lookupFd(op.Fd); st != nil && st.registered && st.list(d).head != nil {
			b.park(op, d)
			return
		}
	}
	b.newPass()
	if d == dirRd && op.Multishot && b.queued() >= b.budget {
		b.yielded = true // not even started: try it when its turn comes
	} else if !b.exec(op) {
		b.retire(op)
		return
	}
	more := b.yielded
	b.park(op, d)
	if more && op.Sys.State&stParkRd != 0 {
		b.ready.push(b.lookupFd(op.Fd))
	}
}

// park puts op on its descriptor's wait list, registering the descriptor with
// epoll on first need.
func (b *Backend) park(op *backend.Op, d direction) {
	if op.Fd < 0 {
		b.post(op, -int32(unix.EBADF), 0)
		b.retire(op)
		return
	}
	st := b.lookupFd(op.Fd)
	if st != nil && st.registered && (st.empty() || d == dirPoll && op.Multishot) {
		// Nothing was waiting on fd, so the caller may have closed it (and the
		// number been reused) without KindClose, which silently drops it from
		// the epoll set. Re-arm it, which also proves it is still there. A
		// multishot poll re-arms too: epoll then reports the current readiness.
		b.ev = unix.EpollEvent{Events: epollEvents, Fd: op.Fd, Pad: st.gen}
		if unix.EpollCtl(b.epfd, unix.EPOLL_CTL_MOD, int(op.Fd), &b.ev) != nil {
			st.reset()
		}
	}
	if st == nil || !st.registered {
		// Register before recording anything, so a bogus descriptor number
		// costs no state.
		var gen int32
		if st != nil {
			gen = st.gen
		}
		b.ev = unix.EpollEvent{Events: epollEvents, Fd: op.Fd, Pad: gen}
		err := unix.EpollCtl(b.epfd, unix.EPOLL_CTL_ADD, int(op.Fd), &b.ev)
		if err == unix.EEXIST { // registered under an older generation
			err = unix.EpollCtl(b.epfd, unix.EPOLL_CTL_MOD, int(op.Fd), &b.ev)
		}
		switch err {
		case nil:
			if st == nil {
				st = b.fdState(op.Fd)
			} else {
				// What was learnt before registration may be of a file the
				// caller has since closed directly, its number now reused.
				st.reset()
			}
			st.registered = true
		case unix.EPERM:
			// A regular file or similar: always "ready", cannot be polled.
			// Do the blocking form of the call.
			op.Sys.State |= stSync
			if b.exec(op) {
				b.post(op, -int32(unix.EAGAIN), 0)
			}
			b.retire(op)
			return
		default:
			b.post(op, errRes(err), 0)
			b.retire(op)
			return
		}
	}
	op.Sys.State |= parkBit[d]
	st.list(d).push(op)
	b.index.Add(op)
}

// exec performs op's system call (for multishot ops, until it would block) and
// posts its completions. It returns true when op must wait for readiness; then
// op is unchanged apart from Sys. Otherwise the final completion was posted.
func (b *Backend) exec(op *backend.Op) (wait bool) {
	switch op.Kind {
	case backend.KindNop:
		b.post(op, 0, 0)
	case backend.KindAccept:
		return b.execAccept(op)
	case backend.KindConnect:
		return b.execConnect(op)
	case backend.KindRecv:
		if op.BufferSelect {
			return b.execRecvPool(op)
		}
		n, e := b.readRetry(op.Fd, func() (int, unix.Errno) { return sysRecv(op.Fd, op.Buf, unix.MSG_DONTWAIT) })
		return b.result(op, n, e)
	case backend.KindSend:
		n, e := retry(func() (int, unix.Errno) { return sysSend(op.Fd, op.Buf, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL) })
		return b.result(op, n, e)
	case backend.KindSendZC:
		n, e := retry(func() (int, unix.Errno) { return sysSend(op.Fd, op.Buf, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL) })
		if e == unix.EAGAIN {
			return true
		}
		if e != 0 {
			b.post(op, -int32(e), 0)
			return false
		}
		b.post(op, int32(n), backend.FlagMore)
		b.post(op, 0, backend.FlagNotif)
	case backend.KindSendv, backend.KindSendMsg:
		return b.execSendmsg(op)
	case backend.KindRecvMsg:
		return b.execRecvmsg(op)
	case backend.KindRead, backend.KindWrite:
		return b.execRW(op)
	case backend.KindPoll:
		return b.execPoll(op)
	case backend.KindTimeout:
		b.post(op, -int32(unix.ETIME), 0) // start1 arms positive timeouts
	case backend.KindCancel:
		target := b.index.Lookup(op.Target)
		if target == nil {
			b.post(op, -int32(unix.ENOENT), 0)
			return false
		}
		b.cancel(target)
		b.post(op, 0, 0)
	case backend.KindCancelFd:
		n := b.cancelFd(op.Fd)
		if n == 0 {
			b.post(op, -int32(unix.ENOENT), 0)
		} else {
			b.post(op, int32(n), 0)
		}
	case backend.KindClose:
		b.forgetFd(op.Fd, true)
		b.post(op, errRes(unix.Close(int(op.Fd))), 0)
	case backend.KindShutdown:
		b.post(op, errRes(unix.Shutdown(int(op.Fd), int(op.How))), 0)
	}
	return false
}

// retry runs a system call again while it fails with EINTR.
func retry(call func() (int, unix.Errno)) (int, unix.Errno) {
	for {
		n, e := call()
		if e != unix.EINTR {
			return n, e
		}
	}
}

// markRetries bounds how often readRetry makes one read again.
const markRetries = 8

// readRetry runs a non-blocking read of fd like retry, and also makes it
// again, up to markRetries times, after an EAGAIN while fd sits at TCP's
// urgent mark. A read there fails with EAGAIN whenever the thread has a signal
// pending (tcp_recvmsg_locked stops at the mark "if we have read anything or
// have SIGURG pending", and the test is for any signal), although bytes wait
// behind the mark and no new edge will announce them. The Go runtime signals
// its own threads (preemption, profiling), so a backend that trusted that
// EAGAIN would stall the stream now and then. A true EAGAIN at the mark (the
// urgent byte itself has not arrived) costs at most markRetries reads and
// ioctls more. Only descriptors that reported urgent data (EPOLLPRI) are
// asked.
func (b *Backend) readRetry(fd int32, call func() (int, unix.Errno)) (int, unix.Errno) {
	for tries := 0; ; tries++ {
		n, e := retry(call)
		if e != unix.EAGAIN || tries == markRetries || !b.atUrgentMark(fd) {
			return n, e
		}
	}
}

// atUrgentMark reports whether fd reported urgent data and its next byte is
// the urgent mark (SIOCATMARK).
func (b *Backend) atUrgentMark(fd int32) bool {
	st := b.lookupFd(fd)
	if st == nil || !st.urgent {
		return false
	}
	b.stats.UrgentMarkChecks++
	mark, err := unix.IoctlGetInt(int(fd), unix.SIOCATMARK)
	return err == nil && mark != 0
}

// result posts the final completion of a single-shot call, or asks to wait.
func (b *Backend) result(op *backend.Op, n int, e unix.Errno) bool {
	switch e {
	case 0:
		b.post(op, int32(n), 0)
	case unix.EAGAIN:
		return true
	default:
		b.post(op, -int32(e), 0)
	}
	return false
}

func errRes(err error) int32 {
	if err == nil {
		return 0
	}
	if e, ok := err.(unix.Errno); ok {
		return -int32(e)
	}
	return -int32(unix.EIO)
}

func (b *Backend) execAccept(op *backend.Op) bool {
	for {
		fd, e := sysAccept(op.Fd)
		switch e {
		case 0:
		case unix.EAGAIN:
			return true
		case unix.EINTR, unix.ECONNABORTED:
			continue
		default:
			b.post(op, -int32(e), 0)
			return false
		}
		// A new descriptor number can only be reused after a close the backend
		// did not see: forget anything recorded for it.
		b.forgetFd(int32(fd), false)
		if !op.Multishot {
			b.post(op, int32(fd), 0)
			return false
		}
		b.post(op, int32(fd), backend.FlagMore)
		if b.spend(0) {
			return true // pass used up: the ready list brings it back
		}
	}
}

func (b *Backend) execConnect(op *backend.Op) bool {
	if op.Sys.State&stConnecting == 0 {
		e := sysConnect(op.Fd, op.Addr, min(op.AddrLen, unix.SizeofSockaddrAny))
		switch e {
		case 0:
			b.post(op, 0, 0)
			return false
		case unix.EINPROGRESS, unix.EINTR, unix.EALREADY:
			op.Sys.State |= stConnecting
			return true
		}
		// EAGAIN included: an AF_UNIX listener's backlog is full (or TCP
		// has no local port left). The contract makes that the final
		// result at once, as io_uring does: no EPOLLOUT would announce
		// room in the peer's backlog.
		b.post(op, -int32(e), 0)
		return false
	}
	// Only a writable or failed socket has finished connecting.
	b.pfd[0] = unix.PollFd{Fd: op.Fd, Events: unix.POLLOUT}
	if n, err := unix.Poll(b.pfd[:], 0); err == nil && n == 1 &&
		b.pfd[0].Revents&(unix.POLLOUT|unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) == 0 {
		return true
	}
	soerr, err := unix.GetsockoptInt(int(op.Fd), unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		b.post(op, errRes(err), 0)
	} else {
		b.post(op, -int32(soerr), 0)
	}
	return false
}

// execRecvPool receives into provided buffers: once, or for a multishot recv
// until the socket is drained, the stream ends, the pool runs dry or the
// current read pass is used up (then it returns true with b.yielded set, and
// the caller keeps the descriptor on the ready list).
//
// On a byte stream, once a read fills its buffer the next one spans several
// buffers (up to what is left of the pass) in one recvmsg, posting one
// completion per buffer filled: a 64 KiB message costs one or two system
// calls, not seventeen. A descriptor whose last pass read more than one
// buffer's worth at once starts the next one wide (fdState.wide).
func (b *Backend) execRecvPool(op *backend.Op) bool {
	pool, tag, err := b.streamPool()
	if err != nil {
		b.post(op, -int32(unix.ENOMEM), 0)
		return false
	}
	size := pool.Size()
	wide := false
	if op.Multishot {
		if st := b.lookupFd(op.Fd); st != nil && st.wide {
			wide = true
		}
	}
	for {
		k := 1
		if wide {
			// What is left of the pass, plus one spare buffer: a message that
			// fills the pass exactly still ends in a short read, which proves
			// the socket drained (no EAGAIN probe in the next pass).
			k = min(b.passLeft, (b.bytesLeft+size-1)/size) + 1
		}
		ids := b.wideIDs[:0]
		for len(ids) < k {
			id, ok := pool.Get()
			if !ok {
				break
			}
			ids = append(ids, id)
		}
		if len(ids) == 0 {
			// Empty pool: fail only if there is data (or an end or error) to
			// report; otherwise wait for it. The data stays in the socket.
			_, e := b.readRetry(op.Fd, func() (int, unix.Errno) { return sysRecv(op.Fd, b.peek[:], unix.MSG_DONTWAIT|unix.MSG_PEEK) })
			switch e {
			case unix.EAGAIN:
				return true
			case 0:
				b.post(op, -int32(unix.ENOBUFS), 0)
			default:
				b.post(op, -int32(e), 0)
			}
			return false
		}
		var n int
		var e unix.Errno
		if len(ids) == 1 {
			n, e = b.recv(op.Fd, pool.Buf(ids[0]))
		} else {
			n, e = b.recvv(op.Fd, pool, ids)
		}
		if e != 0 || n == 0 {
			putBack(pool, ids)
			if e == unix.EAGAIN {
				return true
			}
			b.post(op, -int32(e), 0) // n == 0, e == 0: end of stream, Res 0
			return false
		}
		if !op.Multishot {
			b.postBuf(op, n, 0, ids[0]|tag)
			return false
		}
		used := 0
		for left := n; left > 0; used++ {
			m := min(left, size)
			left -= m
			b.postBuf(op, m, backend.FlagMore, ids[used]|tag)
			b.spend(m)
		}
		putBack(pool, ids[used:])
		if n < len(ids)*size {
			wide = false
			if b.shortReadDrains(op.Fd) {
				// Messages bigger than a buffer: start the next pass wide.
				b.fds[op.Fd].wide = n > size
				b.yielded = false
				return true // drained: the next edge brings it back
			}
		} else {
			wide = b.isStream(op.Fd)
		}
		if b.yielded {
			if st := b.lookupFd(op.Fd); st != nil {
				st.wide = wide
			}
			return true
		}
	}
}

// putBack returns unused buffers to pool, last taken first.
func putBack(pool *bufpool.Pool, ids []uint16) {
	for i := len(ids) - 1; i >= 0; i-- {
		pool.Put(ids[i])
	}
}

// recvv is one non-blocking recvmsg(2) into the pool buffers ids, in order,
// retried on EINTR and counted as a recv.
func (b *Backend) recvv(fd int32, pool *bufpool.Pool, ids []uint16) (int, unix.Errno) {
	for i, id := range ids {
		p := pool.Buf(id)
		b.wideIov[i] = unix.Iovec{Base: &p[0], Len: uint64(len(p))}
	}
	b.msg = unix.Msghdr{Iov: &b.wideIov[0]}
	b.msg.SetIovlen(len(ids))
	for tries := 0; ; {
		b.calls.recv++
		n, e := sysRecvmsg(fd, &b.msg, unix.MSG_DONTWAIT)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			b.calls.recvAgain++
			if tries < markRetries && b.atUrgentMark(fd) {
				tries++
				continue // see readRetry
			}
		}
		b.msg = unix.Msghdr{}
		return n, e
	}
}

// recv is a non-blocking recv(2) into p, retried on EINTR and counted.
func (b *Backend) recv(fd int32, p []byte) (int, unix.Errno) {
	for tries := 0; ; {
		b.calls.recv++
		n, e := sysRecv(fd, p, unix.MSG_DONTWAIT)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			b.calls.recvAgain++
			if tries < markRetries && b.atUrgentMark(fd) {
				tries++
				continue // see readRetry
			}
		}
		return n, e
	}
}

// shortReadDrains reports whether a recv on fd that returned fewer bytes than
// it asked for has left the socket empty, so that reading on until EAGAIN
// would only cost a wasted system call (gnet and Go's net read once per
// readiness too). That holds for a byte stream, TCP or AF_UNIX SOCK_STREAM:
// recv(2) stops short only when the receive queue is empty, and any byte (or
// end of stream) arriving later raises a new edge. Two exceptions read on to
// EAGAIN: datagram and record sockets (a recv returns one message), and a
// stream on which an event reported end of stream, hang-up, error or urgent
// data (fdState.edgy), because the short read may have consumed the edge of
// an EOF or stopped at the urgent mark. The socket type is learnt once per
// descriptor with getsockopt (one call for TCP, three for AF_UNIX).
func (b *Backend) shortReadDrains(fd int32) bool {
	return b.isStream(fd) && !b.fds[fd].edgy
}

// isStream reports whether fd, on which a recv just succeeded, is a byte
// stream (TCP or AF_UNIX SOCK_STREAM), learning it once per descriptor.
func (b *Backend) isStream(fd int32) bool {
	st := b.fdState(fd) // fd is open: the recv just succeeded on it
	if st.sock == sockUnknown {
		st.sock = sockOther
		fd := int(fd)
		proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
		switch {
		case err != nil:
		case proto == unix.IPPROTO_TCP: // only ever SOCK_STREAM
			st.sock = sockStream
		case proto == 0:
			dom, err1 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
			typ, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
			if err1 == nil && err2 == nil && dom == unix.AF_UNIX && typ == unix.SOCK_STREAM {
				st.sock = sockStream
			}
		}
	}
	return st.sock == sockStream
}

// setIov points b.msg at op's buffers (Bufs when set, else Buf).
func (b *Backend) setIov(op *backend.Op, p []byte) {
	b.iov = b.iov[:0]
	if op.Bufs != nil {
		for _, q := range op.Bufs {
			if len(q) > 0 {
				b.iov = append(b.iov, unix.Iovec{Base: &q[0], Len: uint64(len(q))})
			}
		}
	} else if len(p) > 0 {
		b.iov = append(b.iov, unix.Iovec{Base: &p[0], Len: uint64(len(p))})
	}
	b.msg = unix.Msghdr{}
	if len(b.iov) > 0 {
		b.msg.Iov = &b.iov[0]
		b.msg.SetIovlen(len(b.iov))
	}
}

func (b *Backend) execSendmsg(op *backend.Op) bool {
	b.setIov(op, op.Buf)
	msghdr.Prepare(&b.msg, op)
	n, e := retry(func() (int, unix.Errno) { return sysSendmsg(op.Fd, &b.msg, unix.MSG_DONTWAIT|msghdr.SendFlags) })
	b.msg = unix.Msghdr{}
	return b.result(op, n, e)
}

// execRecvmsgMulti emulates io_uring's multishot recvmsg: one datagram per
// pool buffer, laid out as msghdr.PrepareMultishot says, until the socket is
// drained, the pool runs dry (-ENOBUFS, the data stays queued), an error, or
// the read pass is used up (true with b.yielded set, as execRecvPool).
func (b *Backend) execRecvmsgMulti(op *backend.Op) bool {
	room, nl, cl := backend.MultishotRecvMsgRoom(op, b.cfg.BufferSize)
	pool, err := b.smallPool()
	if err != nil {
		b.post(op, -int32(unix.ENOMEM), 0)
		return false
	}
	for {
		id, ok := pool.Get()
		if !ok {
			_, e := b.readRetry(op.Fd, func() (int, unix.Errno) { return sysRecv(op.Fd, b.peek[:], unix.MSG_DONTWAIT|unix.MSG_PEEK) })
			switch e {
			case unix.EAGAIN:
				return true
			case 0:
				b.post(op, -int32(unix.ENOBUFS), 0)
			default:
				b.post(op, -int32(e), 0)
			}
			return false
		}
		buf := pool.Buf(id)
		msghdr.PrepareMultishot(&b.msg, &b.iov1, op, buf, room, nl, cl)
		n, e := b.readRetry(op.Fd, func() (int, unix.Errno) { return sysRecvmsg(op.Fd, &b.msg, unix.MSG_DONTWAIT|msghdr.RecvFlags) })
		if e != 0 {
			b.msg = unix.Msghdr{}
			pool.Put(id)
			if e == unix.EAGAIN {
				return true
			}
			b.post(op, -int32(e), 0)
			return false
		}
		b.cq = append(b.cq, backend.Completion{Token: op.Token, BufID: id})
		keep := msghdr.ResultMultishot(&b.msg, op, buf, room, nl, cl, n, &b.cq[len(b.cq)-1])
		b.msg = unix.Msghdr{}
		if !keep {
			// An empty datagram: its name and control data are in op's
			// memory until the next Wait, so end the pass here.
			pool.Put(id)
			b.deferred = append(b.deferred, op.Fd)
			return true
		}
		if b.spend(n) {
			return true
		}
	}
}

func (b *Backend) execRecvmsg(op *backend.Op) bool {
	if op.Multishot {
		return b.execRecvmsgMulti(op)
	}
	p := op.Buf
	id, pooled := uint16(0), false
	var pool *bufpool.Pool
	if op.BufferSelect {
		var err error
		if pool, err = b.smallPool(); err != nil {
			b.post(op, -int32(unix.ENOMEM), 0)
			return false
		}
		if id, pooled = pool.Get(); !pooled {
			_, e := b.readRetry(op.Fd, func() (int, unix.Errno) { return sysRecv(op.Fd, b.peek[:], unix.MSG_DONTWAIT|unix.MSG_PEEK) })
			if e == unix.EAGAIN {
				return true
			}
			if e == 0 {
				e = unix.ENOBUFS
			}
			b.post(op, -int32(e), 0)
			return false
		}
		p = pool.Buf(id)
	}
	saved := op.Bufs
	op.Bufs = nil
	b.setIov(op, p)
	op.Bufs = saved
	msghdr.Prepare(&b.msg, op)
	n, e := b.readRetry(op.Fd, func() (int, unix.Errno) { return sysRecvmsg(op.Fd, &b.msg, unix.MSG_DONTWAIT|msghdr.RecvFlags) })
	if e != 0 {
		b.msg = unix.Msghdr{}
		if pooled {
			pool.Put(id)
		}
		return b.result(op, 0, e)
	}
	if pooled && n > 0 {
		b.postBuf(op, n, 0, id)
	} else {
		if pooled {
			pool.Put(id) // nothing received into it (an empty datagram, end of stream)
		}
		b.post(op, int32(n), 0)
	}
	msghdr.Result(&b.msg, op, &b.cq[len(b.cq)-1])
	b.msg = unix.Msghdr{}
	return false
}

// execRW reads or writes a pipe or file at its current offset without
// blocking: preadv2/pwritev2 with RWF_NOWAIT, or plain read/write when the
// descriptor does not support that (or cannot be polled at all: stSync).
func (b *Backend) execRW(op *backend.Op) bool {
	write := op.Kind == backend.KindWrite
	if op.Sys.State&stSync != 0 {
		n, e := retry(func() (int, unix.Errno) { return sysRW(write, op.Fd, op.Buf) })
		return b.result(op, n, e)
	}
	st := b.lookupFd(op.Fd)
	if st == nil || !st.noNowait {
		b.setIov(op, op.Buf)
		iov, cnt := b.msg.Iov, int(b.msg.Iovlen)
		n, e := retry(func() (int, unix.Errno) { return sysRWv2(write, op.Fd, iov, cnt, unix.RWF_NOWAIT) })
		b.msg = unix.Msghdr{}
		if e != unix.EOPNOTSUPP {
			return b.result(op, n, e)
		}
		b.fdState(op.Fd).noNowait = true
	}
	rw := func() (int, unix.Errno) { return sysRW(write, op.Fd, op.Buf) }
	if write {
		n, e := retry(rw)
		return b.result(op, n, e)
	}
	n, e := b.readRetry(op.Fd, rw) // read(2) on a socket
	return b.result(op, n, e)
}

// execPoll completes a single-shot poll whose events are already pending (like
// io_uring, which checks before arming); otherwise the op waits on the poll
// list. A descriptor epoll refuses (a regular file) is always ready.
func (b *Backend) execPoll(op *backend.Op) bool {
	sync := op.Sys.State&stSync != 0
	if op.Multishot && !sync {
		// Armed by park, whose epoll_ctl makes epoll report the current
		// readiness once; later edges each post one more completion.
		return true
	}
	b.pfd[0] = unix.PollFd{Fd: op.Fd, Events: int16(op.Events)}
	n, err := unix.Poll(b.pfd[:], 0)
	if err != nil && err != unix.EINTR {
		b.post(op, errRes(err), 0)
		return false
	}
	if n == 0 {
		return true
	}
	re := uint32(uint16(b.pfd[0].Revents))
	if re&unix.POLLNVAL != 0 {
		b.post(op, -int32(unix.EBADF), 0)
		return false
	}
	b.post(op, int32(re), 0)
	return false
}

// cancel ends a waiting op with -ECANCELED.
func (b *Backend) cancel(op *backend.Op) {
	if op.Sys.State&stTimer != 0 {
		for i := range b.timers {
			if b.timers[i].op == op {
				b.timerRemove(i)
				break
			}
		}
	} else if st := b.lookupFd(op.Fd); st != nil {
		for _, d := range [...]direction{dirRd, dirWr, dirPoll} {
			if op.Sys.State&parkBit[d] != 0 {
				st.list(d).remove(op)
			}
		}
	}
	b.post(op, -int32(unix.ECANCELED), 0)
	b.retire(op)
}

// cancelFd cancels every op waiting on fd and returns how many.
func (b *Backend) cancelFd(fd int32) int {
	st := b.lookupFd(fd)
	if st == nil {
		return 0
	}
	n := 0
	for _, l := range [...]*opList{&st.rd, &st.wr, &st.poll} {
		for op := l.head; op != nil; op = l.head {
			l.head = op.Sys.Next
			if l.head == nil {
				l.tail = nil
			}
			b.post(op, -int32(unix.ECANCELED), 0)
			b.retire(op)
			n++
		}
	}
	return n
}

// forgetFd drops what the backend knows of fd (it is being closed, or its
// number was reused). Ops still waiting on it can never complete from events
// any more, so they end with -ECANCELED.
func (b *Backend) forgetFd(fd int32, deregister bool) {
	st := b.lookupFd(fd)
	if st == nil {
		return
	}
	b.cancelFd(fd)
	if st.registered && deregister {
		_ = unix.EpollCtl(b.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	}
	st.reset()
	st.gen++
	if st.gen == -1 {
		st.gen = 0 // -1 marks the eventfd
	}
}
