package transporttest_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// shouter upper-cases each line it receives and hangs up after a minute of
// silence.
type shouter struct {
	tr    transports.Transport
	buf   []byte
	idle  transports.DelayedCall
	lines int
}

func (s *shouter) ConnectionMade(t transports.Transport) {
	s.tr = t
	s.idle = t.Clock().CallLater(time.Minute, func() { _ = t.LoseConnection() })
}

func (s *shouter) DataReceived(p []byte) {
	s.idle.Reset(time.Minute)
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			return
		}
		_ = s.tr.Write(append(bytes.ToUpper(s.buf[:i]), '\n'))
		s.buf = s.buf[i+1:]
		s.lines++
	}
}

func (s *shouter) ConnectionLost(error) { s.idle.Cancel() }

// A protocol test without sockets: a StringTransport records the output, input
// is fed at every chunk size, and a fake clock drives the idle timeout.
func Example() {
	input := []byte("hello\nworld\n")
	for size := 1; size <= len(input); size++ {
		clk := clock.NewFake()
		tr := transporttest.NewStringTransport(clk)
		p := &shouter{}
		transporttest.Connect(p, tr)
		transporttest.FeedChunks(p, input, size)
		if tr.String() != "HELLO\nWORLD\n" {
			fmt.Printf("size %d: got %q\n", size, tr.String())
		}
	}

	clk := clock.NewFake()
	tr := transporttest.NewStringTransport(clk)
	p := &shouter{}
	transporttest.Connect(p, tr)
	tr.Receive([]byte("ping\n"))
	fmt.Printf("%q\n", tr.Value())
	clk.Advance(59 * time.Second)
	fmt.Println("closing after 59s:", tr.Disconnecting())
	clk.Advance(time.Second)
	fmt.Println("closing after 60s:", tr.Disconnecting())
	tr.EndConnection(nil)
	fmt.Println("timers left:", clk.Len())
	// Output:
	// "PING\n"
	// closing after 59s: false
	// closing after 60s: true
	// timers left: 0
}

// Two protocols talking in memory: bytes move only when the test pumps.
func ExamplePair() {
	server := &shouter{}
	client := &collector{}
	pair := transporttest.NewPair(client, server, nil)
	_ = pair.Client.Write([]byte("are you there?\n"))
	fmt.Printf("before pumping: %q\n", client.got)
	_ = pair.Flush()
	fmt.Printf("after flushing: %q\n", client.got)
	_ = pair.Client.LoseConnection()
	_ = pair.Flush()
	fmt.Println("client lost:", client.reason)
	// Output:
	// before pumping: ""
	// after flushing: "ARE YOU THERE?\n"
	// client lost: gyre: connection done
}

type collector struct {
	got    []byte
	reason error
}

func (c *collector) ConnectionMade(transports.Transport) {}
func (c *collector) DataReceived(p []byte)               { c.got = append(c.got, p...) }
func (c *collector) ConnectionLost(reason error)         { c.reason = reason }
