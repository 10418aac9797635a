package uring

import (
	"fmt"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Registered ring descriptors (IORING_REGISTER_RING_FDS, Linux 5.18).
//
// The kernel keeps registered rings in a table of maxRegisteredRings slots
// per thread (struct io_uring_task), and io_uring_enter with
// IORING_ENTER_REGISTERED_RING looks its first argument up in the calling
// thread's table. Go moves goroutines between threads, so a slot number
// alone could name another ring of the same thread. The binding therefore
// gives each ring a slot number unique in the process: on any thread other
// than its owner the slot is empty, and a misplaced enter fails (EBADF or
// EINVAL, reported as ErrWrongThread) instead of reaching another ring.
var ringSlots struct {
	sync.Mutex
	used [maxRegisteredRings]bool
}

func takeRingSlot() int {
	ringSlots.Lock()
	defer ringSlots.Unlock()
	for i, u := range ringSlots.used {
		if !u {
			ringSlots.used[i] = true
			return i
		}
	}
	return -1
}

func freeRingSlot(i int) {
	ringSlots.Lock()
	ringSlots.used[i] = false
	ringSlots.Unlock()
}

// registerRing registers the ring descriptor in a process-unique slot of the
// calling thread's table; on success enters use the slot. It returns why it
// did not register, or "" when it did.
func (r *Ring) registerRing(inject syscall.Errno) string {
	slot := takeRingSlot()
	if slot < 0 {
		return fmt.Sprintf("all %d process-wide registered ring slots in use", maxRegisteredRings)
	}
	u := rsrcUpdate{Offset: uint32(slot), Data: uint64(r.fd)}
	var err error
	if inject != 0 {
		err = inject
	} else {
		err = r.register(registerRingFds, unsafe.Pointer(&u), 1)
	}
	if err != nil {
		freeRingSlot(slot)
		// EINVAL: before 5.18; EBUSY: something outside this package
		// registered a ring in that slot of this thread.
		return fmt.Sprintf("IORING_REGISTER_RING_FDS: %v", err)
	}
	r.regSlot, r.regTid = slot, unix.Gettid()
	r.enterFd, r.enterFlag = slot, enterRegisteredRng
	return ""
}

// unregisterRing drops the registration if called on the owner thread; from
// another thread it leaves the slot taken for good (see Close).
func (r *Ring) unregisterRing() error {
	slot := r.regSlot
	r.regSlot, r.enterFd, r.enterFlag = -1, r.fd, 0
	if tid := unix.Gettid(); tid != r.regTid {
		return fmt.Errorf("%w: Close on thread %d of a ring registered on thread %d: registration left in place", ErrWrongThread, tid, r.regTid)
	}
	u := rsrcUpdate{Offset: uint32(slot)}
	if err := r.register(unregisterRingFds, unsafe.Pointer(&u), 1); err != nil {
		return fmt.Errorf("uring: IORING_UNREGISTER_RING_FDS: %w", err) // slot stays taken
	}
	freeRingSlot(slot)
	return nil
}
