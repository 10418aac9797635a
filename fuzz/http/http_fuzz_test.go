package httpfuzz

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/protocols/http"
	"github.com/gyre-io/gyre/transports/transporttest"
)

var sentinels = []error{
	http.ErrIncomplete, http.ErrBadRequest, http.ErrRequestLineTooLong, http.ErrHeaderTooLarge,
	http.ErrBodyTooLarge, http.ErrNotImplemented, http.ErrVersionNotSupported, http.ErrExpectationFailed,
}

func matchesOne(err error) bool {
	n := 0
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	return n == 1
}

// small limits, so the fuzzer reaches them.
var limits = http.Options{MaxRequestLineBytes: 64, MaxHeaderBytes: 256, MaxHeaderCount: 8, MaxBodyBytes: 64}

func inside(t *testing.T, data []byte, s, what string) {
	if s != "" && !bytes.Contains(data, []byte(s)) {
		switch s { // interned or constant values
		case "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "HTTP/1.1", "HTTP/1.0", "/", "*":
			return
		}
		t.Fatalf("%s %q is not from the input", what, s)
	}
}

func FuzzParseHead(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	f.Add([]byte("POST /x?y HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, o := range []http.Options{{}, limits} {
			var r http.Request
			n, err := http.ParseHead(&r, data, o)
			if err != nil {
				if n != 0 || !matchesOne(err) {
					t.Fatalf("n=%d err=%v", n, err)
				}
				if st := http.StatusOf(err); st < 400 || st > 505 {
					t.Fatalf("status %d", st)
				}
				continue
			}
			if n <= 0 || n > len(data) {
				t.Fatalf("n=%d of %d", n, len(data))
			}
			if data[n-1] != '\n' {
				t.Fatalf("head does not end in LF: %q", data[:n])
			}
			if r.Method == "" || r.Target == "" || r.ProtoMajor != 1 {
				t.Fatalf("bad request line: %+v", r)
			}
			if r.Chunked != (r.ContentLength == -1) || r.ContentLength < -1 {
				t.Fatalf("framing: chunked=%v cl=%d", r.Chunked, r.ContentLength)
			}
			if r.Chunked && r.Header.Has("Content-Length") {
				t.Fatal("chunked with Content-Length accepted")
			}
			if r.ProtoMinor >= 1 && len(r.Header.Values("Host")) != 1 {
				t.Fatal("HTTP/1.1 without exactly one Host accepted")
			}
			inside(t, data, r.Method, "method")
			inside(t, data, r.Target, "target")
			inside(t, data, r.Path, "path")
			inside(t, data, r.Query, "query")
			for k, v := range r.Header.All() {
				inside(t, data, k, "name")
				inside(t, data, v, "value")
				if strings.ContainsAny(k, " \t:\r\n") || strings.ContainsAny(v, "\r\n\x00") {
					t.Fatalf("field %q: %q", k, v)
				}
				if v != strings.TrimSpace(v) {
					t.Fatalf("value not trimmed: %q", v)
				}
			}
			// The head parses the same on its own, and no shorter prefix
			// is a complete head.
			var r2 http.Request
			if n2, err := http.ParseHead(&r2, data[:n], o); n2 != n || err != nil {
				t.Fatalf("head alone: n=%d err=%v, want %d", n2, err, n)
			}
			for _, k := range []int{n - 1, n / 2} {
				if _, err := http.ParseHead(&r2, data[:k], o); err == nil {
					t.Fatalf("prefix %d of %d parsed", k, n)
				}
			}
		}
	})
}

// decodeAll decodes src in pieces of size bytes (0: at once) into a fresh buffer.
func decodeAll(src []byte, size int, max int64) (out []byte, nr int, done bool, err error) {
	d := http.ChunkedDecoder{MaxBodyBytes: max, MaxTrailerBytes: 128}
	out = make([]byte, 0, len(src))
	buf := make([]byte, len(src))
	if size <= 0 {
		size = len(src)
	}
	var pending []byte
	for off := 0; off < len(src) && !done && err == nil; off += size {
		end := min(off+size, len(src))
		pending = append(pending, src[off:end]...)
		var nw, n int
		nw, n, done, err = d.Decode(buf, pending)
		out = append(out, buf[:nw]...)
		nr += n
		pending = pending[n:]
	}
	return out, nr, done, err
}

func FuzzChunked(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("a;x=\"y\"\r\n0123456789\r\n0\r\nT: v\r\n\r\nextra"))
	f.Fuzz(func(t *testing.T, data []byte) {
		whole, nr, done, err := decodeAll(data, 0, 64)
		if err != nil && !matchesOne(err) {
			t.Fatalf("error %v matches no sentinel", err)
		}
		if len(whole) > nr || nr > len(data) || (err == nil && !done && nr != len(data)) {
			t.Fatalf("out %d, read %d of %d, done %v", len(whole), nr, len(data), done)
		}
		if int64(len(whole)) > 64 {
			t.Fatalf("limit passed: %d", len(whole))
		}
		for _, size := range []int{1, 2, 3, 7} {
			out, nr2, done2, err2 := decodeAll(data, size, 64)
			if !bytes.Equal(out, whole) || done2 != done || (err2 == nil) != (err == nil) || (done && nr2 != nr) {
				t.Fatalf("size %d: out %q/%q done %v/%v err %v/%v nr %d/%d", size, out, whole, done2, done, err2, err, nr2, nr)
			}
		}
		// In place: dst aliases src.
		in := bytes.Clone(data)
		var d http.ChunkedDecoder
		d.MaxBodyBytes, d.MaxTrailerBytes = 64, 128
		nw, nr3, done3, err3 := d.Decode(in, in)
		if !bytes.Equal(in[:nw], whole) || done3 != done || (err3 == nil) != (err == nil) || nr3 != nr && err == nil {
			t.Fatalf("in place: %q/%q", in[:nw], whole)
		}
	})
}

// FuzzChunkedRoundTrip encodes body with chunk sizes taken from sizes, then
// decodes it.
func FuzzChunkedRoundTrip(f *testing.F) {
	f.Add([]byte("hello, world"), []byte{3, 0, 5}, true)
	f.Fuzz(func(t *testing.T, body, sizes []byte, ext bool) {
		var enc bytes.Buffer
		rest := body
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if i < len(sizes) && sizes[i] > 0 && int(sizes[i]) < n {
				n = int(sizes[i])
			}
			fmt.Fprintf(&enc, "%x", n)
			if ext {
				enc.WriteString(" ;a=b;c=\"d e\"")
			}
			enc.WriteString("\r\n")
			enc.Write(rest[:n])
			enc.WriteString("\r\n")
			rest = rest[n:]
		}
		enc.WriteString("0\r\n")
		if ext {
			enc.WriteString("Trailer-Field: v\r\n")
		}
		enc.WriteString("\r\nNEXT")
		src := enc.Bytes()
		for _, size := range []int{0, 1, 5} {
			out, nr, done, err := decodeAll(src, size, 0)
			if err != nil || !done || !bytes.Equal(out, body) || nr != len(src)-4 {
				t.Fatalf("size %d: done %v err %v nr %d/%d out %q want %q", size, done, err, nr, len(src)-4, out, body)
			}
		}
	})
}

func fuzzHandler(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	switch {
	case strings.HasPrefix(r.Path, "/stream"):
		fmt.Fprintf(w, "%s %q", r.Method, body)
		w.(http.Flusher).Flush()
		io.WriteString(w, r.Query)
	case strings.HasPrefix(r.Path, "/status"):
		w.WriteHeader(204)
	default:
		fmt.Fprintf(w, "%s %s %s %d %q %q", r.Method, r.Target, r.Host, r.ContentLength, r.Header.Get("X"), body)
	}
}

// serve feeds data to a fresh connection in pieces of size bytes.
func serve(data []byte, size int) (string, bool) {
	tr := transporttest.NewStringTransport(clock.NewFake())
	p := http.NewFactory(http.HandlerFunc(fuzzHandler), limits).BuildProtocol(tr.RemoteAddr())
	transporttest.Connect(p, tr)
	transporttest.FeedChunks(p, data, size)
	out, closed := tr.String(), tr.WriteClosed() || tr.Disconnecting()
	tr.EndConnection(nil)
	return out, closed
}

// FuzzServer: whatever the input, the server answers the same way however the
// input is split, and everything it writes is a sequence of responses.
func FuzzServer(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /stream HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		want, closed := serve(data, 0)
		if want != "" && !strings.HasPrefix(want, "HTTP/1.1 ") {
			t.Fatalf("output does not start with a status line: %q", want)
		}
		for _, size := range []int{1, 2, 5, 13} {
			got, closed2 := serve(data, size)
			if got != want || closed2 != closed {
				t.Fatalf("size %d:\n got %q (closed %v)\nwant %q (closed %v)", size, got, closed2, want, closed)
			}
		}
	})
}
