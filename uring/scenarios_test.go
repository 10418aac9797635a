package uring_test

import (
	"bytes"
	"os/exec"
	"testing"
	"time"

	"github.com/gyre-io/gyre/uring"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Scenarios shared by every ring kind (see testRing).

const waitLimit = 5 * time.Second

func TestNopRoundTrips(t *testing.T) {
	forEachRing(t, func(t *testing.T, k ringKind) {
		r := k.open(t, 8, 0)
		for round := 0; round < 50; round++ {
			for i := 0; i < 8; i++ {
				require.NoError(t, r.Nop(uint64(round*100+i)))
			}
			got := collect(t, r, 8, waitLimit)
			m := byUD(got)
			for i := 0; i < 8; i++ {
				c, ok := m[uint64(round*100+i)]
				require.True(t, ok, "round %d: nop %d missing", round, i)
				require.Equal(t, int32(0), c.Res)
			}
		}
	})
}

func TestTimeouts(t *testing.T) {
	forEachRing(t, func(t *testing.T, k ringKind) {
		r := k.open(t, 8, 0)
		ts := &unix.Timespec{Nsec: int64(5 * time.Millisecond)}
		long := &unix.Timespec{Sec: 60}

		// A pure timer fires with -ETIME.
		require.NoError(t, r.Timeout(1, ts, 0))
		c := collect(t, r, 1, waitLimit)[0]
		require.Equal(t, uint64(1), c.UserData)
		require.Equal(t, -int32(unix.ETIME), c.Res)

		// A removed timeout completes with -ECANCELED; the removal with 0.
		require.NoError(t, r.Timeout(2, long, 0))
		require.NoError(t, r.Submit())
		require.NoError(t, r.TimeoutRemove(3, 2))
		m := byUD(collect(t, r, 2, waitLimit))
		require.Equal(t, -int32(unix.ECANCELED), m[2].Res)
		require.Equal(t, int32(0), m[3].Res)

		// Removing an unknown timeout: -ENOENT.
		require.NoError(t, r.TimeoutRemove(4, 999))
		c = collect(t, r, 1, waitLimit)[0]
		require.Equal(t, -int32(unix.ENOENT), c.Res)

		// A counting timeout completes (Res 0) after count other completions.
		require.NoError(t, r.Timeout(5, long, 2))
		require.NoError(t, r.Nop(6))
		require.NoError(t, r.Nop(7))
		m = byUD(collect(t, r, 3, waitLimit))
		require.Equal(t, int32(0), m[5].Res)
	})
}

func TestPipeReadWrite(t *testing.T) {
	forEachRing(t, func(t *testing.T, k ringKind) {
		r := k.open(t, 8, 0)
		p := pipe(t)
		in := bytes.Repeat([]byte("gyre pipe "), 100)
		out := make([]byte, len(in))
		require.NoError(t, r.Read(1, p[0], out)) // pending: pipe empty
		require.NoError(t, r.Submit())
		require.NoError(t, r.Write(2, p[1], in))
		m := byUD(collect(t, r, 2, waitLimit))
		require.Equal(t, int32(len(in)), m[2].Res)
		require.Equal(t, int32(len(in)), m[1].Res)
		require.Equal(t, in, out)
	})
}

func TestSocketpairSendRecv(t *testing.T) {
	forEachRing(t, func(t *testing.T, k ringKind) {
		r := k.open(t, 8, 0)
		sv := socketpair(t)
		msg := []byte("hello over io_uring")
		buf := make([]byte, 64)
		for i := 0; i < 20; i++ {
			require.NoError(t, r.Recv(1, sv[1], buf))
			require.NoError(t, r.Submit())
			require.NoError(t, r.Send(2, sv[0], msg))
			m := byUD(collect(t, r, 2, waitLimit))
			require.Equal(t, int32(len(msg)), m[2].Res)
			require.Equal(t, int32(len(msg)), m[1].Res)
			require.Equal(t, msg, buf[:m[1].Res])
		}
		// End of stream: recv returns 0.
		require.NoError(t, unix.Shutdown(sv[0], unix.SHUT_WR))
		require.NoError(t, r.Recv(3, sv[1], buf))
		require.Equal(t, int32(0), collect(t, r, 1, waitLimit)[0].Res)
	})
}

func TestMultishotAccept(t *testing.T) {
	if !kernelFeatures(t).MultishotAccept {
		t.Skip("kernel lacks multishot accept (5.19+)")
	}
	forEachRing(t, func(t *testing.T, k ringKind) {
		r := k.open(t, 8, 64)
		const conns = 40
		ln, port := tcpListener(t, conns)
		require.NoError(t, r.MultishotAccept(1, ln))
		require.NoError(t, r.Submit())
		for i := 0; i < conns; i++ {
			tcpDial(t, port)
		}
		seen := map[int32]bool{}
		rearms := 0
		for len(seen) < conns {
			c := collect(t, r, 1, waitLimit)[0]
			require.Equal(t, uint64(1), c.UserData)
			require.GreaterOrEqual(t, c.Res, int32(0), "accept failed: %v", c.Err())
			require.False(t, seen[c.Res], "descriptor %d accepted twice", c.Res)
			seen[c.Res] = true
			fd := int(c.Res)
			t.Cleanup(func() { unix.Close(fd) })
			_, err := unix.Getpeername(fd)
			require.NoError(t, err)
			if !c.More() {
				// The kernel ended the multishot (it does when the CQ is full):
				// the caller re-arms, and no connection is lost.
				rearms++
				require.Less(t, rearms, conns)
				require.NoError(t, r.MultishotAccept(1, ln))
			}
		}
		t.Logf("re-armed %d times", rearms)
		if _, ours := r.(*ourRing); ours {
			require.Zero(t, rearms, "a CQ sized for the burst must keep the multishot armed")
		}
		require.NoError(t, r.Cancel(2, 1))
		m := byUD(collect(t, r, 2, waitLimit))
		require.Equal(t, -int32(unix.ECANCELED), m[1].Res)
		require.False(t, m[1].More())
		require.Equal(t, int32(0), m[2].Res)
	})
}

func TestMultishotRecvBufRingExhaustion(t *testing.T) {
	f := kernelFeatures(t)
	if !f.BufRing || !f.MultishotRecv {
		t.Skip("kernel lacks buffer rings or multishot recv (6.0+)")
	}
	forEachRing(t, func(t *testing.T, k ringKind) {
		r := k.open(t, 8, 64)
		const group, nbuf, size = 7, 4, 8
		br, err := r.NewBufRing(group, nbuf, size)
		require.NoError(t, err)
		defer func() { require.NoError(t, br.Close()) }()
		sv := socketpair(t)
		sent := make([]byte, 100)
		for i := range sent {
			sent[i] = byte('a' + i%26)
		}
		n, err := unix.Write(sv[0], sent)
		require.NoError(t, err)
		require.Equal(t, len(sent), n)

		var got []byte
		exhausted := 0
		for arm := 0; arm < 20 && len(got) < len(sent); arm++ {
			require.NoError(t, r.RecvMultishot(uint64(100+arm), sv[1], group))
			var used []uint16
			for {
				c := collect(t, r, 1, waitLimit)[0]
				require.Equal(t, uint64(100+arm), c.UserData)
				if c.Res > 0 {
					require.True(t, c.HasBuffer())
					id := c.BufferID()
					got = append(got, br.Buffer(id)[:c.Res]...)
					used = append(used, id)
				}
				if !c.More() {
					if c.Res == -int32(unix.ENOBUFS) {
						exhausted++
						// The data the ring had no room for is still in the socket.
						inq, err := unix.IoctlGetInt(sv[1], unix.SIOCINQ)
						require.NoError(t, err)
						require.Equal(t, len(sent)-len(got), inq)
					} else if c.Res <= 0 {
						require.Failf(t, "multishot recv ended", "res %d", c.Res)
					}
					break
				}
				if len(got) == len(sent) {
					// All data in; stop the still-armed request.
					require.NoError(t, r.Cancel(1, uint64(100+arm)))
					rest := collect(t, r, 2, waitLimit)
					m := byUD(rest)
					require.Equal(t, -int32(unix.ECANCELED), m[uint64(100+arm)].Res)
					break
				}
			}
			for _, id := range used {
				br.Recycle(id)
			}
		}
		require.Greater(t, exhausted, 0, "the buffer ring never ran dry")
		require.Equal(t, sent, got)
	})
}

func TestSendZC(t *testing.T) {
	if !kernelFeatures(t).SendZC {
		t.Skip("kernel lacks IORING_OP_SEND_ZC (6.0+)")
	}
	forEachRing(t, func(t *testing.T, k ringKind) {
		r := k.open(t, 8, 0)
		c, s := tcpPair(t)
		msg := bytes.Repeat([]byte("z"), 64<<10)
		require.NoError(t, r.SendZC(1, c, msg))
		first := collect(t, r, 1, waitLimit)[0]
		require.Equal(t, uint64(1), first.UserData)
		require.False(t, first.Notif(), "notification came first")
		require.Equal(t, int32(len(msg)), first.Res)
		require.True(t, first.More(), "send_zc result without a notification to follow")
		notif := collect(t, r, 1, waitLimit)[0]
		require.Equal(t, uint64(1), notif.UserData)
		require.True(t, notif.Notif())
		require.False(t, notif.More())
		t.Logf("notification res %#x (bit 31: data was copied)", uint32(notif.Res))
		// The peer got every byte.
		got := make([]byte, 0, len(msg))
		buf := make([]byte, 16<<10)
		for i := 0; i < 1000 && len(got) < len(msg); i++ {
			n, err := unix.Read(s, buf)
			if err == unix.EAGAIN {
				time.Sleep(time.Millisecond)
				continue
			}
			require.NoError(t, err)
			got = append(got, buf[:n]...)
		}
		require.Equal(t, msg, got)
	})
}

func TestCancel(t *testing.T) {
	forEachRing(t, func(t *testing.T, k ringKind) {
		r := k.open(t, 8, 0)
		sv := socketpair(t)
		buf := make([]byte, 16)

		// By user data: the target ends with -ECANCELED, the cancel with 0.
		require.NoError(t, r.Recv(1, sv[1], buf))
		require.NoError(t, r.Submit())
		require.NoError(t, r.Cancel(2, 1))
		m := byUD(collect(t, r, 2, waitLimit))
		require.Equal(t, -int32(unix.ECANCELED), m[1].Res)
		require.Equal(t, int32(0), m[2].Res)

		// Unknown user data: -ENOENT.
		require.NoError(t, r.Cancel(3, 12345))
		require.Equal(t, -int32(unix.ENOENT), collect(t, r, 1, waitLimit)[0].Res)

		// By descriptor, all: both requests on sv[1] end; the cancel counts 2.
		require.NoError(t, r.Recv(4, sv[1], buf))
		require.NoError(t, r.PollAdd(5, sv[1], unix.POLLIN))
		require.NoError(t, r.Recv(6, sv[0], buf)) // other fd: untouched
		require.NoError(t, r.Submit())
		require.NoError(t, r.CancelFd(7, sv[1]))
		m = byUD(collect(t, r, 3, waitLimit))
		require.Equal(t, -int32(unix.ECANCELED), m[4].Res)
		require.Equal(t, -int32(unix.ECANCELED), m[5].Res)
		require.Equal(t, int32(2), m[7].Res)
		// sv[0]'s recv is still pending; end it.
		require.NoError(t, r.CancelFd(8, sv[0]))
		m = byUD(collect(t, r, 2, waitLimit))
		require.Equal(t, -int32(unix.ECANCELED), m[6].Res)
		require.Equal(t, int32(1), m[8].Res)
	})
}

// TestTinyRing keeps 64 requests in flight on a ring with 2 SQ and 4 CQ
// entries: the SQ fills (submit and retry), and the 64 completions arriving at
// once overflow the CQ, which must lose none of them.
func TestTinyRing(t *testing.T) {
	forEachRing(t, func(t *testing.T, k ringKind) {
		r := k.open(t, 2, 4)
		p := pipe(t)
		const n = 64
		for i := 0; i < n; i++ {
			require.NoError(t, r.PollAdd(uint64(i), p[0], unix.POLLIN))
		}
		require.NoError(t, r.Submit())
		_, err := unix.Write(p[1], []byte{1})
		require.NoError(t, err)
		got := collect(t, r, n, waitLimit)
		m := byUD(got)
		require.Len(t, m, n)
		for i := 0; i < n; i++ {
			require.Equal(t, int32(unix.POLLIN), m[uint64(i)].Res&unix.POLLIN, "poll %d", i)
		}
		require.NoError(t, r.Nop(1000))
		require.Equal(t, uint64(1000), collect(t, r, 1, waitLimit)[0].UserData)
	})
}

// TestEINTRDuringWait interrupts a blocking wait with SIGCHLD, both from a real
// child process and sent at the waiting thread; the wait must neither fail nor
// return before its completion.
func TestEINTRDuringWait(t *testing.T) {
	forEachRing(t, func(t *testing.T, k ringKind) {
		r := k.open(t, 4, 0)
		tid := unix.Gettid()
		pid := unix.Getpid()
		// A child first (its SIGCHLD handling set up), before the clock
		// starts: under load exec can take longer than the wait.
		require.NoError(t, exec.Command("true").Run())
		ts := &unix.Timespec{Nsec: int64(300 * time.Millisecond)}
		require.NoError(t, r.Timeout(1, ts, 0))
		require.NoError(t, r.Submit())
		done := make(chan error, 1)
		stop := make(chan struct{})
		go func() {
			// Signal the waiting thread until the wait is over.
			for {
				select {
				case <-stop:
					done <- nil
					return
				case <-time.After(20 * time.Millisecond):
					_ = unix.Tgkill(pid, tid, unix.SIGCHLD)
				}
			}
		}()
		defer func() { close(stop); <-done }()
		start := time.Now()
		require.NoError(t, r.Wait(1, -1))
		var c [1]uring.CQE
		require.Equal(t, 1, r.Reap(c[:]), "wait returned after %v without a completion", time.Since(start))
		require.Equal(t, -int32(unix.ETIME), c[0].Res)
		if o, ok := r.(*ourRing); ok {
			// SIGCHLD aimed at the waiting thread interrupts io_uring_enter.
			require.Greater(t, uring.EINTRCount(o.r), uint64(0), "no EINTR was seen; the test proved nothing")
		}
	})
}
