package tlstest_test

import (
	"fmt"
	"os"

	"github.com/gyre-io/gyre/transports/tls/tlstest"
)

// Certificates for a test: a CA and a server certificate for "localhost"
// (and 127.0.0.1, ::1), also as PEM files for openssl or curl --cacert.
func Example() {
	dir, err := os.MkdirTemp("", "gyre-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	pki, err := tlstest.New(dir, "localhost")
	if err != nil {
		panic(err)
	}
	srv, cli := pki.ServerConfig(), pki.ClientConfig("localhost")
	fmt.Println(len(srv.Certificates), cli.ServerName, cli.RootCAs != nil)
	_, err = os.Stat(pki.CAFile)
	fmt.Println(err == nil)
	// Output:
	// 1 localhost true
	// true
}
