// Package testhooks holds switches that tests of gyre's transports flip to
// reach paths the machine running them would not take on its own. Nothing
// outside gyre can import it; production code only reads the switches.
package testhooks

import "sync/atomic"

// ZeroCopyToLocalPeers makes stream connections created while it is set
// send owned buffers zero-copy also to peers on this host (which they
// otherwise never do: the kernel copies such data on local delivery), so
// the zero-copy send path runs against loopback peers in tests.
var ZeroCopyToLocalPeers atomic.Bool
