package react_test

import (
	"context"

	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/react"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
)

// A whole echo server: flags, one loop per -loops, signals, exit status.
func ExampleMain() {
	react.Main("echo", "tcp:7000:interface=127.0.0.1", func(*reactor.Loop) transports.Factory {
		return echo.Factory{}
	})
}

// Serve without flags, e.g. from a service's own main.
func ExampleServe() {
	cfg := react.Config{Name: "echo", Loops: react.PerCPU, DebugAddr: "127.0.0.1:6060"}
	_ = react.Serve(context.Background(), cfg, "tcp:7000:interface=127.0.0.1", func(*reactor.Loop) transports.Factory {
		return echo.Factory{}
	})
}
