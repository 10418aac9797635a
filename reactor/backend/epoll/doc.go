// Package epoll is the epoll implementation of the gyre backend contract
// (package backend), the always-available fallback to io_uring.
//
// It emulates io_uring's completions on edge-triggered epoll: Wait first runs
// the system call of every queued op; an op that would block (EAGAIN) is parked
// on its descriptor's read, write or poll list, in FIFO order, and is retried
// when epoll reports the descriptor ready. A descriptor joins the epoll set
// (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLPRI|EPOLLET, one epoll_ctl ADD) the first time an op
// has to wait on it, and leaves it on KindClose.
//
// A multishot recv into provided buffers on a byte stream (TCP, AF_UNIX
// SOCK_STREAM) stops at a short read rather than probing on to EAGAIN, as
// gnet and Go's net do and as io_uring does with its msg_inq hint: the
// receive queue was empty, and later bytes raise a new edge. It reads on to
// EAGAIN on datagram and record sockets, and once an event has reported end
// of stream, hang-up, error or urgent data on the descriptor (a short read
// may have consumed that edge, or stopped at the urgent mark). That saves one
// recv system call per message. Once a read on a byte stream fills its
// buffer, the next reads span several provided buffers (what is left of the
// read pass, plus one spare) in one recvmsg, still posting one completion per
// buffer: a 64 KiB message into 4 KiB buffers is one or two system calls, not
// seventeen. What the backend learns of a descriptor (socket type, hang-up
// seen, wide reads) is forgotten when it is closed with KindClose or
// registered anew.
//
// A read at TCP's urgent mark fails with EAGAIN whenever the thread has a
// signal pending (tcp_recvmsg_locked), though bytes wait behind the mark and
// no new edge will announce them; the Go runtime signals its own threads. On
// a descriptor that has reported urgent data (EPOLLPRI), such an EAGAIN is
// checked with SIOCATMARK and the read made again, up to 8 times
// (Stats.UrgentMarkChecks counts the checks).
//
// Read readiness is served fairly and lazily. An edge on a descriptor with
// parked read-side ops puts it on a ready list; Wait serves that list
// round-robin, one bounded pass per descriptor (at most 16 completions, and no
// more than about 64 KiB), and only while fewer than len(out) completions are
// queued, so the backend never reads far ahead of what the caller consumes. A
// descriptor whose pass ends before EAGAIN goes back to the tail of the list,
// since epoll may report no new edge for it; only EAGAIN, or no op left to
// run, takes it off. One busy connection therefore cannot fill the completion
// queue, nor hold the buffer pool, ahead of the others.
//
// Emulated, like io_uring would do it natively:
//   - multishot accept and recv run their call until it would block (or their
//     pass is used up), posting a FlagMore completion for each result, and
//     stay parked;
//   - provided buffers are a pool of Config.BufferCount buffers of
//     Config.BufferSize bytes in one anonymous mapping; an empty pool ends a
//     BufferSelect recv with -ENOBUFS only when the socket has data for it
//     (checked with MSG_PEEK), so no byte is lost. Stream receives (KindRecv)
//     take 64 KiB buffers instead where backend.Config.LargeRecv regroups the
//     same memory (64 × 64 KiB by default; Features.RecvBuffers and
//     RecvBufferSize; their BufIDs have bit 15 set), so a 64 KiB message is
//     one read and one completion; datagrams and recvmsg keep BufferSize
//     buffers, mapped at their first use;
//   - send_zc is a copying send followed by a FlagNotif completion;
//   - sendmsg and recvmsg (control messages included, recvmsg with
//     MSG_CMSG_CLOEXEC) build their msghdr in backend scratch for the
//     duration of the call, through the package shared with the io_uring
//     backend (reactor/backend/internal/msghdr), so results are identical;
//   - timeouts live in a heap inside the backend and bound epoll_pwait2;
//   - cancellation ends a parked op (or timeout) with -ECANCELED at once.
//
// Descriptors stay the caller's: the backend closes one only for KindClose.
// Sockets must be non-blocking (accept returns non-blocking sockets); pipes
// and files may be blocking, since read and write use RWF_NOWAIT. Closing a
// descriptor directly rather than with KindClose is safe once nothing waits on
// it: when an op has to wait on an idle descriptor the backend re-arms it with
// epoll_ctl(MOD), which also notices a closed (and perhaps reused) number and
// registers the new file. That is one extra system call per wait from idle;
// ops that stay parked (multishot recv and accept) do not pay it.
package epoll
