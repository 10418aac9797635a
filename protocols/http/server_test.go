package http

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

const date = "Date: Sat, 01 Jan 2000 00:00:00 GMT\r\n"

// dial builds a connection served by h over a StringTransport and a fake clock.
func dial(t testing.TB, h Handler, o Options) (*transporttest.StringTransport, *clock.Fake, transports.Protocol) {
	t.Helper()
	clk := clock.NewFake()
	tr := transporttest.NewStringTransport(clk)
	p := NewFactory(h, o).BuildProtocol(transporttest.DefaultRemoteAddr)
	require.NotNil(t, p)
	transporttest.Connect(p, tr)
	return tr, clk, p
}

func testHandler(w ResponseWriter, r *Request) {
	switch r.Path {
	case "/":
		w.Write([]byte("Hello, World!"))
	case "/echo":
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s path=%s query=%s host=%s cl=%d chunked=%v close=%v x=%q body=%q",
			r.Method, r.Target, r.Proto, r.Path, r.Query, r.Host, r.ContentLength, r.Chunked, r.Close,
			r.Header.Values("X"), body)
	case "/stream":
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "one")
		w.(Flusher).Flush()
		io.WriteString(w, "two")
		w.(Flusher).Flush()
		io.WriteString(w, "three")
	case "/big":
		w.Write(bytes.Repeat([]byte("x"), 5000))
	case "/nocontent":
		w.WriteHeader(StatusNoContent)
		if _, err := w.Write([]byte("x")); err != ErrBodyNotAllowed {
			panic(err)
		}
	case "/cl":
		w.Header().Set("Content-Length", "5")
		w.Write([]byte("hello"))
	case "/short":
		w.Header().Set("Content-Length", "10")
		w.Write([]byte("hello"))
	case "/long":
		w.Header().Set("Content-Length", "3")
		if _, err := w.Write([]byte("hello")); err != ErrContentLength {
			panic(err)
		}
	case "/close":
		w.Header().Set("Connection", "close")
		w.Write([]byte("bye"))
	case "/headers":
		w.Header().Set("X-Inject", "a\r\nSet-Cookie: evil")
		w.Header().Add("Bad Name", "v")
		w.Header().Set("Transfer-Encoding", "gzip")
		w.Header().Set("Date", "yesterday")
		w.Header().Set("Server", "mine")
		w.Header().Add("X-Multi", "1")
		w.Header().Add("x-multi", "2")
	case "/status":
		w.WriteHeader(StatusContinue)
		w.WriteHeader(StatusNotFound)
		w.Write([]byte("nope"))
	case "/notmodified":
		w.Header().Set("Content-Length", "7")
		w.WriteHeader(StatusNotModified)
	default:
		w.WriteHeader(999 + 1)
	}
}

func ok(body string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s", date, len(body), body)
}

func hello() string { return ok("Hello, World!") }

func errResp(status int) string {
	text := StatusText(status)
	return fmt.Sprintf("HTTP/1.1 %d %s\r\n%sContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s\n",
		status, text, date, len(text)+1, text)
}

func echo(s string) string { return ok(s) }

type exchange struct {
	name   string
	opts   Options
	in     string
	want   string
	closed bool
}

var big = strings.Repeat("x", 5000)

var exchanges = []exchange{
	{name: "hello", in: "GET / HTTP/1.1\r\nHost: a\r\n\r\n", want: hello()},
	{name: "bare LF", in: "GET / HTTP/1.1\nHost: a\n\n", want: hello()},
	{name: "leading empty lines", in: "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", want: hello()},
	{name: "pipelined", in: strings.Repeat("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 3), want: strings.Repeat(hello(), 3)},
	{name: "connection close", in: "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		want: "HTTP/1.1 200 OK\r\n" + date + "Content-Length: 13\r\nConnection: close\r\n\r\nHello, World!", closed: true},
	{name: "http/1.0 closes", in: "GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n",
		want: "HTTP/1.1 200 OK\r\n" + date + "Content-Length: 13\r\nConnection: close\r\n\r\nHello, World!", closed: true},
	{name: "http/1.0 keep-alive", in: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		want: "HTTP/1.1 200 OK\r\n" + date + "Content-Length: 13\r\nConnection: keep-alive\r\n\r\nHello, World!"},
	{name: "http/1.9 is 1.1", in: "GET /echo HTTP/1.9\r\nHost: h\r\n\r\n",
		want: echo(`GET /echo HTTP/1.9 path=/echo query= host=h cl=0 chunked=false close=false x=[] body=""`)},
	{name: "target forms", in: "GET /echo?a=1&b HTTP/1.1\r\nHost: h\r\nX: 1\r\nx:2 \r\n\r\n" +
		"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n" +
		"GET http://other:81/echo?q HTTP/1.1\r\nHost: h\r\n\r\n" +
		"GET http://other HTTP/1.1\r\nHost: h\r\n\r\n",
		want: echo(`GET /echo?a=1&b HTTP/1.1 path=/echo query=a=1&b host=h cl=0 chunked=false close=false x=["1" "2"] body=""`) +
			"HTTP/1.1 500 Internal Server Error\r\n" + date + "Content-Length: 0\r\n\r\n" +
			echo(`GET http://other:81/echo?q HTTP/1.1 path=/echo query=q host=other:81 cl=0 chunked=false close=false x=[] body=""`) +
			hello()},
	{name: "post content-length", in: "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		want: echo(`POST /echo HTTP/1.1 path=/echo query= host=h cl=5 chunked=false close=false x=[] body="hello"`) + hello()},
	{name: "identical content-length list", in: "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc",
		want: echo(`POST /echo HTTP/1.1 path=/echo query= host=h cl=3 chunked=false close=false x=[] body="abc"`)},
	{name: "post chunked", in: "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n1;ext=1 ; b=\"q\"\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n" +
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		want: echo(`POST /echo HTTP/1.1 path=/echo query= host=h cl=-1 chunked=true close=false x=[] body="hello 0123456789"`) + hello()},
	{name: "chunked list", in: "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,Chunked\r\n\r\n0\r\n\r\n",
		want: echo(`POST /echo HTTP/1.1 path=/echo query= host=h cl=-1 chunked=true close=false x=[] body=""`)},
	{name: "expect 100-continue", in: "POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nhi",
		want: "HTTP/1.1 100 Continue\r\n\r\n" + echo(`POST /echo HTTP/1.1 path=/echo query= host=h cl=2 chunked=false close=false x=[] body="hi"`)},
	{name: "expect 100-continue chunked", in: "POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
		want: "HTTP/1.1 100 Continue\r\n\r\n" + echo(`POST /echo HTTP/1.1 path=/echo query= host=h cl=-1 chunked=true close=false x=[] body="hi"`)},
	{name: "connect and unknown method", in: "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\nPROPFIND /echo HTTP/1.1\r\nHost: h\r\n\r\n",
		want: "HTTP/1.1 500 Internal Server Error\r\n" + date + "Content-Length: 0\r\n\r\n" +
			echo(`PROPFIND /echo HTTP/1.1 path=/echo query= host=h cl=0 chunked=false close=false x=[] body=""`)},
	{name: "expect without body", in: "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n", want: hello()},
	{name: "expect ignored in 1.0", in: "GET / HTTP/1.0\r\nExpect: whatever\r\nConnection: keep-alive\r\n\r\n",
		want: "HTTP/1.1 200 OK\r\n" + date + "Content-Length: 13\r\nConnection: keep-alive\r\n\r\nHello, World!"},
	{name: "expect unknown", in: "GET / HTTP/1.1\r\nHost: h\r\nExpect: tea\r\n\r\n", want: errResp(417), closed: true},
	{name: "head", in: "HEAD / HTTP/1.1\r\nHost: h\r\n\r\nHEAD /stream HTTP/1.1\r\nHost: h\r\n\r\nHEAD /nocontent HTTP/1.1\r\nHost: h\r\n\r\n",
		want: "HTTP/1.1 200 OK\r\n" + date + "Content-Length: 13\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + date + "Transfer-Encoding: chunked\r\n\r\n" +
			"HTTP/1.1 204 No Content\r\n" + date + "\r\n"},
	{name: "chunked response", in: "GET /stream HTTP/1.1\r\nHost: h\r\n\r\nGET /big HTTP/1.1\r\nHost: h\r\n\r\n",
		want: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + date + "Transfer-Encoding: chunked\r\n\r\n" +
			"3\r\none\r\n3\r\ntwo\r\n5\r\nthree\r\n0\r\n\r\n" +
			"HTTP/1.1 200 OK\r\n" + date + "Transfer-Encoding: chunked\r\n\r\n1388\r\n" + big + "\r\n0\r\n\r\n"},
	{name: "stream to http/1.0", in: "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
		want: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + date + "Connection: close\r\n\r\nonetwothree", closed: true},
	{name: "response framing", in: "GET /nocontent HTTP/1.1\r\nHost: h\r\n\r\nGET /cl HTTP/1.1\r\nHost: h\r\n\r\n" +
		"GET /long HTTP/1.1\r\nHost: h\r\n\r\nGET /status HTTP/1.1\r\nHost: h\r\n\r\nGET /notmodified HTTP/1.1\r\nHost: h\r\n\r\n" +
		"GET /headers HTTP/1.1\r\nHost: h\r\n\r\nGET /short HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
		want: "HTTP/1.1 204 No Content\r\n" + date + "\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n" + date + "\r\nhello" +
			"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n" + date + "\r\nhel" +
			"HTTP/1.1 404 Not Found\r\n" + date + "Content-Length: 4\r\n\r\nnope" +
			"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n" + date + "\r\n" +
			"HTTP/1.1 200 OK\r\nX-Inject: a  Set-Cookie: evil\r\nDate: yesterday\r\nServer: mine\r\nX-Multi: 1\r\nx-multi: 2\r\nContent-Length: 0\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n" + date + "\r\nhello",
		closed: true},
	{name: "close from handler", in: "GET /close HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
		want: "HTTP/1.1 200 OK\r\nConnection: close\r\n" + date + "Content-Length: 3\r\n\r\nbye", closed: true},
	{name: "server header", opts: Options{Server: "gyre"}, in: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		want: "HTTP/1.1 200 OK\r\n" + date + "Server: gyre\r\nContent-Length: 13\r\n\r\nHello, World!"},

	// Framing and syntax errors (RFC 9112): answer, then close.
	{name: "CL and TE", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: errResp(400), closed: true},
	{name: "TE and CL", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", want: errResp(400), closed: true},
	{name: "differing CL", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", want: errResp(400), closed: true},
	{name: "differing CL list", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\nabcd", want: errResp(400), closed: true},
	{name: "bad CL", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc", want: errResp(400), closed: true},
	{name: "empty CL", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", want: errResp(400), closed: true},
	{name: "huge CL", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", want: errResp(400), closed: true},
	{name: "TE not final chunked", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", want: errResp(400), closed: true},
	{name: "TE gzip only", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", want: errResp(400), closed: true},
	{name: "TE empty", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\n\r\n", want: errResp(400), closed: true},
	{name: "TE chunked twice", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: errResp(400), closed: true},
	{name: "TE unknown coding", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", want: errResp(501), closed: true},
	{name: "TE in 1.0", in: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: errResp(400), closed: true},
	{name: "bad chunk size", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n", want: errResp(400), closed: true},
	{name: "chunk size overflow", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", want: errResp(400), closed: true},
	{name: "chunk size junk", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n", want: errResp(400), closed: true},
	{name: "chunk size trailing space", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", want: errResp(400), closed: true},
	{name: "chunk bare LF", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", want: errResp(400), closed: true},
	{name: "chunk missing CRLF", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n", want: errResp(400), closed: true},
	{name: "chunk negative", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", want: errResp(400), closed: true},
	{name: "bad trailer", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad Trailer: x\r\n\r\n", want: errResp(400), closed: true},
	{name: "obs-fold", in: "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", want: errResp(400), closed: true},
	{name: "space before colon", in: "GET / HTTP/1.1\r\nHost : h\r\n\r\n", want: errResp(400), closed: true},
	{name: "tab before colon", in: "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", want: errResp(400), closed: true},
	{name: "no colon", in: "GET / HTTP/1.1\r\nHost h\r\n\r\n", want: errResp(400), closed: true},
	{name: "empty name", in: "GET / HTTP/1.1\r\n: h\r\n\r\n", want: errResp(400), closed: true},
	{name: "CTL in value", in: "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n", want: errResp(400), closed: true},
	{name: "bare CR in value", in: "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", want: errResp(400), closed: true},
	{name: "no host", in: "GET / HTTP/1.1\r\n\r\n", want: errResp(400), closed: true},
	{name: "two hosts", in: "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", want: errResp(400), closed: true},
	{name: "bad host", in: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", want: errResp(400), closed: true},
	{name: "bad version", in: "GET / HTTP/1.x\r\nHost: a\r\n\r\n", want: errResp(400), closed: true},
	{name: "http/2.0", in: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", want: errResp(505), closed: true},
	{name: "double space", in: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", want: errResp(400), closed: true},
	{name: "bad method", in: "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", want: errResp(400), closed: true},
	{name: "bad target", in: "GET a HTTP/1.1\r\nHost: a\r\n\r\n", want: errResp(400), closed: true},
	{name: "CTL in target", in: "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", want: errResp(400), closed: true},
	{name: "too many empty lines", in: strings.Repeat("\r\n", 10) + "GET / HTTP/1.1\r\nHost: a\r\n\r\n", want: errResp(400), closed: true},
	{name: "error after good", in: "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\n", want: hello() + errResp(400), closed: true},

	// Limits.
	{name: "request line limit ok", opts: Options{MaxRequestLineBytes: 22}, in: "GET /" + strings.Repeat("a", 8) + " HTTP/1.1\r\nHost: a\r\n\r\n",
		want: "HTTP/1.1 500 Internal Server Error\r\n" + date + "Content-Length: 0\r\n\r\n"},
	{name: "request line too long", opts: Options{MaxRequestLineBytes: 22}, in: "GET /" + strings.Repeat("a", 9) + " HTTP/1.1\r\nHost: a\r\n\r\n", want: errResp(414), closed: true},
	{name: "request line too long, no LF", opts: Options{MaxRequestLineBytes: 22}, in: "GET /" + strings.Repeat("a", 100), want: errResp(414), closed: true},
	{name: "header too large", opts: Options{MaxHeaderBytes: 64}, in: "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 40) + "\r\n\r\n", want: errResp(431), closed: true},
	{name: "header too large, incomplete", opts: Options{MaxHeaderBytes: 64}, in: "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 100), want: errResp(431), closed: true},
	{name: "header at limit", opts: Options{MaxHeaderBytes: 27}, in: "GET / HTTP/1.1\r\nHost: a\r\n\r\n", want: hello()},
	{name: "header over limit", opts: Options{MaxHeaderBytes: 26}, in: "GET / HTTP/1.1\r\nHost: a\r\n\r\n", want: errResp(431), closed: true},
	{name: "too many headers", opts: Options{MaxHeaderCount: 3}, in: "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", want: errResp(431), closed: true},
	{name: "header count at limit", opts: Options{MaxHeaderCount: 3}, in: "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", want: hello()},
	{name: "body too large", opts: Options{MaxBodyBytes: 4}, in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello", want: errResp(413), closed: true},
	{name: "body at limit", opts: Options{MaxBodyBytes: 5}, in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", want: hello()},
	{name: "chunked body too large", opts: Options{MaxBodyBytes: 6}, in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n2\r\nab\r\n0\r\n\r\n", want: errResp(413), closed: true},
	{name: "chunked body at limit", opts: Options{MaxBodyBytes: 7}, in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n2\r\nab\r\n0\r\n\r\n", want: hello()},
	{name: "trailer too large", opts: Options{MaxHeaderBytes: 60}, in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + strings.Repeat("a", 60) + "\r\n\r\n", want: errResp(400), closed: true},
	{name: "chunk line too long", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;" + strings.Repeat("a", 5000) + "\r\nx\r\n0\r\n\r\n", want: errResp(400), closed: true},
}

// TestExchanges feeds every request at every chunk size from 1 byte up.
func TestExchanges(t *testing.T) {
	for _, x := range exchanges {
		t.Run(x.name, func(t *testing.T) {
			for size := 0; size <= len(x.in); size++ {
				tr, _, p := dial(t, HandlerFunc(testHandler), x.opts)
				transporttest.FeedChunks(p, []byte(x.in), size)
				require.Equal(t, x.want, tr.String(), "chunk size %d", size)
				require.Equal(t, x.closed, tr.WriteClosed(), "chunk size %d", size)
				require.False(t, tr.Disconnecting(), "chunk size %d: closed without lingering", size)
				tr.EndConnection(nil)
			}
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	tr, clk, p := dial(t, HandlerFunc(testHandler), Options{IdleTimeout: 30 * time.Second})
	clk.Advance(20 * time.Second)
	p.DataReceived([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	require.Equal(t, hello(), strings.Replace(tr.String(), "00:00:20", "00:00:00", 1))
	clk.Advance(29 * time.Second)
	require.False(t, tr.WriteClosed(), "activity must push the idle deadline back")
	clk.Advance(time.Second)
	require.True(t, tr.WriteClosed())
	require.Equal(t, hello(), strings.Replace(tr.String(), "00:00:20", "00:00:00", 1), "idle close sends nothing")
	tr.EndConnection(nil)
	require.Zero(t, clk.Len(), "timer left behind")
}

func TestIdleTimeoutDuringBody(t *testing.T) {
	tr, clk, p := dial(t, HandlerFunc(testHandler), Options{IdleTimeout: 30 * time.Second, HeaderTimeout: 5 * time.Second})
	p.DataReceived([]byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello"))
	clk.Advance(20 * time.Second)
	p.DataReceived([]byte("wor"))
	clk.Advance(29 * time.Second)
	require.False(t, tr.WriteClosed(), "the header timeout does not apply to the body")
	clk.Advance(time.Second)
	require.True(t, tr.WriteClosed())
	require.Empty(t, tr.String())
}

func TestHeaderTimeout(t *testing.T) {
	tr, clk, p := dial(t, HandlerFunc(testHandler), Options{IdleTimeout: 30 * time.Second, HeaderTimeout: 5 * time.Second})
	clk.Advance(10 * time.Second)
	p.DataReceived([]byte("GET / HT"))
	clk.Advance(4 * time.Second)
	p.DataReceived([]byte("TP/1.1\r\n"))
	require.False(t, tr.WriteClosed())
	clk.Advance(time.Second - 1)
	require.False(t, tr.WriteClosed(), "dripping bytes does not extend the header deadline")
	clk.Advance(1)
	require.True(t, tr.WriteClosed())
	require.Equal(t, strings.Replace(errResp(408), "00:00:00", "00:00:15", 1), tr.String())
}

func TestHeaderTimeoutRestartsPerRequest(t *testing.T) {
	tr, clk, p := dial(t, HandlerFunc(testHandler), Options{IdleTimeout: time.Minute, HeaderTimeout: 5 * time.Second})
	p.DataReceived([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n"))
	clk.Advance(4 * time.Second)
	p.DataReceived([]byte("Host: a\r\n\r\nGET"))
	clk.Advance(4 * time.Second)
	require.False(t, tr.WriteClosed())
	clk.Advance(time.Second)
	require.True(t, tr.WriteClosed())
	require.Equal(t, 2, strings.Count(tr.String(), "Hello, World!"))
	require.Contains(t, tr.String(), "408 Request Timeout")
}

func TestTimeoutsDisabled(t *testing.T) {
	tr, clk, p := dial(t, HandlerFunc(testHandler), Options{IdleTimeout: -1, HeaderTimeout: -1})
	clk.Advance(time.Hour)
	p.DataReceived([]byte("GET / HT"))
	clk.Advance(time.Hour)
	require.False(t, tr.WriteClosed())
	require.LessOrEqual(t, clk.Len(), 1)
}

// TestLingeringClose: after an error answer the connection half-closes, drops
// further input, and closes when the linger time is over or the peer closes.
func TestLingeringClose(t *testing.T) {
	tr, clk, p := dial(t, HandlerFunc(testHandler), Options{MaxBodyBytes: 10})
	p.DataReceived([]byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nxxxx"))
	require.Equal(t, errResp(413), tr.String())
	require.True(t, tr.WriteClosed())
	require.False(t, tr.Disconnecting())
	p.DataReceived([]byte(strings.Repeat("x", 96)))
	require.Equal(t, errResp(413), tr.String())
	clk.Advance(lingerTimeout - 1)
	require.False(t, tr.Disconnecting())
	clk.Advance(1)
	require.True(t, tr.Disconnecting())
	tr.EndConnection(nil)
	require.Zero(t, clk.Len())

	tr, clk, p = dial(t, HandlerFunc(testHandler), Options{})
	p.DataReceived([]byte("GET / HTTP/1.0\r\n\r\n"))
	require.True(t, tr.WriteClosed())
	tr.EndConnection(nil) // the client closed
	require.Zero(t, clk.Len(), "linger timer left behind")
	require.False(t, tr.Disconnecting())
}

func TestConnectionLostCancelsTimer(t *testing.T) {
	tr, clk, _ := dial(t, HandlerFunc(testHandler), Options{})
	require.Equal(t, 1, clk.Len())
	tr.EndConnection(nil)
	require.Zero(t, clk.Len())
}

// TestDateCachedPerSecond: the Date header follows the clock.
func TestDateCachedPerSecond(t *testing.T) {
	tr, clk, p := dial(t, HandlerFunc(testHandler), Options{IdleTimeout: -1})
	req := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	p.DataReceived(req)
	clk.Advance(999 * time.Millisecond)
	p.DataReceived(req)
	clk.Advance(time.Millisecond)
	p.DataReceived(req)
	clk.Advance(36*time.Hour + 2*time.Second)
	p.DataReceived(req)
	out := tr.String()
	require.Equal(t, 2, strings.Count(out, "Date: Sat, 01 Jan 2000 00:00:00 GMT\r\n"))
	require.Equal(t, 1, strings.Count(out, "Date: Sat, 01 Jan 2000 00:00:01 GMT\r\n"))
	require.Equal(t, 1, strings.Count(out, "Date: Sun, 02 Jan 2000 12:00:03 GMT\r\n"))
}

// TestBackpressure: a client that pipelines without reading pauses reading
// once the write queue passes the high watermark.
func TestBackpressure(t *testing.T) {
	clk := clock.NewFake()
	tr := transporttest.NewStringTransport(clk)
	tr.CountWrites = true
	tr.Watermarks = transports.Watermarks{High: 100, Low: 10}
	p := NewFactory(HandlerFunc(testHandler), Options{}).BuildProtocol(tr.RemoteAddr())
	transporttest.Connect(p, tr)
	req := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	tr.Receive([]byte(req + req))
	require.Equal(t, hello()+hello(), tr.String())
	require.True(t, tr.ReadingPaused())
	tr.Receive([]byte(req))
	require.Equal(t, hello()+hello(), tr.String(), "paused: nothing read")
	tr.Drain(tr.Pending())
	require.Equal(t, hello()+hello()+hello(), tr.String())
}

// TestPauseMidBatch: a pause arriving from a flush inside a batch stops the
// remaining pipelined requests until resumed.
func TestPauseMidBatch(t *testing.T) {
	clk := clock.NewFake()
	tr := transporttest.NewStringTransport(clk)
	tr.CountWrites = true
	tr.Watermarks = transports.Watermarks{High: 10, Low: 1}
	p := NewFactory(HandlerFunc(testHandler), Options{}).BuildProtocol(tr.RemoteAddr())
	transporttest.Connect(p, tr)
	req := "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n"
	tr.Receive([]byte(req + req + req))
	first := tr.String()
	require.Equal(t, 1, strings.Count(first, "0\r\n\r\n"), "the request in progress finishes; the next wait")
	tr.Drain(tr.Pending())
	require.Equal(t, 2, strings.Count(tr.String(), "0\r\n\r\n"))
	tr.Drain(tr.Pending())
	require.Equal(t, 3, strings.Count(tr.String(), "0\r\n\r\n"))
	require.False(t, tr.WriteClosed())
}

func TestRequestFields(t *testing.T) {
	var got []string
	tr, _, p := dial(t, HandlerFunc(func(w ResponseWriter, r *Request) {
		got = append(got, r.RemoteAddr.String(), r.Header.Get("x-a"), r.Header.Get("Missing"),
			fmt.Sprint(r.Header.Has("X-A"), r.Header.Len()), string(r.BodyBytes()))
		for k, v := range r.Header.All() {
			got = append(got, k+"="+v)
		}
	}), Options{})
	p.DataReceived([]byte("PUT /x HTTP/1.1\r\nHost: h\r\nX-A:  v  \r\nContent-Length: 2\r\n\r\nok"))
	require.Equal(t, []string{"127.0.0.2:54321", "v", "", "true 3", "ok", "Host=h", "X-A=v", "Content-Length=2"}, got)
	require.True(t, strings.HasPrefix(tr.String(), "HTTP/1.1 200 OK\r\n"))
}

func TestHeader(t *testing.T) {
	var h Header
	h.Add("A", "1")
	h.Add("b", "2")
	h.Add("a", "3")
	require.Equal(t, []string{"1", "3"}, h.Values("A"))
	h.Set("A", "4")
	require.Equal(t, []string{"4"}, h.Values("a"))
	require.Equal(t, 2, h.Len())
	h.Del("B")
	require.False(t, h.Has("b"))
	require.Equal(t, "4", h.Get("a"))
	h.Set("C", "5")
	require.Equal(t, "5", h.Get("c"))
	h.Reset()
	require.Zero(t, h.Len())
	require.False(t, equalFold("a[", "A{"))
	require.True(t, equalFold("Content-Length", "content-LENGTH"))
}

func TestStatusOf(t *testing.T) {
	for err, want := range map[error]int{
		ErrBadRequest: 400, ErrRequestLineTooLong: 414, ErrHeaderTooLarge: 431, ErrBodyTooLarge: 413,
		ErrNotImplemented: 501, ErrVersionNotSupported: 505, ErrExpectationFailed: 417,
		errObsFold: 400, errTEUnknown: 501, io.EOF: 400,
	} {
		require.Equal(t, want, StatusOf(err), "%v", err)
	}
}

// TestLargeBodiesAcrossReads: head views stay right while the receive buffer
// grows under a body spread over many reads, for both framings.
func TestLargeBodiesAcrossReads(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 6000) // 96000 bytes
	var chunked strings.Builder
	for rest := body; len(rest) > 0; {
		n := min(len(rest), 7000)
		fmt.Fprintf(&chunked, "%x\r\n%s\r\n", n, rest[:n])
		rest = rest[n:]
	}
	chunked.WriteString("0\r\n\r\n")
	var got []string
	h := HandlerFunc(func(w ResponseWriter, r *Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.Target+" "+r.Header.Get("X")+" "+r.Host)
		if r.Path != "/last" && string(b) != body {
			i := 0
			for i < len(b) && i < len(body) && b[i] == body[i] {
				i++
			}
			t.Fatalf("%s: body of %d bytes differs at %d: %q", r.Target, len(b), i, b[i:min(len(b), i+40)])
		}
		w.Write(b[:min(3, len(b))])
	})
	in := "POST /cl HTTP/1.1\r\nHost: h1\r\nX: first\r\nContent-Length: 96000\r\n\r\n" + body +
		"PUT /chunked HTTP/1.1\r\nHost: h2\r\nX: second\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked.String() +
		"GET /last HTTP/1.1\r\nHost: h3\r\nX: third\r\n\r\n"
	for _, size := range []int{1, 7, 1000, 4096, 65536, 0} {
		got = got[:0]
		tr, _, p := dial(t, h, Options{})
		transporttest.FeedChunks(p, []byte(in), size)
		require.Equal(t, []string{"POST /cl first h1", "PUT /chunked second h2", "GET /last third h3"}, got, "size %d", size)
		require.Equal(t, ok("012")+ok("012")+ok(""), tr.String(), "size %d", size)
	}
}

// TestLargeStreamingResponse: output past the flush threshold goes to the
// transport in the middle of the handler, in several writes.
func TestLargeStreamingResponse(t *testing.T) {
	chunk := bytes.Repeat([]byte("y"), 10000)
	tr, _, p := dial(t, HandlerFunc(func(w ResponseWriter, r *Request) {
		for range 10 {
			w.Write(chunk)
		}
	}), Options{})
	p.DataReceived([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	require.Greater(t, tr.Writes(), 2)
	want := "HTTP/1.1 200 OK\r\n" + date + "Transfer-Encoding: chunked\r\n\r\n" +
		strings.Repeat("2710\r\n"+string(chunk)+"\r\n", 10) + "0\r\n\r\n"
	require.Equal(t, want, tr.String())
}

// TestLostMidRequest: the connection may end anywhere, timers included.
func TestLostMidRequest(t *testing.T) {
	for _, in := range []string{"GET / HT", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"} {
		tr, clk, p := dial(t, HandlerFunc(testHandler), Options{})
		p.DataReceived([]byte(in))
		tr.EndConnection(transports.Lost(io.ErrUnexpectedEOF))
		require.Zero(t, clk.Len())
		clk.Advance(time.Hour)
		require.Empty(t, tr.String())
	}
}
