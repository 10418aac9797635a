// Package uring is gyre's io_uring binding, written on golang.org/x/sys/unix
// with no cgo and no go:linkname.
//
// It sets up a ring (New), hands out submission queue entries (GetSQE,
// AcquireSQE) that one Prep method per opcode fills without allocating, submits
// and waits (Submit, SubmitAndWait with a timeout through IORING_ENTER_EXT_ARG,
// EINTR retried), and reaps completions in batches (PeekBatch + CQAdvance, or
// Reap). Provided-buffer rings (BufRing) live in memory the package maps
// itself. Features reports what the kernel can do, from IORING_REGISTER_PROBE
// plus try-and-see detection at New.
//
// Typical use, on one goroutine locked to its OS thread:
//
//	r, err := uring.New(uring.Options{Entries: 256})
//	if errors.Is(err, uring.ErrUnavailable) { /* fall back to epoll */ }
//	sqe := r.GetSQE()          // nil: queue full, Submit and retry
//	sqe.PrepRecv(fd, buf, 0)
//	sqe.UserData = token
//	r.SubmitAndWait(1, time.Second)
//	n := r.Reap(cqes)          // cqes[:n] are copies, safe to keep
//
// Two set-up levers trim the kernel's work per submission:
//
//   - No SQ index array (IORING_SETUP_NO_SQARRAY, Linux 6.6+): the kernel
//     takes SQE i from slot i directly instead of through an index array.
//     Used by default (Options.KeepSQArray turns it off); on an older kernel
//     io_uring_setup answers EINVAL and New retries with the array, in the
//     same task-run mode. Features.NoSQArray tells which.
//   - A registered ring descriptor (Options.RegisterRing; Linux 5.18+): the
//     ring is entered by a slot in the calling thread's table of registered
//     rings (IORING_ENTER_REGISTERED_RING) instead of by descriptor, saving
//     the lookup and reference count of the descriptor on every enter. The
//     registration is the thread's, so it is opt-in for owners whose
//     goroutine stays locked to one thread; slots are unique in the process,
//     so an enter from the wrong thread fails (ErrWrongThread) instead of
//     reaching another ring. Register calls still name the descriptor
//     (IORING_REGISTER_USE_REGISTERED_RING would save the same lookup on a
//     path taken only at set-up).
//
// Nothing in this package is goroutine-safe unless its comment says so: a Ring
// and its BufRings belong to one goroutine. The package knows nothing of gyre's
// reactor; it never starts goroutines or calls back.
//
// # Hardening
//
// What the ring may make the kernel do is kept small, on purpose:
//
//   - No SQPOLL and no IOPOLL: New never sets IORING_SETUP_SQPOLL or
//     IORING_SETUP_IOPOLL (the flags are not even defined here), so no
//     kernel thread polls the submission queue on the process's behalf and
//     every submission is an io_uring_enter made by the ring's own thread.
//     Features.SetupFlags shows the flags actually used.
//   - No kernel-allocated buffer rings: NewBufRing registers provided-buffer
//     rings (IORING_REGISTER_PBUF_RING) over memory this package maps itself,
//     never in IOU_PBUF_RING_MMAP mode, so the buffers' lifetime is the
//     package's (unregistered, then unmapped, at Close) and no kernel memory
//     is mapped into the process beyond the SQ/CQ rings.
//   - No IORING_REGISTER_RESTRICTIONS, by decision. Restricting the ring to
//     gyre's opcodes would need the ring created disabled
//     (IORING_SETUP_R_DISABLED, Linux 5.10+), the allow-list registered, then
//     IORING_REGISTER_ENABLE_RINGS, with a probe and a fallback for kernels
//     that lack them. The benefit is marginal: restrictions bind only that
//     one ring, and a process that has been taken over can simply create a
//     new, unrestricted ring (io_uring_setup is not restricted by them), while
//     the ring can only do what the process could already do with ordinary
//     system calls under the same credentials. Restrictions are meant for a
//     ring handed to a less trusted party (a VM guest, a sandboxed helper);
//     gyre's ring never leaves the process. The cost is real: every opcode
//     and register operation gyre adds later (a new Prep method, a buffer
//     ring registered lazily, a probe) would have to be added to the list
//     too, or it fails at run time with EACCES, in production rather than at
//     build time. The controls that do bound io_uring are the system's:
//     kernel.io_uring_disabled (1: only privileged processes and members of
//     kernel.io_uring_group; 2: nobody) and seccomp, and gyre falls back to epoll when they refuse it
//     (reactor.Auto; CI runs that fallback with io_uring_disabled=2).
//
// Input from peers never reaches this package as anything but bytes in a
// buffer: parsing it is the protocols' job, and their parsers are fuzzed
// (never panic, same result however the input is split, limits enforced;
// see the fuzz directory and the FuzzX targets beside the code they test).
package uring
