// Command http is an HTTP/1.1 server on gyre answering "Hello, World!" at /.
//
//	go run ./examples/http -addr 127.0.0.1:8080 [-backend auto|uring|epoll] [-loops N] [-tls-cert FILE -tls-key FILE] [-debug-addr HOST:PORT]
//	go run ./examples/http -listen ssl:8443:privateKey=key.pem:certKey=cert.pem   # any endpoint description
//
// Try it with curl, wrk, ab -k or h2load --h1; with -tls-cert and -tls-key it
// serves HTTPS (curl --cacert CA https://127.0.0.1:8080/). It serves until SIGINT or
// SIGTERM, then stops cleanly and exits 0.
package main

import (
	"github.com/gyre-io/gyre/protocols/http"
	"github.com/gyre-io/gyre/react"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
)

var hello = []byte("Hello, World!")

func main() {
	react.Main("http", "tcp:8080:interface=127.0.0.1", func(*reactor.Loop) transports.Factory {
		return http.NewFactory(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Path != "/" {
				w.WriteHeader(404)
				_, _ = w.Write([]byte("not found\n"))
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write(hello)
		}), http.Options{})
	})
}
