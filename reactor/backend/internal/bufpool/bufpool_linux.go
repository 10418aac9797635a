// Package bufpool is the provided-buffer pool the backends under
// reactor/backend hand out when the kernel does not pick buffers itself
// (epoll always; io_uring without buffer rings): Count buffers of Size bytes
// in one anonymous mapping outside the Go heap, given out from a free stack.
// Not goroutine-safe: the loop goroutine only.
package bufpool

import (
	"fmt"
	"math/bits"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
)

// Pool is a set of equal-sized buffers named by uint16 IDs 0..count-1.
type Pool struct {
	mem   []byte
	size  int
	free  []uint16 // stack of free IDs
	inUse []bool
}

// New maps count buffers of size bytes. count must be a power of two no larger
// than 32768 and count×size at most 1 GiB; otherwise the error wraps
// backend.ErrUnsupported.
func New(count, size int) (*Pool, error) {
	if count <= 0 || count > 1<<15 || bits.OnesCount(uint(count)) != 1 {
		return nil, fmt.Errorf("%w: BufferCount %d must be a power of two up to 32768", backend.ErrUnsupported, count)
	}
	if size <= 0 || size > 1<<30/count {
		return nil, fmt.Errorf("%w: BufferSize %d out of range", backend.ErrUnsupported, size)
	}
	mem, err := unix.Mmap(-1, 0, count*size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("mapping buffer pool: %w", err)
	}
	p := &Pool{mem: mem, size: size, free: make([]uint16, count), inUse: make([]bool, count)}
	for i := range p.free { // a stack: 0, 1, 2, … handed out first
		p.free[i] = uint16(count - 1 - i)
	}
	return p, nil
}

// Get takes a free buffer; ok is false when the pool is empty.
func (p *Pool) Get() (id uint16, ok bool) {
	n := len(p.free)
	if n == 0 {
		return 0, false
	}
	id = p.free[n-1]
	p.free = p.free[:n-1]
	p.inUse[id] = true
	return id, true
}

// Put returns buffer id; an ID out of range or not handed out is ignored.
func (p *Pool) Put(id uint16) {
	if int(id) >= len(p.inUse) || !p.inUse[id] {
		return
	}
	p.inUse[id] = false
	p.free = append(p.free, id)
}

// Count is the number of buffers.
func (p *Pool) Count() int { return len(p.inUse) }

// Free is the number of buffers not handed out.
func (p *Pool) Free() int { return len(p.free) }

// Size is the size of each buffer in bytes.
func (p *Pool) Size() int { return p.size }

// Buf is buffer id's memory (Size bytes), valid until Close.
func (p *Pool) Buf(id uint16) []byte {
	off := int(id) * p.size
	return p.mem[off : off+p.size : off+p.size]
}

// Close unmaps the pool; idempotent.
func (p *Pool) Close() error {
	if p.mem == nil {
		return nil
	}
	err := unix.Munmap(p.mem)
	p.mem = nil
	return err
}
