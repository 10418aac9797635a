package uring

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BufRing is a provided-buffer ring (IORING_REGISTER_PBUF_RING) registered as one
// buffer group. Both the ring of buffer descriptors and the buffers themselves
// live in memory this package maps (not the kernel-allocated
// IOU_PBUF_RING_MMAP mode), outside the Go heap.
//
// Buffer IDs run from 0 to Count()-1; buffer i is Buffer(i). New rings start
// with every buffer handed to the kernel. A receive that used a buffer reports
// its ID in the CQE (CQE.BufferID); the buffer then belongs to the caller until
// it is given back with Recycle (or Add + Advance).
//
// A BufRing belongs to its Ring's goroutine and is not goroutine-safe.
type BufRing struct {
	ring    *Ring
	group   uint16
	entries uint32 // ring slots, a power of two
	mask    uint16
	size    int // bytes per buffer

	mem     unsafe.Pointer // descriptor ring
	memSize uintptr
	bufs    unsafe.Pointer // buffer memory
	bufSize uintptr

	slots []bufRingEntry
	tail  uint16 // published tail (ours)
	open  bool
	inc   bool // incrementally consumed (IOU_PBUF_RING_INC)
}

// NewBufRing maps count buffers of size bytes each plus a descriptor ring,
// registers them as buffer group group and hands every buffer to the kernel.
// count must be a power of two no larger than 32768; size must be positive.
// It fails with ErrBufRing for bad sizes, and with the errno from the kernel
// (EINVAL on kernels without buffer rings, EEXIST for a group in use).
func (r *Ring) NewBufRing(group uint16, count, size int) (*BufRing, error) {
	return r.newBufRing(group, count, size, 0)
}

// NewBufRingIncremental is NewBufRing for a ring the kernel consumes
// incrementally (IOU_PBUF_RING_INC, Linux 6.12+): a receive takes only the
// bytes it needs from the buffer at the head, and the next receive continues
// in the same buffer where the last one's data ended. A CQE whose buffer the
// kernel will fill further carries CQEFBufMore; the buffer is the caller's
// again only after a CQE for it without CQEFBufMore (and only then may it be
// recycled). A CQE's data therefore starts at the sum of the earlier CQE
// results for that buffer since it was last added, not at its start. Meant for
// stream receives: a datagram would be truncated at whatever room is left in
// the head buffer. Kernels without it fail with EINVAL.
func (r *Ring) NewBufRingIncremental(group uint16, count, size int) (*BufRing, error) {
	return r.newBufRing(group, count, size, pbufRingInc)
}

// Incremental reports whether the ring is consumed incrementally.
func (b *BufRing) Incremental() bool { return b.inc }

func (r *Ring) newBufRing(group uint16, count, size int, regFlags uint16) (*BufRing, error) {
	if r.closed {
		return nil, ErrClosed
	}
	if count <= 0 || count > maxBufRingEntries || count&(count-1) != 0 || size <= 0 || size > 1<<30 {
		return nil, fmt.Errorf("%w: count %d (power of two ≤ 32768), size %d", ErrBufRing, count, size)
	}
	page := uintptr(unix.Getpagesize())
	round := func(n uintptr) uintptr { return (n + page - 1) &^ (page - 1) }
	b := &BufRing{ring: r, group: group, entries: uint32(count), mask: uint16(count - 1), size: size, inc: regFlags&pbufRingInc != 0}
	b.memSize = round(uintptr(count) * sizeofBufRingEntry)
	b.bufSize = round(uintptr(count) * uintptr(size))
	const prot, flags = unix.PROT_READ | unix.PROT_WRITE, unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_POPULATE
	var err error
	if b.mem, err = unix.MmapPtr(-1, 0, nil, b.memSize, prot, flags); err != nil {
		return nil, fmt.Errorf("uring: mapping buffer ring: %w", err)
	}
	if b.bufs, err = unix.MmapPtr(-1, 0, nil, b.bufSize, prot, flags); err != nil {
		_ = unix.MunmapPtr(b.mem, b.memSize)
		return nil, fmt.Errorf("uring: mapping buffers: %w", err)
	}
	b.slots = unsafe.Slice((*bufRingEntry)(b.mem), count)
	reg := bufReg{RingAddr: uint64(uintptr(b.mem)), RingEntries: uint32(count), Bgid: group, Flags: regFlags}
	if err := r.register(registerPbufRing, unsafe.Pointer(&reg), 1); err != nil {
		b.unmap()
		return nil, fmt.Errorf("uring: registering buffer ring %d: %w", group, err)
	}
	b.open = true
	for i := 0; i < count; i++ {
		b.Add(uint16(i), i)
	}
	b.Advance(count)
	return b, nil
}

// Group is the buffer group ID to name in PrepRecvMultishot and friends.
func (b *BufRing) Group() uint16 { return b.group }

// Count is the number of buffers.
func (b *BufRing) Count() int { return int(b.entries) }

// Size is the size of each buffer in bytes.
func (b *BufRing) Size() int { return b.size }

// Buffer returns buffer id's whole memory (Size bytes). The slice aliases
// mapped memory: it stays valid until Close, and its contents belong to the
// caller only between the CQE that reported id and the buffer's recycling.
// Returns nil for an ID out of range or after Close.
func (b *BufRing) Buffer(id uint16) []byte {
	if !b.open || uint32(id) >= b.entries {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Add(b.bufs, uintptr(id)*uintptr(b.size))), b.size)
}

// Add writes buffer id into the ring slot offset places past the current tail,
// without publishing it; Advance publishes. offset counts the buffers added in
// this batch (0, 1, 2, …).
func (b *BufRing) Add(id uint16, offset int) {
	if !b.open || uint32(id) >= b.entries {
		return
	}
	e := &b.slots[(b.tail+uint16(offset))&b.mask]
	e.Addr = uint64(uintptr(b.bufs) + uintptr(id)*uintptr(b.size))
	e.Len = uint32(b.size)
	e.Bid = id
}

// Advance publishes n buffers written by Add to the kernel.
func (b *BufRing) Advance(n int) {
	if !b.open || n == 0 {
		return
	}
	b.tail += uint16(n)
	// The tail is the u16 overlaying slot 0's resv field (bytes 14-15). Store it
	// with release semantics as part of the aligned 32-bit word it shares with
	// slot 0's bid, which only we write. Little-endian layout (amd64, arm64).
	word := (*uint32)(unsafe.Add(b.mem, 12))
	atomic.StoreUint32(word, uint32(b.slots[0].Bid)|uint32(b.tail)<<16)
}

// Recycle gives buffer id back to the kernel (Add + Advance of one buffer).
func (b *BufRing) Recycle(id uint16) {
	b.Add(id, 0)
	b.Advance(1)
}

// Close unregisters the group and unmaps the memory. Requests using the group
// must have completed (their final CQE reaped) first. If the Ring is already
// closed the group is gone with it and Close only unmaps. Idempotent.
func (b *BufRing) Close() error {
	if !b.open {
		return nil
	}
	b.open = false
	var err error
	if !b.ring.closed {
		reg := bufReg{Bgid: b.group}
		if e := b.ring.register(unregisterPbufRing, unsafe.Pointer(&reg), 1); e != nil {
			err = fmt.Errorf("uring: unregistering buffer ring %d: %w", b.group, e)
		}
	}
	b.unmap()
	return err
}

// Abandon forgets the ring without unmapping its memory: for a caller that
// cannot prove every request using the group has completed (a close that
// timed out), since the kernel may still write received bytes into the
// buffers. The memory stays mapped for the life of the process. The group is
// not unregistered (it goes with the Ring). Afterwards the BufRing is closed.
// Idempotent; returns the number of bytes left mapped.
func (b *BufRing) Abandon() uintptr {
	if !b.open && b.mem == nil {
		return 0
	}
	b.open = false
	n := b.memSize + b.bufSize
	b.slots, b.mem, b.bufs = nil, nil, nil
	return n
}

func (b *BufRing) unmap() {
	b.slots = nil
	if b.bufs != nil {
		_ = unix.MunmapPtr(b.bufs, b.bufSize)
		b.bufs = nil
	}
	if b.mem != nil {
		_ = unix.MunmapPtr(b.mem, b.memSize)
		b.mem = nil
	}
}
