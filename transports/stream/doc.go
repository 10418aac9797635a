// Package stream is the machinery every gyre stream transport is built from
// (TCP, UNIX stream sockets, process pipes; TLS layers over one of them) —
// what Twisted writes once in abstract.FileDescriptor and reuses in its tcp,
// unix, ssl and process transports. A transport outside this module can be
// written from the same pieces.
//
// The pieces, each usable alone:
//
//   - WriteQueue: the outbound byte queue as pure logic (no system calls, no
//     loop). Write copies; WriteOwned keeps a caller-owned buffer and releases
//     it exactly once; Next yields the next contiguous chunk for the kernel
//     (and whether it may go out with a zero-copy send); Sent/SentZeroCopy
//     account a possibly short send; Notified accounts a zero-copy
//     notification; Drop releases everything at the end. Order across copied
//     and owned bytes is exactly the order of the calls. NextBufs gathers
//     owned buffers queued back to back into one vectored send.
//   - Conn.KeepReceived (transports.BufferKeeper): a protocol keeps the
//     provided buffer DataReceived was given and sends it on with
//     WriteOwned — zero-copy forwarding for echo servers and proxies; at
//     most MaxKeptPerConn buffers per connection and half the loop's pool
//     (reactor.Loop.KeepBuffer) are kept at once, so keeping never starves
//     receives.
//   - Flow: producer flow control (Twisted's IConsumer side: registerProducer,
//     unregisterProducer; IPushProducer paused above the high watermark and
//     resumed at the low one; IPullProducer asked for more when the queue
//     drains; StopProducing when the connection ends).
//   - Owner: the one owner of a descriptor's ops. It keeps a few op slots,
//     cancels all of them on Close, and closes the descriptor (a KindClose op)
//     only after the last final completion, so a completion can never reach a
//     later user of the same descriptor number; then it calls onClosed once.
//   - Networks and NetReactor: transport packages register themselves by
//     name at init (RegisterNetwork: "tcp", later "unix"), and Reactor(loop)
//     is the transports.Reactor of a real loop, finding them by name — the
//     contracts package and the transports cannot import one another.
//
// # Composing a connection
//
// A connection embeds an Owner (slots: recv, send, zero-copy send, shutdown),
// a WriteQueue and a Flow, and implements OpHandler:
//
//	Write(p):       q.Write(p); flow.Update(q.Buffered()); ask the loop to flush
//	Flush:          if the send slot is free: chunk, zc := q.Next() (or NextBufs: a vectored send)
//	                  chunk == nil: drained (finish LoseConnection / CloseWrite)
//	                  zc: owner.Submit(zcSlot, SendZC chunk) (fall back to a send)
//	                  else owner.Submit(sendSlot, Send chunk)
//	send completion:   q.Sent(res); flow.Update(q.Buffered()); next chunk
//	zc completion:     q.SentZeroCopy(res, c.More()) … the FlagNotif one: q.Notified()
//	teardown:       owner.Close() (cancels everything in flight)
//	onClosed:       flow.Stop(); q.Drop(reason); ConnectionLost(reason)
//
// A listening port puts its accept op in a slot of an Owner, and a connector
// its connect op, handing the connected descriptor to the connection with
// Owner.Release.
//
// # Threading and lifetimes
//
// Everything here runs on the transport's loop goroutine; nothing is
// goroutine-safe. A chunk returned by WriteQueue.Next stays valid and
// unchanged until the Sent call that accounts it; an owned buffer belongs to
// the queue (and the kernel) until its done callback; an op's buffers belong
// to the backend until the slot's final completion.
package stream
