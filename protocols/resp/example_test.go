package resp_test

import (
	"fmt"

	"github.com/gyre-io/gyre/protocols/resp"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// A RESP server driven without sockets: the string transport records the
// replies. On a real loop the same factory goes to tcp.Listen.
func Example() {
	f := resp.NewFactory(resp.NewStore(), resp.Options{})
	tr := transporttest.NewStringTransport(nil)
	p := f.BuildProtocol(transporttest.DefaultRemoteAddr)
	transporttest.Connect(p, tr)

	// Two pipelined requests, multibulk and inline; one Write answers both.
	tr.Receive([]byte("*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$5\r\nworld\r\nGET hello\r\n"))
	fmt.Printf("%q in %d write\n", tr.String(), tr.Writes())
	// Output: "+OK\r\n$5\r\nworld\r\n" in 1 write
}
