package uring

import (
	"time"
	"unsafe"

	"github.com/gyre-io/gyre/reactor/backend"
	ring "github.com/gyre-io/gyre/uring"
)

// Options forces fallback paths for tests.
type Options struct {
	NoMultishot bool
	NoBufRing   bool
	NoBufInc    bool // no incrementally consumed ring for stream recvs
	NoSendZC    bool
	Setup       ring.SetupMode
	ParkAll     bool // every op goes through the pending list
	NoRegRing   bool // no registered ring descriptor
	KeepSQArray bool // keep the SQ index array
	NoLargeInc  bool // stream recvs keep Config's buffer size (no large inc buffers)
}

// NewWithOptions is New with fallbacks forced (GYRE_URING_DISABLE ignored).
func NewWithOptions(cfg backend.Config, o Options) (*Backend, error) {
	return newBackend(cfg, options{noMultishot: o.NoMultishot, noBufRing: o.NoBufRing, noBufInc: o.NoBufInc, noSendZC: o.NoSendZC,
		setup: o.Setup, parkAll: o.ParkAll, noRegRing: o.NoRegRing, keepSQArray: o.KeepSQArray, noLargeInc: o.NoLargeInc})
}

// DisableFromEnv is the options GYRE_URING_DISABLE gives.
func DisableFromEnv() Options {
	o := options{}.fromEnv()
	return Options{NoRegRing: o.noRegRing, KeepSQArray: o.keepSQArray, NoLargeInc: o.noLargeInc}
}

// Inflight is the number of ops without their final completion.
func (b *Backend) Inflight() int { return b.inflight }

// Tracked is the number of ops in the completion-work table.
func (b *Backend) Tracked() int { return len(b.track) }

// InjectOverflow makes the ring's CQ overflow counter appear n higher.
func InjectOverflow(b *Backend, n uint32) { b.overflowAdd += n }

// SetCloseLimit sets how long Close waits for final completions.
func SetCloseLimit(b *Backend, d time.Duration) { b.closeLimit = d }

// SetWakeWrite replaces the eventfd write of Wake (nil: the real one).
func SetWakeWrite(b *Backend, f func(fd int, p []byte) (int, error)) { b.wk.SetWrite(f) }

// WakePending reports whether Wake believes a wake-up is on its way.
func WakePending(b *Backend) bool { return b.wk.Pending() }

// BufRingAddr is the address of the first provided buffer stream recvs use
// (the incrementally consumed ring's, if any), or 0 without a buffer ring.
func BufRingAddr(b *Backend) uintptr {
	br := b.br
	if b.inc != nil {
		br = b.inc
	}
	if br == nil {
		return 0
	}
	return uintptr(unsafe.Pointer(&br.Buffer(0)[0]))
}

// ClassicRing reports whether the classic buffer ring (recvmsg's) is mapped.
func ClassicRing(b *Backend) bool { return b.br != nil }

// LastBatch is the number of completions the next blocking Wait asks the
// kernel for (before the cap and the minimum of one).
func LastBatch(b *Backend) uint32 { return b.lastBatch }

// Incremental reports whether stream recvs use the incrementally consumed
// ring.
func Incremental(b *Backend) bool { return b.inc != nil }

// RecvLimit is the total limit per arming and the per-receive cap of stream
// recvs on large inc buffers (0, 0 without them).
func RecvLimit(b *Backend) (total, perRecv uint32) { return b.recvTotal, b.recvCap }
