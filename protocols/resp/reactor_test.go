package resp

import (
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// Reactor completes discard as a transports.Transport: a MemoryReactor on its
// clock (the protocol under benchmark never opens connections).
func (d *discard) Reactor() transports.Reactor { return transporttest.NewMemoryReactor(d.clk) }

func (d *discard) PauseProducing()  {}
func (d *discard) ResumeProducing() {}
func (d *discard) StopProducing()   {}
