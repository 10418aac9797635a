// Command resp is a Redis-protocol server on gyre with an in-memory store.
//
//	go run ./examples/resp -addr 127.0.0.1:6380 [-backend auto|uring|epoll] [-loops N] [-debug-addr HOST:PORT]
//	go run ./examples/resp -listen unix:/tmp/resp.sock:mode=660    # any endpoint description
//
// Try it with redis-cli -p 6380 or redis-benchmark -p 6380 -t ping,set,get -P 16.
// It serves until SIGINT or SIGTERM, then stops cleanly and exits 0.
package main

import (
	"github.com/gyre-io/gyre/protocols/resp"
	"github.com/gyre-io/gyre/react"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
)

func main() {
	// One keyspace for every loop (-loops, default one per CPU), as a Redis
	// client expects: a shared store serializes access with a mutex.
	store := resp.NewSharedStore()
	react.Main("resp", "tcp:6380:interface=127.0.0.1", func(*reactor.Loop) transports.Factory {
		return resp.NewFactory(store, resp.Options{})
	})
}
