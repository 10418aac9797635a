package sockaddr

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestRawRoundTrip(t *testing.T) {
	for _, s := range []string{"127.0.0.1:80", "[::1]:443", "[::ffff:10.0.0.1]:9", "0.0.0.0:0", "[2001:db8::1]:65535"} {
		ap := netip.MustParseAddrPort(s)
		var raw unix.RawSockaddrAny
		n := Raw(ap, &raw)
		got, ok := AddrPort(&raw, n)
		require.True(t, ok, s)
		require.Equal(t, ap, got, s)
		back, ok := FromSockaddr(Sockaddr(ap))
		require.True(t, ok, s)
		require.Equal(t, ap, back, s)
	}
}

func TestAddrPortRejects(t *testing.T) {
	var raw unix.RawSockaddrAny
	n := Raw(netip.MustParseAddrPort("127.0.0.1:1"), &raw)
	_, ok := AddrPort(&raw, n-1)
	require.False(t, ok, "short length")
	raw.Addr.Family = unix.AF_UNIX
	_, ok = AddrPort(&raw, n)
	require.False(t, ok, "other family")
	require.Nil(t, TCPAddr(&unix.SockaddrUnix{Name: "x"}))
}

func TestLocalRemoteUntypedNil(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	require.NoError(t, err)
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	// An AF_UNIX socket has no TCP address: the result is a nil interface,
	// so callers' "== nil" fallbacks work.
	require.True(t, LocalTCP(fds[0]) == nil)
	require.True(t, RemoteTCP(fds[0]) == nil)
	require.True(t, LocalUDP(-1) == nil)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	f, err := l.(*net.TCPListener).File()
	require.NoError(t, err)
	defer f.Close()
	require.Equal(t, l.Addr().String(), LocalTCP(int(f.Fd())).String())
}

func TestRawAllocs(t *testing.T) {
	ap := netip.MustParseAddrPort("[::1]:443")
	var raw unix.RawSockaddrAny
	require.Zero(t, testing.AllocsPerRun(100, func() {
		n := Raw(ap, &raw)
		if _, ok := AddrPort(&raw, n); !ok {
			t.Fatal("decode")
		}
	}))
}
