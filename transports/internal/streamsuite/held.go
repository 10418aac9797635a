package streamsuite

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
)

// TestNoDataAfterLoseConnectionWithHeldBytes: bytes received while reading
// was paused are held by the transport; LoseConnection stops reading for
// good (Twisted's loseConnection calls stopReading), so a ResumeReading
// afterwards must not deliver them.
func testNoDataAfterLoseConnectionWithHeldBytes(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		p, built := strictServer(t, k, h, func(i int) *strict {
			s := newStrict(t, "server")
			first := true
			s.onData = func(s *strict, _ []byte) {
				if !first {
					return
				}
				first = false
				// The rest of the burst arrives while paused and is held.
				s.tr.PauseReading()
				s.tr.Clock().CallLater(20*time.Millisecond, func() {
					// A reply the peer does not read yet keeps the
					// LoseConnection flushing for a while.
					require.NoError(t, s.tr.Write(make([]byte, 8<<20)))
					require.NoError(t, s.lose())
					s.tr.ResumeReading()
				})
			}
			return s
		})
		c := Dial(t, k, p)
		_, err := c.Write(bytes.Repeat([]byte("x"), 256<<10))
		require.NoError(t, err)
		s := waitBuilt(t, built, 1)[0]
		time.Sleep(100 * time.Millisecond)
		go func() { _, _ = io.Copy(io.Discard, c) }()
		s.waitLost(t, 5*time.Second)
		settle(h)
		_, lost, _, reason := s.state()
		require.Equal(t, 1, lost)
		require.ErrorIs(t, reason, transports.ErrConnectionDone)
	})
}

// TestHeldBytesSurvivePeerFIN: bytes held while reading was paused are still
// delivered, in order and in full, when the peer's FIN arrives during the
// pause; ConnectionLost(ErrConnectionDone) follows them.
func testHeldBytesSurvivePeerFIN(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		resumed := make(chan struct{})
		p, built := strictServer(t, k, h, func(i int) *strict {
			s := newStrict(t, "server")
			s.keep = true
			first := true
			s.onData = func(s *strict, _ []byte) {
				if first {
					first = false
					s.tr.PauseReading()
				}
			}
			return s
		})
		const total = 256 << 10
		msg := make([]byte, total)
		for i := range msg {
			msg[i] = byte(i * 7)
		}
		c := Dial(t, k, p)
		// Written from another goroutine: when the server paused before
		// the kernel had taken the whole message (a socket buffer smaller
		// than total, a loaded machine), the write can only finish after
		// ResumeReading below. Usually it finishes at once and the FIN
		// arrives while the server is paused.
		wrote := make(chan error, 1)
		go func() {
			_, err := c.Write(msg)
			if err == nil {
				err = closeWrite(c)
			}
			wrote <- err
		}()
		s := waitBuilt(t, built, 1)[0]
		waitMade(t, s)
		time.Sleep(100 * time.Millisecond) // the FIN arrives while paused
		h.Do(func() {
			if _, lost, _, _ := s.state(); lost == 0 {
				s.tr.ResumeReading()
			}
			close(resumed)
		})
		<-resumed
		select {
		case err := <-wrote:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Fatal("the client's write never finished")
		}
		s.waitLost(t, 5*time.Second)
		_, _, n, reason := s.state()
		require.Equal(t, total, n, "bytes lost")
		require.True(t, bytes.Equal(msg, s.received()), "stream differs")
		require.ErrorIs(t, reason, transports.ErrConnectionDone)
	})
}
