package policies

import "github.com/gyre-io/gyre/transports"

// Reactor implements transports.Transport: the real transport's reactor (nil
// before ConnectionMade).
func (w *ProtocolWrapper) Reactor() transports.Reactor {
	if w.t == nil {
		return nil
	}
	return w.t.Reactor()
}
