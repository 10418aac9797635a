package udp_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/udp"
)

// echoDatagrams sends every datagram back to its sender (Twisted's
// DatagramProtocol with a transport.write(data, addr) in datagramReceived).
type echoDatagrams struct{ t transports.DatagramTransport }

func (e *echoDatagrams) StartProtocol(t transports.DatagramTransport) { e.t = t }
func (e *echoDatagrams) DatagramReceived(p []byte, from netip.AddrPort) {
	_ = e.t.Write(p, from) // p is borrowed: Write copies or sends it before returning
}
func (e *echoDatagrams) ConnectionRefused() {}
func (e *echoDatagrams) StopProtocol()      {}

// A UDP echo server, driven by a Go net client from another goroutine.
func Example() {
	loop, err := reactor.New(reactor.Config{})
	if err != nil {
		panic(err)
	}
	port, err := udp.Listen(loop, "127.0.0.1:0", &echoDatagrams{}, udp.ListenOptions{})
	if err != nil {
		panic(err)
	}
	go func() {
		defer loop.Stop()
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(port.LocalAddr()))
		if err != nil {
			fmt.Println(err)
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("hello, datagram"))
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(string(buf[:n]))
	}()
	_ = loop.Run(context.Background()) // the port stops listening as the loop stops
	// Output: hello, datagram
}
