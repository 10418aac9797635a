package policies_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/protocols/policies"
	"github.com/gyre-io/gyre/transports"
)

// TestWrappedEchoKeepsFlowControl: a protocol that pauses reading while its
// write queue is full (echo) keeps doing so behind a wrapper, and a policy's
// read hold and the queue's pause compose: neither's end resumes reading the
// other still wants paused.
func TestWrappedEchoKeepsFlowControl(t *testing.T) {
	f := &policies.WrappingFactory{Wrapped: echo.Factory{}}
	p, tr := dial(f, nil, peer)
	w := p.(*policies.ProtocolWrapper)
	tr.CountWrites = true
	tr.Watermarks = transports.Watermarks{High: 100, Low: 10}
	tr.Receive(make([]byte, 150))
	require.True(t, tr.ReadingPaused(), "the queue is above the high watermark")

	w.HoldReading()
	tr.SetPending(0)
	require.True(t, tr.ReadingPaused(), "the policy still holds reading")
	w.ReleaseReading()
	require.False(t, tr.ReadingPaused())

	tr.Receive(make([]byte, 150))
	require.True(t, tr.ReadingPaused())
	w.HoldReading()
	w.ReleaseReading()
	require.True(t, tr.ReadingPaused(), "the queue is still full")
	tr.SetPending(0)
	require.False(t, tr.ReadingPaused())
	require.Len(t, tr.Value(), 300)
}
