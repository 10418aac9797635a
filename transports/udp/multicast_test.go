package udp_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/udp"
)

// netns is a network namespace of the test's own holding lo and a veth
// pair (gv0, gv1) with private addresses: sockets made by Do live in it,
// so nothing can leave the machine (nor even this test). The namespace
// belongs to one locked OS thread that is never unlocked: it ends with its
// goroutine, and the namespace with it. (lo cannot show loopback mode: a
// datagram sent out lo comes back in through lo whatever the mode; a veth
// end does not receive what it sends.)
type netns struct {
	do    chan func()
	done  chan struct{}
	index int // gv0's interface index
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("multicast tests run in a network namespace of their own, which needs root")
	}
	ipCmd, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("multicast tests need iproute2's ip to make a veth pair in their namespace")
	}
	ns := &netns{do: make(chan func()), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		defer close(ns.done)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		errc <- ns.setup(ipCmd)
		for f := range ns.do {
			f()
		}
	}()
	if err := <-errc; err != nil {
		close(ns.do)
		<-ns.done
		t.Skipf("no network namespace for the multicast test: %v", err)
	}
	t.Cleanup(func() { close(ns.do); <-ns.done })
	return ns
}

// setup runs on the namespace's thread (a child process forked from it is
// in the namespace too).
func (ns *netns) setup(ipCmd string) error {
	for _, f := range []string{"all", "default"} { // no DAD wait for the IPv6 link-local address
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+f+"/accept_dad", []byte("0"), 0); err != nil {
			return err
		}
	}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "gv0", "type", "veth", "peer", "name", "gv1"},
		{"addr", "add", "10.99.0.1/24", "dev", "gv0"},
		{"addr", "add", "10.99.0.2/24", "dev", "gv1"},
		{"link", "set", "gv0", "up"},
		{"link", "set", "gv1", "up"},
	} {
		if out, err := exec.Command(ipCmd, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %v: %v: %s", args, err, out)
		}
	}
	ifi, err := net.InterfaceByName("gv0")
	if err != nil {
		return err
	}
	ns.index = ifi.Index
	return nil
}

// Do runs f on the namespace's thread (sockets it makes are in the
// namespace) and waits for it.
func (ns *netns) Do(f func()) {
	done := make(chan struct{})
	ns.do <- func() { defer close(done); f() }
	<-done
}

// Multicast on IPv4 and IPv6, in the test's own namespace: two listeners
// on one group and port (SO_REUSEADDR: listenMultiple) both receive; after
// both leave, nothing is delivered until one joins again; loopback off
// keeps a datagram from this host's members; TTL / hop limit, outgoing
// interface and the errors (not a group, no such interface, a group not
// joined, a bad TTL, a stopped port).
func TestMulticast(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		ns := newNetns(t)
		for _, c := range []struct{ any, group string }{{"0.0.0.0", "239.255.42.1"}, {"::", "ff02::4242"}} {
			t.Run(c.group, func(t *testing.T) {
				fds := reactortest.FDCount()
				lo := ns.index
				h := reactortest.Start(t, kind)
				group := netip.MustParseAddr(c.group)
				r1, r2, rs := &rec{}, &rec{}, &rec{}
				var p1, p2, s *udp.Port
				var e1, e2, e3 error
				ns.Do(func() {
					p1, e1 = udp.Listen(h.Loop, hostPort(c.any, 0), r1, udp.ListenOptions{ReuseAddr: true})
					if e1 == nil {
						p2, e2 = udp.Listen(h.Loop, hostPort(c.any, p1.LocalAddr().Port()), r2, udp.ListenOptions{ReuseAddr: true})
					}
					s, e3 = udp.Listen(h.Loop, hostPort(c.any, 0), rs, udp.ListenOptions{})
				})
				require.NoError(t, e1)
				require.NoError(t, e2)
				require.NoError(t, e3)
				dst := netip.AddrPortFrom(group, p1.LocalAddr().Port())
				send := func(m string) {
					t.Helper()
					var err error
					h.Do(func() { err = s.Write([]byte(m), dst) })
					require.NoError(t, err)
				}
				h.Do(func() {
					require.NoError(t, p1.JoinGroup(group, lo))
					require.NoError(t, p2.JoinGroup(group, lo))
					require.NoError(t, s.SetOutgoingInterface(lo))
					require.NoError(t, s.SetTTL(3))
					require.NoError(t, s.SetLoopback(true))
					ttl, err := s.TTL()
					require.NoError(t, err)
					require.Equal(t, 3, ttl)
					oif, err := s.OutgoingInterface()
					require.NoError(t, err)
					require.Equal(t, lo, oif)
					loop, err := s.Loopback()
					require.NoError(t, err)
					require.True(t, loop)
				})
				send("m1")
				require.True(t, reactortest.WaitUntil(wait, func() bool { return r1.count() == 1 && r2.count() == 1 }), "both listeners get m1")

				h.Do(func() {
					require.NoError(t, p1.LeaveGroup(group, lo))
					require.NoError(t, p2.LeaveGroup(group, lo))
					err := p1.LeaveGroup(group, lo)
					require.ErrorIs(t, err, udp.ErrMulticastJoin, "a group not joined")
				})
				send("m2") // no member: delivered to nobody
				h.Do(func() { require.NoError(t, p1.JoinGroup(group, lo)) })
				h.Do(func() { require.NoError(t, s.SetLoopback(false)) })
				send("m3") // loopback off: not for this host's members
				h.Do(func() {
					require.NoError(t, s.SetLoopback(true))
					on, err := s.Loopback()
					require.NoError(t, err)
					require.True(t, on)
				})
				send("m4")
				require.True(t, reactortest.WaitUntil(wait, func() bool { return r1.count() == 2 }))
				got, _, _, _, _ := r1.snapshot()
				require.Equal(t, "m1", string(got[0].data))
				require.Equal(t, "m4", string(got[1].data), "m2 (no member) and m3 (loopback off) were not delivered")
				require.Equal(t, s.LocalAddr().Port(), got[1].from.Port())

				h.Do(func() {
					require.ErrorIs(t, p1.JoinGroup(netip.MustParseAddr("127.0.0.1"), lo), transports.ErrBadOptions)
					require.ErrorIs(t, p1.JoinGroup(group, 9999), udp.ErrMulticastJoin)
					require.ErrorIs(t, s.SetTTL(256), transports.ErrBadOptions)
				})
				stop(t, h, p1, r1)
				stop(t, h, p2, r2)
				stop(t, h, s, rs)
				h.Do(func() {
					require.ErrorIs(t, p1.JoinGroup(group, lo), transports.ErrClosed)
					require.ErrorIs(t, s.SetTTL(1), transports.ErrClosed)
					_, err := s.OutgoingInterface()
					require.ErrorIs(t, err, transports.ErrClosed)
				})
				h.StopWait()
				require.Empty(t, h.Errors())
				require.Equal(t, fds, reactortest.FDCount())
			})
		}
	})
}

func hostPort(host string, port uint16) string {
	return netip.AddrPortFrom(netip.MustParseAddr(host), port).String()
}
