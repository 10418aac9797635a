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

// PauseProducing implements transports.PushProducer (every transport is one):
// the inner protocol's transport pauses reading.
func (w *ProtocolWrapper) PauseProducing() { w.PauseReading() }

// ResumeProducing implements transports.PushProducer: reading resumes.
func (w *ProtocolWrapper) ResumeProducing() { w.ResumeReading() }

// StopProducing implements transports.PushProducer: LoseConnection.
func (w *ProtocolWrapper) StopProducing() { _ = w.LoseConnection() }
