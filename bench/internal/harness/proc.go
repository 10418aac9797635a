// Package harness runs the bench comparison: it starts each server as a child
// process (optionally pinned with taskset and capped by a cgroup CPU quota),
// drives it with a load tool in another child process, measures the server's
// CPU time from /proc/PID/stat, and reports medians, ratios, JSON and SVG.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clkTck is USER_HZ, the unit of utime/stime in /proc/PID/stat (100 on every
// Linux architecture Go supports).
const clkTck = 100

// Usage is a process's CPU time, split into the user-space and kernel
// shares, and its context switches.
type Usage struct {
	// User and Sys are utime and stime from /proc/PID/stat: all threads of
	// the process, exited ones included (io_uring's iou-wrk workers are
	// threads of the process and count here).
	User, Sys time.Duration
	// VolCS and InvolCS are voluntary_ctxt_switches and
	// nonvoluntary_ctxt_switches summed over /proc/PID/task/*/status: the
	// threads alive when read (a thread that exits takes its count with it).
	VolCS, InvolCS int64
}

// CPU is User+Sys.
func (u Usage) CPU() time.Duration { return u.User + u.Sys }

// CtxSwitches is VolCS+InvolCS.
func (u Usage) CtxSwitches() int64 { return u.VolCS + u.InvolCS }

// Sub is u-v, field by field.
func (u Usage) Sub(v Usage) Usage {
	return Usage{User: u.User - v.User, Sys: u.Sys - v.Sys, VolCS: u.VolCS - v.VolCS, InvolCS: u.InvolCS - v.InvolCS}
}

// CPUTime returns utime+stime of process pid (all its threads, exited ones
// included) from /proc/PID/stat.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	u, s, err := parseStat(b)
	return u + s, err
}

// ReadUsage reads process pid's Usage from /proc.
func ReadUsage(pid int) (Usage, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	if u.User, u.Sys, err = parseStat(b); err != nil {
		return u, err
	}
	tasks, err := os.ReadDir(dir + "/task")
	if err != nil {
		return u, err
	}
	for _, t := range tasks {
		st, err := os.ReadFile(dir + "/task/" + t.Name() + "/status")
		if err != nil {
			continue // the thread exited since ReadDir
		}
		v, n := parseCtxSwitches(st)
		u.VolCS += v
		u.InvolCS += n
	}
	return u, nil
}

// parseStat returns utime and stime from a /proc/PID/stat line.
func parseStat(b []byte) (user, sys time.Duration, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("harness: malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, 0, errors.New("harness: short /proc stat")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, errors.New("harness: bad utime/stime in /proc stat")
	}
	return time.Duration(ut) * time.Second / clkTck, time.Duration(st) * time.Second / clkTck, nil
}

// parseCtxSwitches returns the voluntary and nonvoluntary context switch
// counts of a /proc/PID/task/TID/status file (0 where a line is missing).
func parseCtxSwitches(b []byte) (vol, invol int64) {
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "voluntary_ctxt_switches":
			vol, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		case "nonvoluntary_ctxt_switches":
			invol, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return vol, invol
}

// FreePort returns a loopback address with a port that was free a moment ago.
func FreePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// pinned prefixes argv with taskset when cpus is not empty and taskset exists.
func pinned(cpus string, argv []string) []string {
	if cpus == "" {
		return argv
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return argv
	}
	return append([]string{ts, "-c", cpus}, argv...)
}

// HaveTaskset reports whether pinning is possible.
func HaveTaskset() bool {
	_, err := exec.LookPath("taskset")
	return err == nil
}

// Server is a running `bench serve` child.
type Server struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
	Addr   string
}

// StartServer starts `self serve -proto proto -impl impl -addr addr -loops n
// [flags…]` pinned to cpus (taskset syntax, "" for none) and waits for its READY line.
func StartServer(self, proto, impl, addr string, loops int, cpus string, flags ...string) (*Server, error) {
	argv := append([]string{self, "serve", "-proto", proto, "-impl", impl, "-addr", addr, "-loops", strconv.Itoa(loops)}, flags...)
	return StartCommand(impl+"/"+proto, argv, addr, cpus)
}

// StartCommand starts argv (a server that prints "READY HOST:PORT" on stdout
// once listening and exits 0 on SIGTERM) pinned to cpus and waits for its
// READY line; label names it in errors and addr is its address until READY
// says otherwise.
func StartCommand(label string, argv []string, addr, cpus string) (*Server, error) {
	argv = pinned(cpus, argv)
	cmd := exec.Command(argv[0], argv[1:]...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{cmd: cmd, stderr: &errb, done: make(chan error, 1), Addr: addr}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "READY ") {
				select {
				case ready <- strings.TrimPrefix(line, "READY "):
				default:
				}
			}
		}
		s.done <- cmd.Wait()
	}()
	select {
	case a := <-ready:
		s.Addr = a
		return s, nil
	case err := <-s.done:
		s.done <- err
		return nil, fmt.Errorf("server %s exited before ready: %v: %s", label, err, strings.TrimSpace(errb.String()))
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-s.done
		return nil, fmt.Errorf("server %s not ready after 15s: %s", label, strings.TrimSpace(errb.String()))
	}
}

// StartDialed starts argv, a server that prints no READY line (a foreign
// one, such as redis-server), pinned to cpus, and waits until addr accepts
// a TCP connection (polled every 10 ms, for at most 15 s).
func StartDialed(label string, argv []string, addr, cpus string) (*Server, error) {
	argv = pinned(cpus, argv)
	cmd := exec.Command(argv[0], argv[1:]...)
	var errb bytes.Buffer
	cmd.Stderr, cmd.Stdout = &errb, &errb
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{cmd: cmd, stderr: &errb, done: make(chan error, 1), Addr: addr}
	go func() { s.done <- cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return s, nil
		}
		select {
		case err := <-s.done:
			s.done <- err
			return nil, fmt.Errorf("server %s exited before ready: %v: %s", label, err, strings.TrimSpace(errb.String()))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-s.done
			return nil, fmt.Errorf("server %s not ready after 15s: %s", label, strings.TrimSpace(errb.String()))
		}
	}
}

// PID is the server's process id (the server itself: taskset execs it).
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop sends SIGTERM and waits (killing after 10 s). It returns an error
// unless the server exited with status 0.
func (s *Server) Stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			return fmt.Errorf("server exit: %v: %s", err, strings.TrimSpace(s.stderr.String()))
		}
		return nil
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return errors.New("server did not stop within 10s of SIGTERM; killed")
	}
}

// Window is a measured interval's server usage.
type Window struct {
	// CPU is Usage.CPU(), kept for callers that want only the total.
	CPU time.Duration
	// Usage is the server's usage over the interval.
	Usage   Usage
	Elapsed time.Duration
}

func window(u0, u1 Usage, t0 time.Time) Window {
	d := u1.Sub(u0)
	return Window{CPU: d.CPU(), Usage: d, Elapsed: time.Since(t0)}
}

// RunClient runs argv (pinned to cpus) and returns its stdout. It measures the
// server's Usage between the client's "MEASURE start" and "MEASURE end"
// lines, or over the whole client run when it prints none.
func RunClient(ctx context.Context, argv []string, cpus string, serverPID int) (stdout string, w Window, err error) {
	argv = pinned(cpus, argv)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return "", w, err
	}
	c0, _ := ReadUsage(serverPID)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return "", w, err
	}
	var all strings.Builder
	marked := false
	r := bufio.NewReader(pipe)
	for {
		line, rerr := r.ReadString('\n')
		all.WriteString(line)
		switch strings.TrimSpace(line) {
		case "MEASURE start":
			c0, _ = ReadUsage(serverPID)
			t0 = time.Now()
			marked = true
		case "MEASURE end":
			c1, _ := ReadUsage(serverPID)
			w = window(c0, c1, t0)
		}
		if rerr != nil {
			if rerr != io.EOF {
				err = rerr
			}
			break
		}
	}
	if !marked {
		c1, _ := ReadUsage(serverPID)
		w = window(c0, c1, t0)
	}
	if werr := cmd.Wait(); werr != nil && err == nil {
		err = fmt.Errorf("%s: %v: %s", argv[0], werr, strings.TrimSpace(errb.String()))
	}
	return all.String(), w, err
}

// SyncBuffer collects a child process's output (an exec.Cmd's Stdout or
// Stderr) and may be read while the child still writes. The zero value is
// ready to use; goroutine-safe.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p. It never fails.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
