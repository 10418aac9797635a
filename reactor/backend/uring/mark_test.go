package uring_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
	uringbe "github.com/gyre-io/gyre/reactor/backend/uring"
)

// The urgent-mark recovery (mark_linux.go) asks a socket with an ioctl only
// after a pass ended on a "more queued" completion: a stream without urgent
// data, 8 MiB written as fast as the reader takes it, costs almost none — and
// none of the cost may fall on every completion. The multishot variants with
// and without large buffers and per-arming limits are measured.
func TestUrgentMarkChecksRare(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    uringbe.Options
	}{
		{"native", uringbe.Options{}},
		{"small_inc", uringbe.Options{NoLargeInc: true}},
		{"no_bufinc", uringbe.Options{NoBufInc: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t, backend.Config{}, tc.o)
			if !b.RingFeatures().MultishotRecv {
				t.Skip("kernel lacks multishot recv")
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer ln.Close()
			c, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			s, err := ln.Accept()
			require.NoError(t, err)
			f, err := s.(*net.TCPConn).File()
			require.NoError(t, err)
			defer f.Close()
			s.Close()
			fd := int(f.Fd())
			require.NoError(t, unix.SetNonblock(fd, true))

			const total = 8 << 20
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				chunk := make([]byte, 256<<10)
				for left := total; left > 0; left -= len(chunk) {
					if _, err := c.Write(chunk[:min(len(chunk), left)]); err != nil {
						return
					}
				}
			}()
			defer wg.Wait()
			op := &backend.Op{Kind: backend.KindRecv, Fd: int32(fd), BufferSelect: true, Multishot: true, Token: backend.MakeToken(1, 1)}
			require.NoError(t, b.Submit(op))
			out := make([]backend.Completion, 64)
			got, completions := 0, 0
			for deadline := time.Now().Add(20 * time.Second); got < total; {
				require.True(t, time.Now().Before(deadline), "received %d of %d", got, total)
				k, err := b.Wait(out, 100*time.Millisecond)
				require.NoError(t, err)
				for _, c := range out[:k] {
					require.True(t, c.More(), "res %d", c.Res)
					got += len(c.Buf)
					b.ReleaseBuffer(c.BufID)
					completions++
				}
			}
			checks := b.Stats().UrgentMarkChecks
			t.Logf("%s: %d completions, %d SIOCATMARK checks", tc.name, completions, checks)
			require.LessOrEqual(t, checks, uint64(completions/8+1), "mark checks must be rare without urgent data")
			c.Close()
			require.NoError(t, b.Submit(&backend.Op{Kind: backend.KindCancel, Target: op.Token, Token: backend.MakeToken(2, 1)}))
			for done := false; !done; {
				k, err := b.Wait(out, time.Second)
				require.NoError(t, err)
				require.NotZero(t, k, "cancel never completed")
				for _, c := range out[:k] {
					if c.Flags&backend.FlagBuffer != 0 {
						b.ReleaseBuffer(c.BufID)
					}
					if c.Token == op.Token && !c.More() {
						done = true
					}
				}
			}
		})
	}
}
