// Package csrv builds the bench's C reference server: src/echo.c, a one-thread
// TCP echo server on io_uring through liburing (multishot accept into the
// fixed file table, multishot recv from a registered provided-buffer ring,
// one send in flight per connection, SINGLE_ISSUER|DEFER_TASKRUN where the
// kernel has it). `bench compare` builds it with gcc into a temporary
// directory and runs it as the "c-liburing" row of the echo workloads.
//
// The server takes -addr HOST:PORT, prints "READY HOST:PORT" on stdout once
// listening and exits 0 on SIGTERM or SIGINT (the protocol of
// harness.StartCommand). It needs liburing 2.3+ to build and Linux 6.0+
// (multishot recv) to run.
package csrv

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

//go:embed src/echo.c
var source []byte

// Header is the liburing header the build needs.
const Header = "/usr/include/liburing.h"

// ErrUnavailable means the server cannot be built here (no gcc, or no
// liburing headers).
var ErrUnavailable = errors.New("csrv: C liburing echo server cannot be built here")

// Available returns nil when gcc and liburing's header are present, else an
// error wrapping ErrUnavailable that names what is missing.
func Available() error {
	if _, err := exec.LookPath("gcc"); err != nil {
		return fmt.Errorf("%w: gcc not found", ErrUnavailable)
	}
	if _, err := os.Stat(Header); err != nil {
		return fmt.Errorf("%w: %s not found (install liburing-dev)", ErrUnavailable, Header)
	}
	return nil
}

// Build compiles echo.c with gcc -O2 into dir and returns the binary's path.
// It returns an error wrapping ErrUnavailable when Available fails, and the
// compiler's output when the build fails.
func Build(ctx context.Context, dir string) (string, error) {
	if err := Available(); err != nil {
		return "", err
	}
	src := filepath.Join(dir, "echo.c")
	if err := os.WriteFile(src, source, 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "c-liburing-echo")
	out, err := exec.CommandContext(ctx, "gcc", "-O2", "-Wall", "-o", bin, src, "-luring").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("csrv: gcc: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}
