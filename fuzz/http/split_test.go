package httpfuzz

import (
	"testing"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/fuzz/internal/split"
	"github.com/gyre-io/gyre/protocols/http"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// serveCuts is serve with the input cut where the fuzzer says (split.Feed).
func serveCuts(data, cuts []byte) (string, bool) {
	tr := transporttest.NewStringTransport(clock.NewFake())
	p := http.NewFactory(http.HandlerFunc(fuzzHandler), limits).BuildProtocol(tr.RemoteAddr())
	transporttest.Connect(p, tr)
	split.Feed(p, data, cuts)
	out, closed := tr.String(), tr.WriteClosed() || tr.Disconnecting()
	tr.EndConnection(nil)
	return out, closed
}

// FuzzServerSplits: the responses (heads, bodies, chunked framing) and the
// decision to close are the same whatever cuts the fuzzer puts in the
// request stream (FuzzServer tries a few fixed piece sizes; here every piece
// size is chosen).
func FuzzServerSplits(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /stream HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"), []byte{3, 0, 17})
	f.Add([]byte("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: v\r\n\r\nGET /status HTTP/1.0\r\n\r\n"), []byte{1, 2, 3, 4, 5})
	f.Add([]byte("GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n"), []byte{0})
	f.Add([]byte("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nxyz"), []byte{7, 1})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		if len(data) > 4096 {
			return
		}
		want, closed := serve(data, 0)
		got, closed2 := serveCuts(data, cuts)
		if got != want || closed2 != closed {
			t.Fatalf("pieces %v:\n got %q (closed %v)\nwant %q (closed %v)", split.Sizes(len(data), cuts), got, closed2, want, closed)
		}
	})
}
