// Package uring is gyre's io_uring implementation of backend.Backend, built on
// the binding in github.com/gyre-io/gyre/uring.
//
// # How ops map to the ring
//
// Every op becomes one submission queue entry whose user_data is the op's
// backend.Token, so a KindCancel names its target by the token and the
// completion comes back carrying it. Tokens with generation 0 and a slot of
// 0xfffffff0 or above are reserved for the backend's internal requests (the
// wake-up read on its eventfd, the cancel-everything request of Close); the
// loop's generations start at 1 so it never makes them, and Submit rejects an
// op whose Token (or cancel Target) is reserved.
//
//   - Multishot accept, recv (with provided buffers) and poll run natively when
//     the kernel has them; otherwise the backend re-arms a single-shot request
//     after each completion and delivers that completion with FlagMore.
//   - Provided buffers are one buffer ring (group 0) of Config.BufferCount
//     buffers of Config.BufferSize bytes in memory the binding maps. Without
//     buffer rings, a BufferSelect recv takes a buffer from a backend-owned pool
//     when it is armed and receives into it; an empty pool completes it with
//     -ENOBUFS, exactly as the kernel would.
//   - Where the kernel consumes buffer rings incrementally (IOU_PBUF_RING_INC,
//     Linux 6.12+), stream recvs (KindRecv) use such a ring instead (group 1,
//     the same count and size): a receive takes only the bytes it needs from
//     the head buffer, so small messages share a buffer and BufferSize can be
//     large at no memory cost per message. Each completion still gets a BufID
//     of its own (a handle with bit 15 set; at most 32768 unreleased at once);
//     a buffer goes back to the kernel when the kernel is done with it and all
//     its completions are released. recvmsg keeps the classic ring (a datagram
//     must not be cut at the room a head buffer has left), mapped at the first
//     recvmsg with BufferSelect.
//   - Where the kernel can also end a multishot recv after a total number of
//     bytes (Linux 6.17+, uring.Features.MultishotRecvTotal), the inc ring
//     regroups the same memory into 64 KiB buffers (backend.Config.LargeRecv;
//     64 × 64 KiB by default, in Features.RecvBuffers and RecvBufferSize), so
//     a 64 KiB message is one receive and one completion instead of sixteen.
//     Each arming then ends after 32 × BufferSize bytes (the bound the
//     kernel's 32 receives per invocation give BufferSize buffers) and the
//     backend re-arms it behind the ring's other work: one busy socket takes
//     no more per turn than before. The consumer sees one multishot recv; a
//     cancel is never undone by a re-arm. GYRE_URING_DISABLE=largeinc keeps
//     BufferSize buffers (measurement).
//   - TCP urgent data: a recv at the urgent mark fails with EAGAIN whenever
//     the thread has a signal pending, though bytes follow (Go signals its
//     own threads). A stream recv whose last completion carried
//     FlagSockNonEmpty and that posted nothing after it is checked with
//     SIOCATMARK once the CQ is drained and, at the mark, woken again
//     (mark_linux.go; Stats.UrgentMarkChecks counts the checks). A recv that
//     reaches the mark after a wake-up instead and meets a signal there still
//     waits for the next bytes.
//   - A blocking Wait after a batch asks the kernel for as many completions as
//     the batch had ops (not CQEs: one multishot recv's pass posts a CQE per
//     buffer but wakes a DEFER_TASKRUN waiter once), within Config.BatchWait.
//   - KindSendZC uses IORING_OP_SEND_ZC when the kernel has it (a result with
//     FlagMore, then a final FlagNotif completion). Without it, or when the
//     socket does not support zero copy (EOPNOTSUPP, e.g. AF_UNIX), the op is
//     redone as a copying send followed by a synthetic FlagNotif completion.
//   - Sendv, SendMsg and RecvMsg point the kernel at Op.Sys.Msg, which lives in
//     the Op and so stays put while it is in flight (recvmsg writes the name
//     length, control length and flags back into it); its name and control
//     fields point at Op.Addr and Op.Control, which the Op keeps reachable
//     until the final completion (the kernel reads a sendmsg's control data,
//     and writes a recvmsg's, when the request runs, not at submission).
//     RecvMsg passes MSG_CMSG_CLOEXEC. The msghdr fields and the results are
//     set by the package shared with the epoll backend
//     (reactor/backend/internal/msghdr). Their iovec arrays come from a backend
//     arena reused once the kernel has taken the SQEs: the kernel copies them at
//     submission (IORING_FEAT_SUBMIT_STABLE), so callers may rebuild an Op from
//     scratch each time without allocating. Op.Sys.Iov is used only for an op
//     with more iovecs than the arena holds.
//   - KindTimeout is IORING_OP_TIMEOUT on Op.Sys.Ts; KindCancelFd is
//     ASYNC_CANCEL with CANCEL_FD|CANCEL_ALL.
//
// The ring is set up with SINGLE_ISSUER|DEFER_TASKRUN where the kernel allows
// (then COOP_TASKRUN, then no flags): New must run on the OS thread that will
// call Submit, Wait and Close (the loop locks its goroutine to it). That
// thread also registers the ring descriptor (IORING_REGISTER_RING_FDS, 5.18+)
// so every io_uring_enter names the ring by its registered slot, and the ring
// has no SQ index array where the kernel allows (IORING_SETUP_NO_SQARRAY,
// 6.6+); each falls back by itself on older kernels, RingFeatures reports
// both, and GYRE_URING_DISABLE=regring,nosqarray turns them off (for
// measurement). IOSQE_CQE_SKIP_SUCCESS is not used: every op the loop
// submits owes it a final completion (the contract), sends need their byte
// counts, the wake-up read needs its completion to re-arm, and Close's
// cancel-all runs once per backend (nothing to gain). Wake writes
// an eventfd that the backend keeps a read armed on, so any goroutine may call
// it without touching the ring.
//
// The kernel needs Linux 5.19 or later (buffer rings, cancel by descriptor,
// IORING_OP_SOCKET as the version marker); New reports older kernels as
// unavailable (errors.Is(err, uring.ErrUnavailable) for the binding's
// ErrUnavailable), so the loop falls back to epoll.
package uring
