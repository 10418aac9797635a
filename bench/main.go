// Command bench compares gyre with Go's net, gnet and a C liburing echo
// server, side by side.
//
//	go run ./bench compare [-quick] [-out DIR] [-reps N] [-loops N] [-quota CPUS] [-readme README.md] [-from samples.json]
//	go run ./bench serve -proto echo|resp|http -impl gyre-uring|gyre-epoll|net|gnet -addr HOST:PORT [-loops N]
//	go run ./bench load -proto echo|resp|http -addr HOST:PORT -conns N -size B -depth D -duration T [-warmup W]
//
// compare starts every server itself (re-executing this binary as `serve`),
// drives it from another process (`load`, wrk, redis-benchmark), pins server
// and client to different CPUs, interleaves the systems over repetitions and
// reports throughput, latency, server CPU time per request (with its user and
// kernel shares), context switches per request and the targets of issue 16;
// -readme rewrites the README's generated block and docs/bench.svg. The C
// server (bench/internal/csrv) is built with gcc when liburing's headers are
// installed and runs the echo workloads only. serve runs one
// server in the foreground until SIGINT or SIGTERM (exit 0). load runs the
// load generator alone and prints one `RESULT key=value …` line.
package main

import (
	"fmt"
	"os"
)

const usage = `usage:
  bench compare [-quick] [-out DIR] [-reps N] [-loops N] [-quota CPUS] [-readme README.md] [-from samples.json]
  bench serve -proto echo|resp|http -impl gyre-uring|gyre-epoll|net|gnet -addr HOST:PORT [-loops N]
  bench load -proto echo|resp|http -addr HOST:PORT -conns N -size B -depth D -duration T [-warmup W]
`

func main() { os.Exit(run(os.Args[1:])) }

// run dispatches a command line (without the program name) and returns the
// exit status.
func run(argv []string) int {
	if len(argv) < 1 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	args := argv[1:]
	switch argv[0] {
	case "serve":
		return serveMain(args)
	case "load":
		return loadMain(args)
	case "compare":
		return compareMain(args)
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "bench: unknown command %q\n%s", argv[0], usage)
	return 2
}
