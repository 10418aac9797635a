package transports_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// hello writes a greeting as soon as it is connected.
type hello struct{}

func (hello) ConnectionMade(t transports.Transport) { _ = t.Write([]byte("hello\n")) }
func (hello) DataReceived([]byte)                   {}
func (hello) ConnectionLost(error)                  {}

// ConnectProtocol connects one protocol and reports the outcome once. Here
// the reactor is the MemoryReactor double, so the test decides the outcome;
// with a real loop, pass stream.Reactor(loop) or a transport's Reactor().
func ExampleConnectProtocol() {
	r := transporttest.NewMemoryReactor(nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	_, err := transports.ConnectProtocol(ctx, r, "tcp", "127.0.0.1:6379", hello{}, nil,
		func(t transports.Transport, err error) {
			if err != nil {
				fmt.Println("failed:", err)
				return
			}
			fmt.Println("connected to", t.RemoteAddr())
		})
	if err != nil {
		fmt.Println("not started:", err)
		return
	}
	_, tr, _ := r.LastConnect().Connector.Succeed()
	fmt.Printf("wrote %q\n", tr.String())

	// A refused attempt reports the reason instead.
	_, _ = transports.ConnectProtocol(ctx, r, "tcp", "127.0.0.1:1", hello{}, nil,
		func(t transports.Transport, err error) { fmt.Println("refused:", errors.Is(err, syscall.ECONNREFUSED)) })
	_ = r.LastConnect().Connector.Fail(syscall.ECONNREFUSED)
	// Output:
	// connected to 127.0.0.1:6379
	// wrote "hello\n"
	// refused: true
}

// ClientFactoryFunc turns a function into a ClientFactory whose notifications
// do nothing; embed ClientFactoryBase instead to override some of them.
func ExampleClientFactoryFunc() {
	r := transporttest.NewMemoryReactor(nil)
	f := transports.ClientFactoryFunc(func(addr net.Addr) transports.Protocol {
		fmt.Println("building for", addr)
		return hello{}
	})
	_, _ = r.ConnectTCP("10.0.0.1:25", f, nil)
	_, _, _ = r.LastConnect().Connector.Succeed()
	// Output: building for 10.0.0.1:25
}

// retrying counts failures and keeps the base's other no-op methods.
type retrying struct {
	transports.ClientFactoryBase
	failures int
}

func (f *retrying) ClientConnectionFailed(c transports.Connector, reason error) {
	f.failures++
	if f.failures < 3 {
		_ = c.Connect()
	}
}

// ClientFactoryBase is embedded; the embedding type overrides only what it
// needs (here: reconnect after a failure, up to three attempts).
func ExampleClientFactoryBase() {
	r := transporttest.NewMemoryReactor(nil)
	f := &retrying{ClientFactoryBase: transports.ClientFactoryBase{
		Build: func(net.Addr) transports.Protocol { return hello{} },
	}}
	c, _ := r.ConnectTCP("127.0.0.1:1", f, nil)
	fc := c.(*transporttest.FakeConnector)
	for fc.Fail(syscall.ECONNREFUSED) == nil {
	}
	fmt.Println("attempts:", fc.Attempts(), "failures:", f.failures)
	// Output: attempts: 3 failures: 3
}
