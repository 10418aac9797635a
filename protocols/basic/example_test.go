package basic_test

import (
	"bytes"
	"fmt"
	"net"

	"github.com/gyre-io/gyre/protocols/basic"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// shout answers each line in upper case. It embeds a LineReceiver and points
// the receiver's callback at its own method.
type shout struct{ basic.LineReceiver }

func newShout() *shout {
	s := &shout{}
	s.OnLine = s.lineReceived // required: a line for a nil OnLine ends the connection
	return s
}

// ConnectionMade overrides the embedded one, so it must call it: without
// that call the receiver has no transport and SendLine fails (with an error
// that says so).
func (s *shout) ConnectionMade(t transports.Transport) {
	s.LineReceiver.ConnectionMade(t)
	_ = s.SendLine([]byte("HELLO, SAY SOMETHING"))
}

func (s *shout) lineReceived(line []byte) {
	_ = s.SendLine(bytes.ToUpper(line)) // line is borrowed; SendLine copies it
}

// A line protocol (Twisted's LineReceiver) embedded in your own type. The
// default delimiter is "\r\n", as in Twisted: lines ended by a bare "\n" are
// not lines yet.
func ExampleLineReceiver() {
	tr := transporttest.NewStringTransport(nil) // in a server: a factory returns newShout()
	p := newShout()
	transporttest.Connect(p, tr)
	p.DataReceived([]byte("hello\r\nwor"))
	p.DataReceived([]byte("ld\r\n"))
	p.DataReceived([]byte("no line yet\n")) // "\n" alone does not end a line
	fmt.Printf("%q\n", tr.String())
	// Output: "HELLO, SAY SOMETHING\r\nHELLO\r\nWORLD\r\n"
}

// Peers that end lines with "\n" (nc, shell scripts, most text tools) need
// Delimiter set to "\n"; a "\r\n" peer then leaves a "\r" at the end of each
// line, which TrimSuffix removes.
func ExampleLineReceiver_newlineDelimited() {
	tr := transporttest.NewStringTransport(nil)
	r := &basic.LineReceiver{Delimiter: []byte("\n")}
	r.OnLine = func(line []byte) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		_ = r.SendLine(append([]byte("echo: "), line...))
	}
	transporttest.Connect(r, tr)
	r.DataReceived([]byte("from nc\nfrom telnet\r\n"))
	fmt.Printf("%q\n", tr.String())
	// Output: "echo: from nc\necho: from telnet\n"
}

// A framer in a server: a factory makes one receiver per connection (here
// tested with transporttest; pass the same factory to tcp.Listen).
func Example() {
	factory := transports.FactoryFunc(func(net.Addr) transports.Protocol {
		r := &basic.LineOnlyReceiver{Delimiter: []byte("\n")}
		r.OnLine = func(line []byte) {
			if string(line) == "quit" {
				_ = r.LoseConnection()
				return
			}
			_ = r.SendLine(line)
		}
		return r
	})
	tr := transporttest.NewStringTransport(nil)
	p := transporttest.Connect(factory(tr.RemoteAddr()), tr)
	p.DataReceived([]byte("one\ntwo\nquit\nthree\n"))
	fmt.Printf("%q closing=%v\n", tr.String(), tr.Disconnecting())
	// Output: "one\ntwo\n" closing=true
}
