package transports_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
	gyretls "github.com/gyre-io/gyre/transports/tls"
	"github.com/gyre-io/gyre/transports/unix"
)

// TestBufferKeeperImplementations: the socket transports keep received
// buffers and write owned ones; TLS answers "not kept" by not implementing
// BufferKeeper (its plaintext lives in a decryption scratch buffer), so a
// forwarding protocol's type assertion fails and it copies.
func TestBufferKeeperImplementations(t *testing.T) {
	var tc any = new(tcp.Conn)
	var uc any = new(unix.Conn)
	var sc any = new(gyretls.Conn)
	for _, c := range []any{tc, uc} {
		_, keeps := c.(transports.BufferKeeper)
		_, owns := c.(transports.OwnedWriter)
		require.True(t, keeps, "%T", c)
		require.True(t, owns, "%T", c)
	}
	_, keeps := sc.(transports.BufferKeeper)
	require.False(t, keeps, "TLS must not claim to keep its plaintext scratch buffer")
}
