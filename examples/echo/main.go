// Command echo is a TCP echo server on gyre.
//
//	go run ./examples/echo -addr 127.0.0.1:7000 [-backend auto|uring|epoll] [-tls-cert FILE -tls-key FILE]
//
// Try it with socat - TCP:127.0.0.1:7000 or nc 127.0.0.1 7000; with -tls-cert and
// -tls-key it serves TLS (openssl s_client -connect 127.0.0.1:7000). It serves until
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
