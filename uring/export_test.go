package uring

import "syscall"

// InjectSetupError makes New fail in io_uring_setup with errno (test hook).
func InjectSetupError(o *Options, errno syscall.Errno) { o.setupErr = errno }

// Layout facts checked against the kernel UAPI sizes.
var UAPIWantSizes = []uintptr{sizeofSQE, sizeofCQE, sizeofIOURingParams, sizeofGeteventsArg,
	sizeofIOURingBufReg, sizeofBufRingEntry, sizeofIOURingProbeHead, sizeofRsrcUpdate}

// UAPISizes returns unsafe.Sizeof of the Go mirrors, in the order of the
// constants above.
func UAPISizes() []uintptr { return uapiSizes() }

// EINTRCount is how many interrupted io_uring_enter calls r retried.
func EINTRCount(r *Ring) uint64 { return r.eintr }

// CQOverflowFlagged reports whether the kernel flagged overflowed CQEs
// (IORING_SQ_CQ_OVERFLOW) that a GETEVENTS enter will flush.
func CQOverflowFlagged(r *Ring) bool { return *r.sqFlags&sqCQOverflow != 0 }

// RejectSetupFlags makes io_uring_setup fail with EINVAL whenever it is
// asked for any of flags, as a kernel that does not know them would.
func RejectSetupFlags(o *Options, flags uint32) { o.rejectSetup |= flags }

// SetupNoSQArray is IORING_SETUP_NO_SQARRAY.
const SetupNoSQArray = setupNoSQArray

// InjectRegisterRingError makes IORING_REGISTER_RING_FDS fail with errno.
func InjectRegisterRingError(o *Options, errno syscall.Errno) { o.regRingErr = errno }

// RegisteredSlot is the ring's registered slot, or -1.
func RegisteredSlot(r *Ring) int { return r.regSlot }
