package epoll_test

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/backend/epoll"
)

// A receive submitted before the data exists parks on its socket and completes
// once the send makes the socket readable, all within one Wait.
func Example() {
	b, err := epoll.New(backend.Config{})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		panic(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])

	buf := make([]byte, 16)
	recv := &backend.Op{Kind: backend.KindRecv, Token: backend.MakeToken(1, 1), Fd: int32(fds[1]), Buf: buf}
	send := &backend.Op{Kind: backend.KindSend, Token: backend.MakeToken(2, 1), Fd: int32(fds[0]), Buf: []byte("hello")}
	_ = b.Submit(recv)
	_ = b.Submit(send)

	out := make([]backend.Completion, 4)
	for done := 0; done < 2; {
		n, err := b.Wait(out, time.Second)
		if err != nil {
			panic(err)
		}
		for _, c := range out[:n] {
			done++
			if c.Token == recv.Token {
				fmt.Printf("received %q\n", buf[:c.Res])
			}
		}
	}
	// Output: received "hello"
}
