package uring

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pool is the provided-buffer fallback for kernels without buffer rings: count
// buffers of size bytes in memory mapped outside the Go heap, handed out by the
// backend when a BufferSelect receive is armed.
type pool struct {
	mem   unsafe.Pointer
	len   uintptr
	size  int
	count int
	free  []uint16 // stack of free IDs
	inUse []bool
}

func newPool(count, size int) (*pool, error) {
	n := uintptr(count) * uintptr(size)
	mem, err := unix.MmapPtr(-1, 0, nil, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("mapping buffer pool: %w", err)
	}
	p := &pool{mem: mem, len: n, size: size, count: count, free: make([]uint16, count), inUse: make([]bool, count)}
	for i := range p.free {
		p.free[i] = uint16(count - 1 - i) // hand out 0, 1, 2, … first
	}
	return p, nil
}

// get takes a free buffer.
func (p *pool) get() (uint16, bool) {
	n := len(p.free)
	if n == 0 {
		return 0, false
	}
	id := p.free[n-1]
	p.free = p.free[:n-1]
	p.inUse[id] = true
	return id, true
}

// put returns a buffer; unknown or already free IDs are ignored.
func (p *pool) put(id uint16) {
	if int(id) >= p.count || !p.inUse[id] {
		return
	}
	p.inUse[id] = false
	p.free = append(p.free, id)
}

// buf is buffer id's memory.
func (p *pool) buf(id uint16) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(p.mem, uintptr(id)*uintptr(p.size))), p.size)
}

func (p *pool) close() {
	if p.mem != nil {
		_ = unix.MunmapPtr(p.mem, p.len)
		p.mem = nil
	}
}
