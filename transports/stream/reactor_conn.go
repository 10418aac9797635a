package stream

import "github.com/gyre-io/gyre/transports"

// Reactor implements transports.Transport: the connection's loop as a
// transports.Reactor (see Reactor), so a protocol can open further
// connections (Twisted's transport.reactor). Loop only.
func (c *Conn) Reactor() transports.Reactor { return Reactor(c.loop) }

// Conn is a push producer (Twisted's transports are IPushProducers), so
// proxying one connection into another is two RegisterProducer calls:
// b.RegisterProducer(a, true) pauses reading a while b's write queue is above
// its high watermark.
var _ transports.PushProducer = (*Conn)(nil)

// PauseProducing implements transports.PushProducer: PauseReading.
func (c *Conn) PauseProducing() { c.PauseReading() }

// ResumeProducing implements transports.PushProducer: ResumeReading.
func (c *Conn) ResumeProducing() { c.ResumeReading() }

// StopProducing implements transports.Producer: the consumer is gone, so
// the connection is closed after its queue is flushed (LoseConnection).
func (c *Conn) StopProducing() { _ = c.LoseConnection() }
