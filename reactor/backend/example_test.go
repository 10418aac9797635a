package backend_test

import (
	"errors"
	"fmt"

	"github.com/gyre-io/gyre/reactor/backend"
)

// Validate judges an op's shape the same way for every backend, so a
// malformed op fails at Submit with one error on io_uring and on epoll.
// Ops are normally built by transports and submitted with reactor.Loop.Submit;
// see the epoll and uring packages for a backend driven by hand.
func Example() {
	ok := &backend.Op{Kind: backend.KindRecv, Multishot: true, BufferSelect: true}
	bad := &backend.Op{Kind: backend.KindRecv, Multishot: true} // multishot needs provided buffers
	fmt.Println(backend.Validate(ok))
	fmt.Println(backend.Validate(bad) != nil, errors.Is(backend.Validate(bad), backend.ErrInvalidOp))
	// Output:
	// <nil>
	// true true
}
