// Package endpoint turns endpoint descriptions — strings such as
// "tcp:8080:interface=127.0.0.1" — into listening ports and connections:
// Twisted's serverFromString and clientFromString, so that a program's
// command line or configuration picks the transport.
//
//	port, err := endpoint.Listen(loop, "tcp:8080:interface=127.0.0.1:backlog=128", factory)
//	port, err := endpoint.Listen(loop, "unix:/run/app.sock:mode=660", factory)
//	port, err := endpoint.Listen(loop, "ssl:8443:privateKey=key.pem:certKey=cert.pem", factory)
//	port, err := endpoint.Listen(loop, "systemd:domain=INET:index=0", factory)
//	conn, err := endpoint.Connect(loop, "tls:example.com:443:trustRoots=ca.pem", clientFactory)
//
// The server types are tcp, tcp6, unix, ssl (tls) and systemd (ParseServer
// lists their parameters); the client types tcp, unix and tls (ssl)
// (ParseClient). Quoting follows Twisted (Parse): ':' separates arguments,
// '\' escapes the next character, Quote escapes a value.
//
// systemd adopts a listening socket passed by socket activation (systemd,
// systemd-socket-activate, or any activator setting LISTEN_FDS and
// LISTEN_PID; sd_listen_fds(3)) through stream.AdoptStreamPort: TCP and UNIX
// sockets, on either backend.
//
// Every description error matches ErrBadDescription and names the bad part;
// errors of the listen or connect itself are those of the transport package
// (tcp, unix, tls, stream), wrapped with the description. The functions are
// goroutine-safe, as the transports' Listen and Connect are.
package endpoint
