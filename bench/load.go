package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gyre-io/gyre/bench/internal/loadgen"
)

func loadMain(args []string) int {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	var cfg loadgen.Config
	fs.StringVar(&cfg.Proto, "proto", "echo", "protocol: echo, resp, http or udpecho (UDP: -conns sockets, one datagram of -size bytes per request)")
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:7000", "server address HOST:PORT")
	fs.IntVar(&cfg.Conns, "conns", 50, "connections")
	fs.IntVar(&cfg.Size, "size", 64, "echo message size / RESP SET value size in bytes")
	fs.IntVar(&cfg.Depth, "depth", 1, "requests in flight per connection (sent as one pipelined batch)")
	fs.StringVar(&cfg.Op, "op", "ping", "RESP requests: ping or setget")
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Second, "measured window")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "warm-up before the measured window")
	fs.Int64Var(&cfg.MaxRequests, "max-requests", 0, "stop after this many requests (0: no cap)")
	tlsCA := fs.String("tls-ca", "", "speak TLS, trusting this PEM CA certificate for the name localhost")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // -h: usage printed, as asked
		}
		return 2
	}
	if *tlsCA != "" {
		pem, err := os.ReadFile(*tlsCA)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench load: %v\n", err)
			return 2
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			fmt.Fprintf(os.Stderr, "bench load: no certificate in %s\n", *tlsCA)
			return 2
		}
		cfg.TLS = &tls.Config{RootCAs: pool, ServerName: "localhost"}
	}
	if cfg.Duration > time.Hour || cfg.Warmup > time.Hour {
		fmt.Fprintln(os.Stderr, "bench load: -duration and -warmup are capped at 1h")
		return 2
	}
	// The harness reads these two lines to measure the server's CPU time over
	// exactly the measured window.
	cfg.OnMeasure = func() { fmt.Println("MEASURE start") }
	cfg.OnEnd = func() { fmt.Println("MEASURE end") }
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench load: %v\n", err)
		return 1
	}
	fmt.Println(res.Line(cfg))
	return 0
}
