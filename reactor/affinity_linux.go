package reactor

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrBadCPU is returned by New for a Config.CPUs entry that no CPU set can
// hold (negative, or not below CPU_SETSIZE, 1024).
var ErrBadCPU = errors.New("gyre/reactor: bad CPU number")

// pinThread pins the calling OS thread (the loop's, locked) to cpus; empty
// cpus leaves the thread's affinity alone.
func pinThread(cpus []int) error {
	if len(cpus) == 0 {
		return nil
	}
	var set unix.CPUSet
	for _, c := range cpus {
		if c < 0 || c >= len(set)*64 {
			return fmt.Errorf("%w: %d", ErrBadCPU, c)
		}
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("gyre/reactor: pin loop thread to CPUs %v: %w", cpus, os.NewSyscallError("sched_setaffinity", err))
	}
	return nil
}

// AllowedCPUs returns the CPU numbers the calling thread may run on
// (sched_getaffinity(2)), in increasing order: the set a program's loops can
// be spread over with Config.CPUs. Goroutine-safe.
func AllowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, os.NewSyscallError("sched_getaffinity", err)
	}
	var cpus []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}
