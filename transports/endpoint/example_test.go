package endpoint_test

import (
	"fmt"

	"github.com/gyre-io/gyre/transports/endpoint"
)

func ExampleParseServer() {
	s, err := endpoint.ParseServer(`unix:/run/app\:1.sock:mode=660`)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Kind, s.Addr, s.UNIX.Mode)

	_, err = endpoint.ParseServer("tcp:8080:interfce=127.0.0.1")
	fmt.Println(err)
	// Output:
	// unix /run/app:1.sock -rw-rw----
	// gyre/endpoint: bad endpoint description "tcp:8080:interfce=127.0.0.1": unknown parameter interfce for tcp (known: port, interface, backlog, reusePort)
}

func ExampleQuote() {
	fmt.Println("unix:" + endpoint.Quote("/tmp/a:b=c"))
	// Output: unix:/tmp/a\:b\=c
}
