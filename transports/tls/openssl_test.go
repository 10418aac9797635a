package gyretls_test

import (
	"bufio"
	"bytes"
	"context"
	ctls "crypto/tls"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	gyretls "github.com/gyre-io/gyre/transports/tls"
)

func needOpenSSL(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed (CI installs it): ", err)
	}
	return path
}

// openssl s_client against a gyre TLS echo server, TLS 1.2 and 1.3: the
// client verifies the chain, sends SNI and ALPN; the server sees both and
// echoes; the server's close ends s_client.
func TestOpenSSLClient(t *testing.T) {
	bin := needOpenSSL(t)
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		p := testPKI(t)
		h := reactortest.Start(t, kind)
		cfg := p.server()
		cfg.NextProtos = []string{"gyre/1"}
		addr, f := serve(t, h, cfg, gyretls.Options{}, func() transports.Protocol {
			r := newRec()
			r.onData = func(r *rec, b []byte) {
				_ = r.tr.Write(b)
				if bytes.Contains(r.data, []byte("bye\n")) {
					_ = r.tr.LoseConnection()
				}
			}
			return r
		})
		for _, v := range []string{"-tls1_2", "-tls1_3"} {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			cmd := exec.CommandContext(ctx, bin, "s_client", "-connect", addr, v, "-servername", "localhost",
				"-alpn", "gyre/1", "-CAfile", p.CAFile, "-verify_return_error", "-ign_eof")
			cmd.Stdin = strings.NewReader("hello gyre\nbye\n")
			out, err := cmd.CombinedOutput()
			cancel()
			require.NoError(t, err, "%s", out)
			s := string(out)
			require.Contains(t, s, "hello gyre\nbye\n")
			require.Contains(t, s, "ALPN protocol: gyre/1")
			require.Contains(t, s, "Verify return code: 0 (ok)")
			if v == "-tls1_3" {
				require.Contains(t, s, "TLSv1.3")
			} else {
				require.Contains(t, s, "TLSv1.2")
			}
			srv := f.next(t).(*rec)
			st := srv.waitHS(t, 5*time.Second)
			require.Equal(t, "localhost", st.ServerName)
			require.Equal(t, "gyre/1", st.NegotiatedProtocol)
			require.ErrorIs(t, srv.waitLost(t, 10*time.Second), transports.ErrConnectionDone)
		}
	})
}

// A gyre TLS client against openssl s_server (-rev reverses each line): the
// client verifies the server, negotiates ALPN; s_server reports the SNI
// name it received.
func TestOpenSSLServer(t *testing.T) {
	bin := needOpenSSL(t)
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		p := testPKI(t)
		for _, v := range []string{"-tls1_2", "-tls1_3"} {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			cmd := exec.CommandContext(ctx, bin, "s_server", "-accept", "127.0.0.1:0", "-cert", p.CertFile, "-key", p.KeyFile,
				"-alpn", "gyre/1", v, "-rev", "-naccept", "1", "-trace")
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			cmd.Stderr = cmd.Stdout
			require.NoError(t, cmd.Start())
			var (
				mu  sync.Mutex
				log strings.Builder
			)
			addrCh := make(chan string, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				sc := bufio.NewScanner(stdout)
				re := regexp.MustCompile(`^ACCEPT (\S+)`)
				for sc.Scan() {
					mu.Lock()
					log.WriteString(sc.Text() + "\n")
					mu.Unlock()
					if m := re.FindStringSubmatch(sc.Text()); m != nil {
						addrCh <- m[1]
					}
				}
			}()
			var addr string
			select {
			case addr = <-addrCh:
			case <-time.After(10 * time.Second):
				t.Fatal("s_server did not start")
			}
			h := reactortest.Start(t, kind)
			cli := newRec()
			cli.onHS = func(r *rec) { _ = r.tr.Write([]byte("hello gyre\n")) }
			cli.onData = func(r *rec, _ []byte) {
				if bytes.Contains(r.data, []byte("eryg olleh")) {
					_ = r.tr.LoseConnection()
				}
			}
			cfg := p.client()
			cfg.ServerName = ""
			cfg.NextProtos = []string{"gyre/1"}
			_, err = gyretls.Connect(h.Loop, strings.Replace(addr, "127.0.0.1", "localhost", 1), newClient(cli), cfg, gyretls.ConnectOptions{})
			require.NoError(t, err)
			st := cli.waitHS(t, 10*time.Second)
			require.Equal(t, "gyre/1", st.NegotiatedProtocol)
			if v == "-tls1_3" {
				require.Equal(t, uint16(ctls.VersionTLS13), st.Version)
			} else {
				require.Equal(t, uint16(ctls.VersionTLS12), st.Version)
			}
			require.ErrorIs(t, cli.waitLost(t, 10*time.Second), transports.ErrConnectionDone)
			h.StopWait()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			_ = cmd.Wait()
			cancel()
			mu.Lock()
			s := log.String()
			mu.Unlock()
			require.Regexp(t, `(?s)extension_type=server_name.*localhost`, s)
			data, _, _, _ := cli.get()
			require.Contains(t, string(data), "eryg olleh")
		}
	})
}
