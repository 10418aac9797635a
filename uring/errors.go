package uring

import "errors"

// ErrUnavailable is matched (errors.Is) by the error New returns when io_uring
// cannot be used at all: the kernel lacks it (ENOSYS) or is too old, it is
// disabled (sysctl kernel.io_uring_disabled, seccomp: EPERM), or the ring cannot
// be set up (ENOMEM, EINVAL). The same error also wraps the syscall.Errno. A
// caller falls back to another backend on it.
var ErrUnavailable = errors.New("uring: io_uring unavailable")

// ErrClosed is returned by methods of a closed Ring or BufRing.
var ErrClosed = errors.New("uring: ring closed")

// ErrSQFull is returned by AcquireSQE when the submission queue stays full even
// after submitting: the kernel did not take the queued entries (usually because
// the completion queue must be reaped first).
var ErrSQFull = errors.New("uring: submission queue full")

// ErrWrongThread is returned (wrapping EEXIST) when a ring set up with
// SINGLE_ISSUER is entered from an OS thread other than the one that created it.
var ErrWrongThread = errors.New("uring: ring used from another OS thread")

// ErrBufRing is returned for an invalid provided-buffer ring request (size not a
// power of two, too large, group in use).
var ErrBufRing = errors.New("uring: invalid buffer ring")
