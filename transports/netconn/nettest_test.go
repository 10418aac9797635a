package netconn_test

import (
	"net"
	"testing"

	"golang.org/x/net/nettest"

	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports/netconn"
)

// TestNettestConn runs x/net's net.Conn conformance suite on pipes made of
// a dialed and an accepted adapter conn.
func TestNettestConn(t *testing.T) {
	each(t, func(t *testing.T, h *reactortest.Loop, network string) {
		ln := listen(t, h.Loop, network, netconn.Config{})
		defer ln.Close()
		nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
			a, b, err := pipeOn(h.Loop, ln, netconn.Config{})
			if err != nil {
				return nil, nil, nil, err
			}
			return a, b, func() { _ = a.Close(); _ = b.Close() }, nil
		})
	})
}
