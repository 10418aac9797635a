package http

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/transports/transporttest"
)

var helloBody = []byte("Hello, World!")

var helloHandler = HandlerFunc(func(w ResponseWriter, r *Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.Write(helloBody)
})

const wrkGET = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"

func benchServe(b *testing.B, h Handler, in string, perBatch int) {
	clk := clock.NewFake()
	tr := transporttest.NewStringTransport(clk)
	p := NewFactory(h, Options{}).BuildProtocol(tr.RemoteAddr())
	transporttest.Connect(p, tr)
	data := []byte(in)
	// Warm up the connection's buffers.
	p.DataReceived(data)
	if !strings.HasPrefix(tr.String(), "HTTP/1.1 200 OK\r\n") || tr.Disconnecting() {
		b.Fatalf("bad response: %q", tr.String())
	}
	tr.Clear()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		p.DataReceived(data)
		tr.Clear()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perBatch), "ns/req")
}

// BenchmarkKeepAliveGET: one "GET / → Hello, World!" per read, as wrk sends.
func BenchmarkKeepAliveGET(b *testing.B) { benchServe(b, helloHandler, wrkGET, 1) }

// BenchmarkPipelined16: sixteen pipelined GETs per read.
func BenchmarkPipelined16(b *testing.B) {
	benchServe(b, helloHandler, strings.Repeat(wrkGET, 16), 16)
}

// BenchmarkPostSmallBody: a POST with a 32-byte Content-Length body.
func BenchmarkPostSmallBody(b *testing.B) {
	h := HandlerFunc(func(w ResponseWriter, r *Request) {
		w.Write(r.BodyBytes()[:5])
	})
	benchServe(b, h, "POST /submit HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nContent-Length: 32\r\n\r\n{\"hello\":\"world\",\"n\":1234567890}", 1)
}

// BenchmarkPostChunked: a POST with a two-chunk body.
func BenchmarkPostChunked(b *testing.B) {
	h := HandlerFunc(func(w ResponseWriter, r *Request) {
		w.Write(r.BodyBytes()[:5])
	})
	benchServe(b, h, "POST /submit HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"hello\":\"world\"\r\n10\r\n,\"n\":1234567890}\r\n0\r\n\r\n", 1)
}

// BenchmarkParseHead: a browser-like head.
func BenchmarkParseHead(b *testing.B) {
	head := []byte("GET /static/app.js?v=123 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nReferer: https://example.com/\r\n" +
		"Connection: keep-alive\r\nCookie: session=0123456789abcdef; theme=dark\r\nCache-Control: no-cache\r\n\r\n")
	o := Options{}.withDefaults()
	var r Request
	b.ReportAllocs()
	b.SetBytes(int64(len(head)))
	for b.Loop() {
		var s headScan
		if _, err := parseHead(&r, head, &o, &s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChunkedDecode: 64 KiB in 1 KiB chunks, decoded in place.
func BenchmarkChunkedDecode(b *testing.B) {
	var sb strings.Builder
	for range 64 {
		sb.WriteString("400\r\n")
		sb.WriteString(strings.Repeat("a", 1024))
		sb.WriteString("\r\n")
	}
	sb.WriteString("0\r\n\r\n")
	src := []byte(sb.String())
	buf := make([]byte, len(src))
	var d ChunkedDecoder
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		copy(buf, src)
		d.Reset()
		nw, _, done, err := d.Decode(buf, buf)
		if err != nil || !done || nw != 64<<10 {
			b.Fatal(nw, done, err)
		}
	}
}

// TestSteadyStateAllocatesNothing guards the zero-allocation request path.
func TestSteadyStateAllocatesNothing(t *testing.T) {
	post := HandlerFunc(func(w ResponseWriter, r *Request) { w.Write(r.BodyBytes()) })
	for _, c := range []struct {
		name string
		h    Handler
		in   string
	}{
		{"get", helloHandler, wrkGET},
		{"pipelined", helloHandler, strings.Repeat(wrkGET, 16)},
		{"post", post, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"},
		{"chunked", post, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{"stream", HandlerFunc(func(w ResponseWriter, r *Request) {
			w.Write(helloBody)
			w.(Flusher).Flush()
			w.Write(helloBody)
		}), wrkGET},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr, _, p := dial(t, c.h, Options{})
			data := []byte(c.in)
			p.DataReceived(data)
			tr.Clear()
			allocs := testing.AllocsPerRun(100, func() {
				p.DataReceived(data)
				tr.Clear()
			})
			if allocs != 0 {
				t.Fatalf("%v allocations per batch", allocs)
			}
			require.False(t, tr.WriteClosed())
		})
	}
}
