// Command echo is a TCP or UNIX-socket echo server on gyre.
//
//	go run ./examples/echo -addr 127.0.0.1:7000 [-backend auto|uring|epoll] [-tls-cert FILE -tls-key FILE]
//	go run ./examples/echo -addr unix:/tmp/echo.sock
//	go run ./examples/echo -addr unix:@echo        # Linux abstract name
//
// Try it with socat - TCP:127.0.0.1:7000, nc 127.0.0.1 7000, socat -
// UNIX-CONNECT:/tmp/echo.sock or socat - ABSTRACT-CONNECT:echo; with -tls-cert
// and -tls-key it serves TLS (openssl s_client -connect 127.0.0.1:7000). It serves until
// SIGINT or SIGTERM, then stops cleanly and exits 0.
package main

import (
	"github.com/gyre-io/gyre/examples/internal/serve"
	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
)

func main() {
	serve.Main("echo", "127.0.0.1:7000", func(*reactor.Loop) transports.Factory { return echo.Factory{} })
}
