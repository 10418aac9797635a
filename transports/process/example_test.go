package process_test

import (
	"context"
	"fmt"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/process"
)

// upper collects a child's stdout and reports how it ended (Twisted's
// ProcessProtocol with outReceived and processEnded).
type upper struct {
	transports.ProcessProtocolBase
	out  []byte
	loop *reactor.Loop
}

func (u *upper) OutReceived(p []byte) { u.out = append(u.out, p...) } // p is borrowed: copy it

func (u *upper) ProcessEnded(st transports.ProcessStatus) {
	fmt.Printf("%q, exit code %d\n", u.out, st.Code)
	u.loop.Stop()
}

// A child's stdin and stdout through the loop: no goroutine per child, its
// exit seen through a pidfd.
func Example() {
	loop, err := reactor.New(reactor.Config{})
	if err != nil {
		panic(err)
	}
	_ = loop.Call(func() {
		p, err := process.Spawn(loop, &upper{loop: loop}, process.Config{
			Path: "sh",
			Args: []string{"sh", "-c", "tr a-z A-Z; exit 3"},
		})
		if err != nil {
			fmt.Println(err)
			loop.Stop()
			return
		}
		_ = p.Write([]byte("hello, child\n"))
		_ = p.CloseStdin() // flush, then the child reads end of file
	})
	_ = loop.Run(context.Background())
	// Output: "HELLO, CHILD\n", exit code 3
}
