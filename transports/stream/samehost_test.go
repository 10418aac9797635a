package stream

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// sameHost decides whether zero-copy sends are worth it: not to a peer on
// this host, whose kernel copies the data on delivery anyway.
func TestSameHost(t *testing.T) {
	tcp := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 7000} }
	for _, tc := range []struct {
		local, remote net.Addr
		want          bool
	}{
		{tcp("127.0.0.1"), tcp("127.0.0.1"), true},
		{tcp("127.0.0.1"), tcp("127.3.2.1"), true},
		{tcp("::1"), tcp("::1"), true},
		{tcp("10.1.2.3"), tcp("10.1.2.3"), true},        // this host's own address
		{tcp("::ffff:10.1.2.3"), tcp("10.1.2.3"), true}, // v4-mapped, same address
		{tcp("10.1.2.3"), tcp("10.1.2.4"), false},
		{tcp("2001:db8::1"), tcp("2001:db8::2"), false},
		{nil, tcp("192.0.2.7"), false},
		{&net.UnixAddr{Name: "/tmp/s", Net: "unix"}, &net.UnixAddr{Net: "unix"}, true},
		{nil, nil, false},
	} {
		require.Equal(t, tc.want, sameHost(tc.local, tc.remote), "%v → %v", tc.local, tc.remote)
	}
}
