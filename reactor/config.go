package reactor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gyre-io/gyre/reactor/backend"
)

// BackendKind chooses the backend.
type BackendKind int

// Backend choices.
const (
	// Auto (the default) uses io_uring when the kernel allows it and falls back
	// to epoll otherwise, logging one line that says why.
	Auto BackendKind = iota
	// Uring forces io_uring; New fails (matching uring.ErrUnavailable) without it.
	Uring
	// Epoll forces epoll.
	Epoll
)

func (k BackendKind) String() string {
	switch k {
	case Uring:
		return "uring"
	case Epoll:
		return "epoll"
	}
	return "auto"
}

// ErrUnknownBackend: a backend name (a -backend flag, GYRE_BACKEND) is not
// auto, uring or epoll.
var ErrUnknownBackend = errors.New("gyre/reactor: unknown backend")

// ParseBackend parses "auto", "uring" or "epoll" (as used by -backend flags and
// GYRE_BACKEND).
func ParseBackend(s string) (BackendKind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return Auto, nil
	case "uring", "io_uring", "iouring":
		return Uring, nil
	case "epoll":
		return Epoll, nil
	}
	return Auto, fmt.Errorf("%w %q (want auto, uring or epoll)", ErrUnknownBackend, s)
}

// EnvBackend is the environment variable that overrides Config.Backend (for
// running a whole test suite on one backend) unless Config.IgnoreEnv is set.
// An empty value means no override; any other value must parse with
// ParseBackend, or New fails with an error matching ErrUnknownBackend.
const EnvBackend = "GYRE_BACKEND"

// Config configures a Loop. The zero value is a good default.
type Config struct {
	// Backend to use; the GYRE_BACKEND environment variable overrides it
	// (see EnvBackend).
	Backend BackendKind
	// IgnoreEnv makes Backend win over GYRE_BACKEND (programs with their own
	// -backend flag set it and give the flag GYRE_BACKEND as its default).
	IgnoreEnv bool
	// Ring / buffer pool sizes.
	Sizes backend.Config
	// Logger for the loop's few log lines; default slog.Default().
	Logger *slog.Logger
	// OnError receives errors no caller can receive: recovered panics of
	// callbacks, failed trigger deadlines. Default: log them.
	OnError func(error)
	// ShutdownTimeout bounds how long "before shutdown" triggers may delay
	// shutdown; default 10 s.
	ShutdownTimeout time.Duration
	// DrainTimeout bounds the graceful part of shutdown: connections flush
	// their queues and close with FIN, in-flight ops complete. What has not
	// finished by then is aborted (reset and closed, ConnectionLost with
	// ErrConnectionLost), which takes at most a further second, so Run returns
	// within ShutdownTimeout (before triggers) + DrainTimeout + 1 s. Default
	// 2 s.
	DrainTimeout time.Duration
	// CompletionBatch is how many completions one wait may return; default 256.
	CompletionBatch int
	// CPUs, if not empty, pins the loop's OS thread (the one thread that runs
	// every callback and enters the kernel for the backend) to these CPU
	// numbers with sched_setaffinity(2), before the backend is opened, so the
	// ring's kernel-side work is local to it too. New fails with the
	// system call's error (EINVAL: none of the CPUs is online or allowed)
	// and a negative or too large number is ErrBadCPU. Only the loop's
	// thread is pinned; other goroutines of the program are not.
	CPUs []int

	// WrapBackend, if set, is a test hook: the backend New opens (after the
	// Auto/Uring/Epoll choice) is passed to it on the loop's thread, and the
	// loop uses what it returns instead — a backend that wraps the real one,
	// such as the fault injector reactor/backend/faulty. The returned backend
	// must obey the whole backend contract; Loop.Backend reports its Name.
	// Production code leaves it nil.
	WrapBackend func(backend.Backend) backend.Backend

	// openUring, if set, replaces the io_uring backend constructor (tests
	// inject set-up failures with it).
	openUring func(backend.Config) (backend.Backend, error)
}

func (c Config) withDefaults() (Config, error) {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 2 * time.Second
	}
	if c.CompletionBatch <= 0 {
		c.CompletionBatch = 256
	}
	if c.Sizes.Logger == nil {
		c.Sizes.Logger = c.Logger // the backend's rare reports (CQ overflow, leaks at Close) go to the loop's logger
	}
	c.Sizes = c.Sizes.WithDefaults()
	if !c.IgnoreEnv {
		if v := os.Getenv(EnvBackend); v != "" {
			k, err := ParseBackend(v)
			if err != nil {
				return c, fmt.Errorf("%s: %w", EnvBackend, err)
			}
			c.Backend = k
		}
	}
	return c, nil
}

// openBackend opens the configured backend; fellBack reports that Auto got
// epoll because io_uring could not be set up.
func openBackend(cfg Config, log *slog.Logger) (be backend.Backend, fellBack bool, err error) {
	openU := cfg.openUring
	if openU == nil {
		openU = openUring
	}

	switch cfg.Backend {
	case Uring:
		be, err = openU(cfg.Sizes)
		return be, false, err
	case Epoll:
		be, err = openEpoll(cfg.Sizes)
		return be, false, err
	}
	if be, err = openU(cfg.Sizes); err == nil {
		return be, false, nil
	}
	// Once per logger and reason: a program making one loop per CPU logs
	// the fallback once, not once per loop (each loop still counts it in
	// Stats.Fallback).
	if _, seen := fallbackLogged.LoadOrStore(fallbackKey{log, err.Error()}, struct{}{}); !seen {
		log.Info("gyre: io_uring unavailable, using epoll", "reason", err.Error())
	}
	be, err = openEpoll(cfg.Sizes)
	return be, err == nil, err
}

// fallbackKey names a fallback line already logged (openBackend).
type fallbackKey struct {
	log    *slog.Logger
	reason string
}

var fallbackLogged sync.Map // fallbackKey → struct{}
