package streamsuite

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
)

// closeStep is one Abort/LoseConnection (and what it must return) in a
// cancel-race case.
type closeStep func(t *testing.T, s *strict)

func stepAbort(t *testing.T, s *strict) { require.NoError(t, s.abort()) }
func stepLose(t *testing.T, s *strict)  { require.NoError(t, s.lose()) }
func stepWrite(t *testing.T, s *strict) { require.NoError(t, s.tr.Write([]byte("reply"))) }
func stepWriteClosed(t *testing.T, s *strict) {
	require.ErrorIs(t, s.tr.Write([]byte("late")), transports.ErrClosed)
}

// wantReason: either ErrAborted, ErrConnectionDone, or nil for "either".
type cancelCase struct {
	name   string
	inMade []closeStep
	inData []closeStep
	want   error
	reply  bool // the peer must receive "reply" before the end
}

var cancelCases = []cancelCase{
	{name: "abort in ConnectionMade", inMade: []closeStep{stepAbort, stepWriteClosed}, want: transports.ErrAborted},
	{name: "lose in ConnectionMade", inMade: []closeStep{stepLose, stepWriteClosed}, want: transports.ErrConnectionDone},
	{name: "write and lose in ConnectionMade", inMade: []closeStep{stepWrite, stepLose}, want: transports.ErrConnectionDone, reply: true},
	{name: "abort twice in ConnectionMade", inMade: []closeStep{stepAbort, stepAbort}, want: transports.ErrAborted},
	{name: "abort in DataReceived", inData: []closeStep{stepAbort}, want: transports.ErrAborted},
	{name: "lose in DataReceived", inData: []closeStep{stepWrite, stepLose}, want: transports.ErrConnectionDone, reply: true},
	{name: "lose twice", inData: []closeStep{stepWrite, stepLose, stepLose}, want: transports.ErrConnectionDone, reply: true},
	{name: "abort after lose", inData: []closeStep{stepWrite, stepLose, stepAbort}},
	{name: "lose after abort", inData: []closeStep{stepWrite, stepAbort, stepLose, stepWriteClosed}, want: transports.ErrAborted},
	{name: "abort in made, lose in data", inMade: []closeStep{stepAbort}, inData: []closeStep{stepLose}, want: transports.ErrAborted},
}

func checkReason(t *testing.T, want, reason error) {
	t.Helper()
	switch want {
	case transports.ErrAborted:
		require.ErrorIs(t, reason, transports.ErrConnectionLost)
		require.ErrorIs(t, reason, transports.ErrAborted)
	case transports.ErrConnectionDone:
		require.ErrorIs(t, reason, transports.ErrConnectionDone)
	default:
		require.True(t, errors.Is(reason, transports.ErrConnectionDone) || errors.Is(reason, transports.ErrAborted),
			"reason %v", reason)
	}
}

// settle lets the loop run a few more turns and a little time, so that a late
// callback (which strict reports) would have happened.
func settle(h *reactortest.Loop) {
	for i := 0; i < 3; i++ {
		h.Do(func() {})
	}
	time.Sleep(10 * time.Millisecond)
	h.Do(func() {})
}

// TestCancelRacesServer closes accepted connections from ConnectionMade and
// DataReceived in every combination of Abort and LoseConnection.
func testCancelRacesServer(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		for _, tc := range cancelCases {
			t.Run(tc.name, func(t *testing.T) {
				p, built := strictServer(t, k, h, func(i int) *strict {
					s := newStrict(t, fmt.Sprintf("%s #%d", tc.name, i))
					s.onMade = func(s *strict) {
						for _, st := range tc.inMade {
							st(t, s)
						}
					}
					first := true
					s.onData = func(s *strict, _ []byte) {
						if first {
							first = false
							for _, st := range tc.inData {
								st(t, s)
							}
						}
					}
					return s
				})
				c, err := net.DialTimeout(k.Network, p.Addr().String(), 5*time.Second)
				var got []byte
				if err == nil {
					_ = c.SetDeadline(time.Now().Add(10 * time.Second))
					_, _ = c.Write([]byte("hello"))
					got, err = io.ReadAll(c)
					_ = c.Close()
				}
				if tc.reply {
					if k.Caps.EOFBeforeUnreadReset || !errors.Is(err, syscall.ECONNRESET) {
						require.NoError(t, err)
					}
					require.Equal(t, "reply", string(got))
				} else {
					require.True(t, err == nil || errors.Is(err, syscall.ECONNRESET), "peer read: %v", err)
				}
				s := waitBuilt(t, built, 1)[0]
				s.waitLost(t, 5*time.Second)
				settle(h)
				made, lost, _, reason := s.state()
				require.Equal(t, 1, made)
				require.Equal(t, 1, lost)
				checkReason(t, tc.want, reason)
			})
		}
	})
}

// cancelClient is a ClientFactory for one strict client protocol.
type cancelClient struct {
	proto  *strict
	mu     sync.Mutex
	lost   []error
	failed []error
	done   chan struct{}
}

func (f *cancelClient) BuildProtocol(net.Addr) transports.Protocol { return f.proto }
func (f *cancelClient) StartedConnecting(transports.Connector)     {}
func (f *cancelClient) ClientConnectionFailed(_ transports.Connector, err error) {
	f.mu.Lock()
	f.failed = append(f.failed, err)
	f.mu.Unlock()
	close(f.done)
}
func (f *cancelClient) ClientConnectionLost(_ transports.Connector, err error) {
	f.mu.Lock()
	f.lost = append(f.lost, err)
	f.mu.Unlock()
	close(f.done)
}

// TestCancelRacesClient runs the same cases on connections made with
// tcp.Connect, the peer being a server that says "hello" on connect and
// echoes.
func testCancelRacesClient(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		ln := k.netListen(t)
		var wg sync.WaitGroup
		t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
		replies := make(chan string, len(cancelCases))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(10 * time.Second))
					_, _ = c.Write([]byte("hello"))
					b, _ := io.ReadAll(c)
					replies <- string(b)
				}()
			}
		}()
		for _, tc := range cancelCases {
			t.Run(tc.name, func(t *testing.T) {
				s := newStrict(t, tc.name)
				s.onMade = func(s *strict) {
					for _, st := range tc.inMade {
						st(t, s)
					}
				}
				first := true
				s.onData = func(s *strict, _ []byte) {
					if first {
						first = false
						for _, st := range tc.inData {
							st(t, s)
						}
					}
				}
				f := &cancelClient{proto: s, done: make(chan struct{})}
				_, err := k.Connect(h.Loop, ln.Addr().String(), f, 0)
				require.NoError(t, err)
				select {
				case <-f.done:
				case <-time.After(10 * time.Second):
					t.Fatal("client connection did not end")
				}
				select {
				case r := <-replies:
					if tc.reply {
						require.Equal(t, "reply", r)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("server side did not end")
				}
				settle(h)
				made, lost, _, reason := s.state()
				require.Equal(t, 1, made)
				require.Equal(t, 1, lost)
				checkReason(t, tc.want, reason)
				f.mu.Lock()
				defer f.mu.Unlock()
				require.Empty(t, f.failed)
				require.Len(t, f.lost, 1)
				require.Equal(t, reason, f.lost[0])
			})
		}
	})
}

// TestCancelRacesFromOtherGoroutines closes echoing connections from Call on
// other goroutines while data flows both ways: Abort, LoseConnection, both
// racing from two goroutines, and twice each.
func testCancelRacesFromOtherGoroutines(t *testing.T, k *Kind) {
	type action struct {
		name  string
		steps [][]closeStep // one goroutine per entry, each its own Call
		want  error
	}
	actions := []action{
		{"abort", [][]closeStep{{stepAbort}}, transports.ErrAborted},
		{"lose", [][]closeStep{{stepLose}}, transports.ErrConnectionDone},
		{"lose twice", [][]closeStep{{stepLose, stepLose}}, transports.ErrConnectionDone},
		{"abort twice", [][]closeStep{{stepAbort}, {stepAbort}}, transports.ErrAborted},
		{"abort vs lose", [][]closeStep{{stepAbort}, {stepLose}}, nil},
		{"lose then abort", [][]closeStep{{stepLose, stepAbort}}, nil},
		{"abort then lose", [][]closeStep{{stepAbort, stepLose}}, transports.ErrAborted},
	}
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		for _, a := range actions {
			t.Run(a.name, func(t *testing.T) {
				p, built := strictServer(t, k, h, func(i int) *strict {
					s := newStrict(t, fmt.Sprintf("%s #%d", a.name, i))
					s.onData = func(s *strict, p []byte) { _ = s.tr.Write(p) }
					return s
				})
				rounds := scaled(10, 4)
				for r := 0; r < rounds; r++ {
					c, err := net.DialTimeout(k.Network, p.Addr().String(), 5*time.Second)
					require.NoError(t, err)
					_ = c.SetDeadline(time.Now().Add(10 * time.Second))
					var peers sync.WaitGroup
					peers.Add(2)
					go func() { // writer
						defer peers.Done()
						buf := make([]byte, 4096)
						for {
							if _, err := c.Write(buf); err != nil {
								return
							}
						}
					}()
					go func() { // reader
						defer peers.Done()
						_, _ = io.Copy(io.Discard, c)
					}()
					s := waitBuilt(t, built, r+1)[r]
					// Let data flow for a moment, then close from other
					// goroutines through Call.
					require.True(t, h.Eventually(5*time.Second, func() bool { _, _, n, _ := s.state(); return n > 0 }))
					time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
					var callers sync.WaitGroup
					for _, steps := range a.steps {
						callers.Add(1)
						go func() {
							defer callers.Done()
							if err := h.Call(func() {
								for _, st := range steps {
									st(t, s)
								}
							}); err != nil {
								t.Errorf("Call: %v", err)
							}
						}()
					}
					callers.Wait()
					s.waitLost(t, 10*time.Second)
					// The peer sees the end (EOF or RST) and its goroutines
					// finish; closing c unblocks a writer stuck on a full
					// window after a clean FIN.
					_ = c.Close()
					peers.Wait()
					settle(h)
					made, lost, _, reason := s.state()
					require.Equal(t, 1, made)
					require.Equal(t, 1, lost)
					if a.want == transports.ErrConnectionDone {
						// A clean close can still end lost: the peer keeps
						// sending after our FIN and resets when closed.
						require.True(t, errors.Is(reason, transports.ErrConnectionDone) || errors.Is(reason, transports.ErrConnectionLost), "reason %v", reason)
					} else {
						checkReason(t, a.want, reason)
					}
				}
			})
		}
	})
}
