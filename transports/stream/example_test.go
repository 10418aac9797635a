package stream_test

import (
	"fmt"

	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

type printProducer struct{}

func (printProducer) PauseProducing()  { fmt.Println("pause") }
func (printProducer) ResumeProducing() { fmt.Println("resume") }
func (printProducer) StopProducing()   { fmt.Println("stop") }

// A transport's write path without a socket: the "kernel" takes at most 3
// bytes per send; the producer is paused above 8 bytes and resumed at 2.
func Example() {
	var q stream.WriteQueue
	var flow stream.Flow
	flow.Init(transports.Watermarks{High: 8, Low: 2}, nil, nil)
	_ = flow.Register(printProducer{}, true)

	q.Write([]byte("hello, "))
	q.WriteOwned([]byte("world"), func(err error) { fmt.Println("owned buffer released:", err) })
	flow.Update(q.Buffered())
	for {
		chunk, _ := q.Next()
		if chunk == nil {
			break
		}
		n := min(len(chunk), 3)
		fmt.Printf("send %q\n", chunk[:n])
		q.Sent(n)
		flow.Update(q.Buffered())
	}
	flow.Stop()
	// Output:
	// pause
	// send "hel"
	// send "lo,"
	// send " "
	// send "wor"
	// resume
	// send "ld"
	// owned buffer released: <nil>
	// stop
}
