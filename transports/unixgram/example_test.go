package unixgram_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/unixgram"
)

// echoDatagrams sends every datagram back to its sender's path.
type echoDatagrams struct {
	t transports.DatagramTransportOf[string]
}

func (e *echoDatagrams) StartProtocol(t transports.DatagramTransportOf[string]) { e.t = t }
func (e *echoDatagrams) DatagramReceived(p []byte, from string) {
	if from != "" { // an unnamed sender cannot be answered
		_ = e.t.Write(p, from)
	}
}
func (e *echoDatagrams) ConnectionRefused() {}
func (e *echoDatagrams) StopProtocol()      {}

// A UNIX datagram echo server; the client binds its own path so that the
// reply can reach it.
func Example() {
	dir, err := os.MkdirTemp("", "gyre-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	srv := filepath.Join(dir, "echo.sock")

	loop, err := reactor.New(reactor.Config{})
	if err != nil {
		panic(err)
	}
	if _, err := unixgram.Listen(loop, srv, &echoDatagrams{}, unixgram.ListenOptions{}); err != nil {
		panic(err)
	}
	go func() {
		defer loop.Stop()
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "client.sock"), Net: "unixgram"})
		if err != nil {
			fmt.Println(err)
			return
		}
		defer c.Close()
		_, _ = c.WriteToUnix([]byte("hello, unixgram"), &net.UnixAddr{Name: srv, Net: "unixgram"})
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(string(buf[:n]))
	}()
	_ = loop.Run(context.Background()) // the socket file is removed as the loop stops
	// Output: hello, unixgram
}
