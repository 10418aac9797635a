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
	"syscall"
	"time"
)

// clkTck is USER_HZ, the unit of utime/stime in /proc/PID/stat (100 on every
// Linux architecture Go supports).
const clkTck = 100

// CPUTime returns utime+stime of process pid (all its threads, exited ones
// included) from /proc/PID/stat.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStat(b)
}

func parseStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("harness: malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, errors.New("harness: short /proc stat")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("harness: bad utime/stime in /proc stat")
	}
	return time.Duration(ut+st) * time.Second / clkTck, nil
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
	argv := pinned(cpus, append([]string{self, "serve", "-proto", proto, "-impl", impl, "-addr", addr, "-loops", strconv.Itoa(loops)}, flags...))
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
		return nil, fmt.Errorf("server %s/%s exited before ready: %v: %s", impl, proto, err, strings.TrimSpace(errb.String()))
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-s.done
		return nil, fmt.Errorf("server %s/%s not ready after 15s: %s", impl, proto, strings.TrimSpace(errb.String()))
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

// Window is a measured interval's server CPU time.
type Window struct {
	CPU     time.Duration
	Elapsed time.Duration
}

// RunClient runs argv (pinned to cpus) and returns its stdout. It measures the
// server's CPU time between the client's "MEASURE start" and "MEASURE end"
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
	c0, _ := CPUTime(serverPID)
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
			c0, _ = CPUTime(serverPID)
			t0 = time.Now()
			marked = true
		case "MEASURE end":
			c1, _ := CPUTime(serverPID)
			w = Window{CPU: c1 - c0, Elapsed: time.Since(t0)}
		}
		if rerr != nil {
			if rerr != io.EOF {
				err = rerr
			}
			break
		}
	}
	if !marked {
		c1, _ := CPUTime(serverPID)
		w = Window{CPU: c1 - c0, Elapsed: time.Since(t0)}
	}
	if werr := cmd.Wait(); werr != nil && err == nil {
		err = fmt.Errorf("%s: %v: %s", argv[0], werr, strings.TrimSpace(errb.String()))
	}
	return all.String(), w, err
}
