package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Quota is a CPU-quota cgroup made by the harness (v1 cpu.cfs_quota_us or v2
// cpu.max) and removed by Close.
type Quota struct {
	dir  string
	v2   bool
	CPUs float64
}

// ErrNoCgroup means no usable CPU cgroup controller (or not root).
var ErrNoCgroup = errors.New("harness: no writable cgroup cpu controller")

// NewQuota creates a cgroup limiting its members to cpus CPUs (0.5: half of
// one CPU) over a 100 ms period.
func NewQuota(cpus float64) (*Quota, error) {
	if cpus <= 0 {
		return nil, fmt.Errorf("harness: quota must be positive, got %v", cpus)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: not root", ErrNoCgroup)
	}
	name := fmt.Sprintf("gyre-bench-%d", os.Getpid())
	const period = 100000
	quota := int(cpus * period)
	if quota < 1000 {
		quota = 1000
	}
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"); err == nil {
		dir := filepath.Join("/sys/fs/cgroup/cpu", name)
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			return nil, fmt.Errorf("%w: %v", ErrNoCgroup, err)
		}
		q := &Quota{dir: dir, CPUs: cpus}
		if err := write(filepath.Join(dir, "cpu.cfs_period_us"), strconv.Itoa(period)); err != nil {
			q.Close()
			return nil, err
		}
		if err := write(filepath.Join(dir, "cpu.cfs_quota_us"), strconv.Itoa(quota)); err != nil {
			q.Close()
			return nil, err
		}
		return q, nil
	}
	ctl, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
	if err != nil || !strings.Contains(string(ctl), "cpu") {
		return nil, fmt.Errorf("%w: neither cgroup v1 cpu nor v2 cpu.max found", ErrNoCgroup)
	}
	_ = write("/sys/fs/cgroup/cgroup.subtree_control", "+cpu")
	dir := filepath.Join("/sys/fs/cgroup", name)
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return nil, fmt.Errorf("%w: %v", ErrNoCgroup, err)
	}
	q := &Quota{dir: dir, v2: true, CPUs: cpus}
	if err := write(filepath.Join(dir, "cpu.max"), fmt.Sprintf("%d %d", quota, period)); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

// Kind names the mechanism ("cgroup v1 cpu.cfs_quota_us" or "cgroup v2 cpu.max").
func (q *Quota) Kind() string {
	if q.v2 {
		return "cgroup v2 cpu.max"
	}
	return "cgroup v1 cpu.cfs_quota_us"
}

// Add moves process pid (all its threads) into the cgroup.
func (q *Quota) Add(pid int) error {
	return write(filepath.Join(q.dir, "cgroup.procs"), strconv.Itoa(pid))
}

// Close removes the cgroup (its processes must have exited).
func (q *Quota) Close() error {
	if q == nil || q.dir == "" {
		return nil
	}
	err := os.Remove(q.dir)
	q.dir = ""
	return err
}

func write(path, v string) error {
	if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
		return fmt.Errorf("%w: %v", ErrNoCgroup, err)
	}
	return nil
}
