package respfuzz

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/fuzz/internal/split"
	"github.com/gyre-io/gyre/protocols/resp"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// runCuts is run with the input cut where the fuzzer says (split.Feed).
func runCuts(data, cuts []byte) (string, bool) {
	f := resp.NewFactory(resp.NewStore(), limits)
	tr := transporttest.NewStringTransport(clock.NewFake())
	p := f.BuildProtocol(transporttest.DefaultRemoteAddr)
	transporttest.Connect(p, tr)
	split.Feed(p, data, cuts)
	out := tr.String()
	tr.EndConnection(nil)
	return out, tr.Disconnecting()
}

// FuzzServerSplits: the server's replies and its decision to close are the
// same whatever cuts the fuzzer puts in the request stream (FuzzServer tries
// one fixed piece size; here every piece size is chosen).
func FuzzServerSplits(f *testing.F) {
	for i, s := range seeds {
		f.Add([]byte(s), []byte{byte(i), 0, 5, 1})
	}
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		if len(data) > 1<<14 {
			return
		}
		whole, closedWhole := run(data, 0)
		got, closed := runCuts(data, cuts)
		require.Equal(t, whole, got, "pieces %v", split.Sizes(len(data), cuts))
		require.Equal(t, closedWhole, closed)
	})
}
