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
// Nothing in this package is goroutine-safe unless its comment says so: a Ring
// and its BufRings belong to one goroutine. The package knows nothing of gyre's
// reactor; it never starts goroutines or calls back.
package uring
