package uring

import "syscall"

// InjectSetupError makes New fail in io_uring_setup with errno (test hook).
func InjectSetupError(o *Options, errno syscall.Errno) { o.setupErr = errno }

// Layout facts checked against the kernel UAPI sizes.
var UAPIWantSizes = []uintptr{sizeofSQE, sizeofCQE, sizeofIOURingParams, sizeofGeteventsArg,
	sizeofIOURingBufReg, sizeofBufRingEntry, sizeofIOURingProbeHead}

// UAPISizes returns unsafe.Sizeof of the Go mirrors, in the order of the
// constants above.
func UAPISizes() []uintptr { return uapiSizes() }

// EINTRCount is how many interrupted io_uring_enter calls r retried.
func EINTRCount(r *Ring) uint64 { return r.eintr }

// CQOverflowFlagged reports whether the kernel flagged overflowed CQEs
// (IORING_SQ_CQ_OVERFLOW) that a GETEVENTS enter will flush.
func CQOverflowFlagged(r *Ring) bool { return *r.sqFlags&sqCQOverflow != 0 }
