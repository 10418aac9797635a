// Package split feeds a protocol its input cut at arbitrary points, for the
// chunking-invariance fuzz targets: the fuzzer chooses the cuts, so every way
// the kernel could split a stream into reads is reachable, not only
// fixed-size pieces (transporttest.FeedChunks).
package split

import "github.com/gyre-io/gyre/transports"

// Sizes turns cuts into piece sizes: each byte is one piece of 1 to 64 bytes
// (b%64 + 1), cycling through cuts until data is used up; empty cuts gives
// one piece holding everything.
func Sizes(n int, cuts []byte) []int {
	if len(cuts) == 0 || n == 0 {
		return []int{n}
	}
	var out []int
	for i := 0; n > 0; i++ {
		s := min(int(cuts[i%len(cuts)]%64)+1, n)
		out = append(out, s)
		n -= s
	}
	return out
}

// Feed delivers data to p.DataReceived in the pieces Sizes(len(data), cuts)
// gives, each a fresh copy that is poisoned (cleared) once DataReceived
// returns, so a protocol that keeps the borrowed slice is caught.
func Feed(p transports.Protocol, data []byte, cuts []byte) {
	if len(data) == 0 {
		return
	}
	off := 0
	for _, s := range Sizes(len(data), cuts) {
		piece := append([]byte(nil), data[off:off+s]...)
		p.DataReceived(piece)
		clear(piece)
		off += s
	}
}
