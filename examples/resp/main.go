// Command resp is a Redis-protocol server on gyre with an in-memory store.
//
//	go run ./examples/resp -addr 127.0.0.1:6380 [-backend auto|uring|epoll]
//
// Try it with redis-cli -p 6380 or redis-benchmark -p 6380 -t ping,set,get -P 16.
// It serves until SIGINT or SIGTERM, then stops cleanly and exits 0.
package main

import (
	"github.com/gyre-io/gyre/examples/internal/serve"
	"github.com/gyre-io/gyre/protocols/resp"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
)

func main() {
	serve.Main("resp", "127.0.0.1:6380", func(*reactor.Loop) transports.Factory {
		return resp.NewFactory(resp.NewStore(), resp.Options{})
	})
}
