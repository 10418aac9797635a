package resp

import (
	"runtime"
	"sort"
	"strconv"
	"time"
)

// Connection and server administration commands: COMMAND, CONFIG, INFO,
// CLIENT, HELLO. They exist so that clients (redis-cli, redis-benchmark,
// client libraries) start and behave; their answers are minimal but valid.

// Version is the Redis version the server reports in INFO and HELLO.
const Version = "7.0.0"

func (c *conn) subcommandError(argv [][]byte) {
	c.out = append(c.out, "-ERR unknown subcommand '"...)
	start := len(c.out)
	c.out = append(c.out, cut(argv[1], 128)...)
	c.out = append(c.out, "'. Try "...)
	for _, ch := range argv[0] {
		if 'a' <= ch && ch <= 'z' {
			ch -= 'a' - 'A'
		}
		c.out = append(c.out, ch)
	}
	c.out = append(c.out, " HELP."...)
	sanitize(c.out[start:])
	c.out = append(c.out, '\r', '\n')
}

func (c *conn) subArityError(cmd, sub string) {
	c.arityError(cmd + "|" + sub)
}

// appendCommandInfo appends a command's COMMAND INFO entry in Redis 7's
// layout: name, arity, flags, first key, last key, step, ACL categories,
// tips, key specs, subcommands.
func appendCommandInfo(b []byte, cmd *command) []byte {
	b = appendArray(b, 10)
	b = appendBulkString(b, cmd.name)
	b = appendInt(b, int64(cmd.arity))
	b = appendArray(b, len(cmd.flags))
	for _, f := range cmd.flags {
		b = appendSimple(b, f)
	}
	b = appendInt(b, int64(cmd.first))
	b = appendInt(b, int64(cmd.last))
	b = appendInt(b, int64(cmd.step))
	b = appendArray(b, 0)
	b = appendArray(b, 0)
	b = appendArray(b, 0)
	return appendArray(b, 0)
}

// appendCommandDocs appends a command's COMMAND DOCS map (flattened): the
// three mandatory fields.
func appendCommandDocs(b []byte, cmd *command) []byte {
	b = appendArray(b, 6)
	b = appendBulkString(b, "summary")
	b = appendBulkString(b, cmd.summary)
	b = appendBulkString(b, "since")
	b = appendBulkString(b, "1.0.0")
	b = appendBulkString(b, "group")
	return appendBulkString(b, cmd.group)
}

func cmdCommand(c *conn, argv [][]byte) {
	if len(argv) == 1 {
		c.out = appendArray(c.out, len(commandNames))
		for _, n := range commandNames {
			c.out = appendCommandInfo(c.out, commandTable[n])
		}
		return
	}
	sub := argv[1]
	switch {
	case equalFold(sub, "count"):
		if len(argv) != 2 {
			c.subArityError("command", "count")
			return
		}
		c.out = appendInt(c.out, int64(len(commandNames)))
	case equalFold(sub, "list"):
		c.out = appendArray(c.out, len(commandNames))
		for _, n := range commandNames {
			c.out = appendBulkString(c.out, n)
		}
	case equalFold(sub, "info"):
		if len(argv) == 2 {
			cmdCommand(c, argv[:1])
			return
		}
		c.out = appendArray(c.out, len(argv)-2)
		for _, n := range argv[2:] {
			if cmd := lookupCommand(n); cmd != nil {
				c.out = appendCommandInfo(c.out, cmd)
			} else {
				c.out = append(c.out, replyNull...)
			}
		}
	case equalFold(sub, "docs"):
		if len(argv) == 2 {
			c.out = appendArray(c.out, 2*len(commandNames))
			for _, n := range commandNames {
				c.out = appendBulkString(c.out, n)
				c.out = appendCommandDocs(c.out, commandTable[n])
			}
			return
		}
		var found []*command
		for _, n := range argv[2:] {
			if cmd := lookupCommand(n); cmd != nil {
				found = append(found, cmd)
			}
		}
		c.out = appendArray(c.out, 2*len(found))
		for _, cmd := range found {
			c.out = appendBulkString(c.out, cmd.name)
			c.out = appendCommandDocs(c.out, cmd)
		}
	default:
		c.subcommandError(argv)
	}
}

func cmdConfig(c *conn, argv [][]byte) {
	sub := argv[1]
	switch {
	case equalFold(sub, "get"):
		if len(argv) < 3 {
			c.subArityError("config", "get")
			return
		}
		// Answer each matching parameter once, in a stable order.
		var names []string
		for name := range c.f.config {
			for _, pat := range argv[2:] {
				if globMatchFold(pat, name) {
					names = append(names, name)
					break
				}
			}
		}
		sort.Strings(names)
		c.out = appendArray(c.out, 2*len(names))
		for _, n := range names {
			c.out = appendBulkString(c.out, n)
			c.out = appendBulkString(c.out, c.f.config[n])
		}
	case equalFold(sub, "set"):
		if len(argv) < 4 || len(argv)%2 != 0 {
			c.subArityError("config", "set")
			return
		}
		c.out = append(c.out, "-ERR Unknown option or number of arguments for CONFIG SET - '"...)
		start := len(c.out)
		c.out = append(c.out, cut(argv[2], 128)...)
		sanitize(c.out[start:])
		c.out = append(c.out, "'\r\n"...)
	case equalFold(sub, "resetstat"):
		c.out = append(c.out, replyOK...)
	default:
		c.subcommandError(argv)
	}
}

func cmdInfo(c *conn, _ [][]byte) {
	var b []byte
	b = append(b, "# Server\r\nredis_version:"+Version+"\r\nredis_mode:standalone\r\n"...)
	b = append(b, "os:"+runtime.GOOS+"\r\narch_bits:64\r\nmultiplexing_api:gyre\r\n"...)
	b = append(b, "uptime_in_seconds:"...)
	// Uptime on the connection's clock, from the store's first request.
	b = strconv.AppendInt(b, (c.clockNow()-time.Hour.Milliseconds())/1000, 10)
	b = append(b, "\r\n\r\n# Clients\r\nconnected_clients:"...)
	b = strconv.AppendInt(b, c.f.clients.Load(), 10)
	b = append(b, "\r\n\r\n# Persistence\r\nloading:0\r\naof_enabled:0\r\n\r\n# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n# Keyspace\r\n"...)
	if n := len(c.s.m); n > 0 {
		b = append(b, "db0:keys="...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, ",expires="...)
		b = strconv.AppendInt(b, int64(len(c.s.volatile)), 10)
		b = append(b, ",avg_ttl=0\r\n"...)
	}
	c.out = appendBulk(c.out, b)
}

func cmdClient(c *conn, argv [][]byte) {
	sub := argv[1]
	switch {
	case equalFold(sub, "setname"):
		if len(argv) != 3 {
			c.subArityError("client", "setname")
			return
		}
		for _, ch := range argv[2] {
			if ch < '!' || ch > '~' {
				c.err("ERR Client names cannot contain spaces, newlines or special characters.")
				return
			}
		}
		c.name = string(argv[2])
		c.out = append(c.out, replyOK...)
	case equalFold(sub, "getname"):
		if c.name == "" {
			c.out = append(c.out, replyNull...)
		} else {
			c.out = appendBulkString(c.out, c.name)
		}
	case equalFold(sub, "id"):
		c.out = appendInt(c.out, c.id)
	case equalFold(sub, "setinfo"):
		if len(argv) != 4 {
			c.subArityError("client", "setinfo")
			return
		}
		c.out = append(c.out, replyOK...)
	default:
		c.subcommandError(argv)
	}
}

// cmdHello answers HELLO for protocol 2 (or none); RESP3 is not spoken.
func cmdHello(c *conn, argv [][]byte) {
	if len(argv) >= 2 {
		v, ok := parseInt(argv[1])
		if !ok {
			c.err("ERR Protocol version is not an integer or out of range")
			return
		}
		if v != 2 {
			c.err("NOPROTO unsupported protocol version")
			return
		}
		for i := 2; i < len(argv); i++ {
			switch {
			case equalFold(argv[i], "setname") && i+1 < len(argv):
				c.name = string(argv[i+1])
				i++
			case equalFold(argv[i], "auth") && i+2 < len(argv):
				i += 2
			default:
				c.err(errSyntax)
				return
			}
		}
	}
	c.out = appendArray(c.out, 14)
	c.out = appendBulkString(c.out, "server")
	c.out = appendBulkString(c.out, "redis")
	c.out = appendBulkString(c.out, "version")
	c.out = appendBulkString(c.out, Version)
	c.out = appendBulkString(c.out, "proto")
	c.out = appendInt(c.out, 2)
	c.out = appendBulkString(c.out, "id")
	c.out = appendInt(c.out, c.id)
	c.out = appendBulkString(c.out, "mode")
	c.out = appendBulkString(c.out, "standalone")
	c.out = appendBulkString(c.out, "role")
	c.out = appendBulkString(c.out, "master")
	c.out = appendBulkString(c.out, "modules")
	c.out = appendArray(c.out, 0)
}
