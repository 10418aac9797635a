// Command echo is a TCP or UNIX-socket echo server on gyre.
//
//	go run ./examples/echo -addr 127.0.0.1:7000 [-backend auto|uring|epoll] [-loops N] [-tls-cert FILE -tls-key FILE] [-debug-addr HOST:PORT]
//	go run ./examples/echo -addr unix:/tmp/echo.sock
//	go run ./examples/echo -addr unix:@echo        # Linux abstract name
//	go run ./examples/echo -listen tcp:7000:interface=127.0.0.1:backlog=128   # any endpoint description
//	systemd-socket-activate -l 127.0.0.1:7000 ./echo -listen systemd:domain=INET:index=0
//
// Try it with socat - TCP:127.0.0.1:7000, nc 127.0.0.1 7000, socat -
// UNIX-CONNECT:/tmp/echo.sock or socat - ABSTRACT-CONNECT:echo; with -tls-cert
// and -tls-key it serves TLS (openssl s_client -connect 127.0.0.1:7000). It serves until
// SIGINT or SIGTERM, then stops cleanly and exits 0.
package main

import (
	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/react"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
)

func main() {
	react.Main("echo", "tcp:7000:interface=127.0.0.1", func(*reactor.Loop) transports.Factory { return echo.Factory{} })
}
