// Package waker is the cross-goroutine wake-up of the backends under
// reactor/backend: an eventfd that Wake writes from any goroutine, and that
// the backend's loop watches (io_uring: an armed read; epoll: the epoll set).
// Wakes coalesce: while one is pending (written, not yet consumed by the
// loop) further Wakes return at once without a system call.
package waker

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
)

// Waker owns one eventfd. Wake is goroutine-safe; the other methods belong to
// the loop goroutine (Close may race only with Wake).
type Waker struct {
	mu      sync.RWMutex // Wake holds it shared while writing; Close exclusively
	fd      int
	shut    atomic.Bool
	pending atomic.Bool
	one     [8]byte                             // the counter increment (little-endian 1)
	write   func(fd int, p []byte) (int, error) // test hook; nil: write(2)
}

// New opens the eventfd (non-blocking, close-on-exec).
func New() (*Waker, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	w := &Waker{fd: fd}
	w.one[0] = 1
	return w, nil
}

// Fd is the eventfd, for the loop to watch; -1 after Close.
func (w *Waker) Fd() int { return w.fd }

// Wake makes the loop's watch on the eventfd fire, unless a wake-up is already
// pending. It returns backend.ErrClosed after Close, and the errno (wrapped)
// if the write fails; then no wake-up is marked pending, so the next Wake
// tries again. EAGAIN (the counter is saturated) means a wake-up is pending
// already and is success. Goroutine-safe.
func (w *Waker) Wake() error {
	if w.shut.Load() {
		return backend.ErrClosed
	}
	if w.pending.Load() {
		return nil
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.shut.Load() {
		return backend.ErrClosed
	}
	if w.pending.Swap(true) {
		return nil
	}
	for {
		var err error
		if w.write != nil {
			_, err = w.write(w.fd, w.one[:])
		} else if _, _, e := unix.Syscall(unix.SYS_WRITE, uintptr(w.fd), uintptr(unsafe.Pointer(&w.one[0])), 8); e != 0 {
			err = e
		}
		switch err {
		case nil, unix.EAGAIN:
			return nil
		case unix.EINTR:
			continue
		}
		w.pending.Store(false)
		return fmt.Errorf("wake: %w", err)
	}
}

// SetWrite replaces the eventfd write (nil: write(2)); a test hook, for
// injecting failures. Goroutine-safe.
func (w *Waker) SetWrite(f func(fd int, p []byte) (int, error)) {
	w.mu.Lock()
	w.write = f
	w.mu.Unlock()
}

// Consumed tells the waker the loop has seen the pending wake-up (it read the
// eventfd), so the next Wake writes again. Loop goroutine only.
func (w *Waker) Consumed() { w.pending.Store(false) }

// Pending reports whether a wake-up is written and not yet consumed.
func (w *Waker) Pending() bool { return w.pending.Load() }

// Close closes the eventfd; Wake returns backend.ErrClosed from then on.
// Idempotent.
func (w *Waker) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.shut.Store(true)
	if w.fd >= 0 {
		_ = unix.Close(w.fd)
		w.fd = -1
	}
}
