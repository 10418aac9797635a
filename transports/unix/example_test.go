package unix_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports/unix"
)

// An echo server on a UNIX socket, driven by a Go net client from another
// goroutine.
func Example() {
	dir, err := os.MkdirTemp("", "gyre-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "echo.sock")

	loop, err := reactor.New(reactor.Config{})
	if err != nil {
		panic(err)
	}
	if _, err := unix.Listen(loop, path, echo.Factory{}, unix.ListenOptions{}); err != nil {
		panic(err)
	}
	go func() {
		defer loop.Stop()
		c, err := net.Dial("unix", path)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("hello over a UNIX socket"))
		got := make([]byte, len("hello over a UNIX socket"))
		if _, err := io.ReadFull(c, got); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(string(got))
	}()
	_ = loop.Run(context.Background()) // the port is closed as the loop stops
	// Output: hello over a UNIX socket
}
