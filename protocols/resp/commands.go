package resp

import (
	"math"
	"sort"
)

// command is one entry of the command table.
type command struct {
	name    string // lower case, as Redis names it in errors
	arity   int    // Redis arity: n means exactly n arguments (name included), -n at least n
	flags   []string
	first   int // first key argument (0: none)
	last    int // last key argument (-1: the last argument)
	step    int
	group   string
	summary string
	run     func(c *conn, argv [][]byte)
}

// commandTable maps lower-case names to commands; commandNames is sorted;
// commandIndex buckets commands by name length and first letter, for a lookup
// without hashing. All are built once by init and read-only afterwards.
var (
	commandTable map[string]*command
	commandNames []string
	commandIndex [maxCommandName + 1][26][]*command
)

func init() {
	cmds := []*command{
		{name: "ping", arity: -1, flags: []string{"fast"}, group: "connection", summary: "Returns the server's liveliness response.", run: cmdPing},
		{name: "echo", arity: 2, flags: []string{"fast"}, group: "connection", summary: "Returns the given string.", run: cmdEcho},
		{name: "quit", arity: -1, flags: []string{"fast"}, group: "connection", summary: "Closes the connection.", run: cmdQuit},
		{name: "reset", arity: 1, flags: []string{"fast"}, group: "connection", summary: "Resets the connection.", run: cmdReset},
		{name: "select", arity: 2, flags: []string{"fast"}, group: "connection", summary: "Changes the selected database (only 0 exists).", run: cmdSelect},
		{name: "client", arity: -2, group: "connection", summary: "A container for client connection commands.", run: cmdClient},
		{name: "hello", arity: -1, flags: []string{"fast"}, group: "connection", summary: "Handshakes with the server (RESP2 only).", run: cmdHello},
		{name: "set", arity: -3, flags: []string{"write", "denyoom"}, first: 1, last: 1, step: 1, group: "string", summary: "Sets the string value of a key.", run: cmdSet},
		{name: "setnx", arity: 3, flags: []string{"write", "denyoom", "fast"}, first: 1, last: 1, step: 1, group: "string", summary: "Sets a key only when it does not exist.", run: cmdSetNX},
		{name: "setex", arity: 4, flags: []string{"write", "denyoom"}, first: 1, last: 1, step: 1, group: "string", summary: "Sets a key and its expiry in seconds.", run: cmdSetEX},
		{name: "psetex", arity: 4, flags: []string{"write", "denyoom"}, first: 1, last: 1, step: 1, group: "string", summary: "Sets a key and its expiry in milliseconds.", run: cmdPSetEX},
		{name: "get", arity: 2, flags: []string{"readonly", "fast"}, first: 1, last: 1, step: 1, group: "string", summary: "Returns the string value of a key.", run: cmdGet},
		{name: "getset", arity: 3, flags: []string{"write", "denyoom", "fast"}, first: 1, last: 1, step: 1, group: "string", summary: "Sets a key and returns its previous value.", run: cmdGetSet},
		{name: "getdel", arity: 2, flags: []string{"write", "fast"}, first: 1, last: 1, step: 1, group: "string", summary: "Returns a key's value and deletes it.", run: cmdGetDel},
		{name: "append", arity: 3, flags: []string{"write", "denyoom", "fast"}, first: 1, last: 1, step: 1, group: "string", summary: "Appends to a key's value.", run: cmdAppend},
		{name: "strlen", arity: 2, flags: []string{"readonly", "fast"}, first: 1, last: 1, step: 1, group: "string", summary: "Returns the length of a key's value.", run: cmdStrlen},
		{name: "incr", arity: 2, flags: []string{"write", "denyoom", "fast"}, first: 1, last: 1, step: 1, group: "string", summary: "Increments a key's integer value by one.", run: cmdIncr},
		{name: "decr", arity: 2, flags: []string{"write", "denyoom", "fast"}, first: 1, last: 1, step: 1, group: "string", summary: "Decrements a key's integer value by one.", run: cmdDecr},
		{name: "incrby", arity: 3, flags: []string{"write", "denyoom", "fast"}, first: 1, last: 1, step: 1, group: "string", summary: "Increments a key's integer value by a number.", run: cmdIncrBy},
		{name: "decrby", arity: 3, flags: []string{"write", "denyoom", "fast"}, first: 1, last: 1, step: 1, group: "string", summary: "Decrements a key's integer value by a number.", run: cmdDecrBy},
		{name: "mset", arity: -3, flags: []string{"write", "denyoom"}, first: 1, last: -1, step: 2, group: "string", summary: "Sets several keys.", run: cmdMSet},
		{name: "msetnx", arity: -3, flags: []string{"write", "denyoom"}, first: 1, last: -1, step: 2, group: "string", summary: "Sets several keys only when none exists.", run: cmdMSetNX},
		{name: "mget", arity: -2, flags: []string{"readonly", "fast"}, first: 1, last: -1, step: 1, group: "string", summary: "Returns the values of several keys.", run: cmdMGet},
		{name: "del", arity: -2, flags: []string{"write"}, first: 1, last: -1, step: 1, group: "generic", summary: "Deletes keys.", run: cmdDel},
		{name: "unlink", arity: -2, flags: []string{"write", "fast"}, first: 1, last: -1, step: 1, group: "generic", summary: "Deletes keys.", run: cmdDel},
		{name: "exists", arity: -2, flags: []string{"readonly", "fast"}, first: 1, last: -1, step: 1, group: "generic", summary: "Counts the given keys that exist.", run: cmdExists},
		{name: "type", arity: 2, flags: []string{"readonly", "fast"}, first: 1, last: 1, step: 1, group: "generic", summary: "Returns the type of a key.", run: cmdType},
		{name: "keys", arity: 2, flags: []string{"readonly"}, group: "generic", summary: "Returns the keys matching a pattern.", run: cmdKeys},
		{name: "expire", arity: -3, flags: []string{"write", "fast"}, first: 1, last: 1, step: 1, group: "generic", summary: "Sets a key's time to live in seconds.", run: cmdExpire},
		{name: "pexpire", arity: -3, flags: []string{"write", "fast"}, first: 1, last: 1, step: 1, group: "generic", summary: "Sets a key's time to live in milliseconds.", run: cmdPExpire},
		{name: "expireat", arity: -3, flags: []string{"write", "fast"}, first: 1, last: 1, step: 1, group: "generic", summary: "Sets a key's expiry to a Unix time in seconds.", run: cmdExpireAt},
		{name: "pexpireat", arity: -3, flags: []string{"write", "fast"}, first: 1, last: 1, step: 1, group: "generic", summary: "Sets a key's expiry to a Unix time in milliseconds.", run: cmdPExpireAt},
		{name: "ttl", arity: 2, flags: []string{"readonly", "fast"}, first: 1, last: 1, step: 1, group: "generic", summary: "Returns a key's time to live in seconds.", run: cmdTTL},
		{name: "pttl", arity: 2, flags: []string{"readonly", "fast"}, first: 1, last: 1, step: 1, group: "generic", summary: "Returns a key's time to live in milliseconds.", run: cmdPTTL},
		{name: "persist", arity: 2, flags: []string{"write", "fast"}, first: 1, last: 1, step: 1, group: "generic", summary: "Removes a key's expiry.", run: cmdPersist},
		{name: "dbsize", arity: 1, flags: []string{"readonly", "fast"}, group: "server", summary: "Returns the number of keys.", run: cmdDBSize},
		{name: "flushall", arity: -1, flags: []string{"write"}, group: "server", summary: "Removes all keys.", run: cmdFlush},
		{name: "flushdb", arity: -1, flags: []string{"write"}, group: "server", summary: "Removes all keys.", run: cmdFlush},
		{name: "command", arity: -1, group: "server", summary: "Returns detailed information about all commands.", run: cmdCommand},
		{name: "config", arity: -2, group: "server", summary: "A container for server configuration commands.", run: cmdConfig},
		{name: "info", arity: -1, group: "server", summary: "Returns information and statistics about the server.", run: cmdInfo},
	}
	commandTable = make(map[string]*command, len(cmds))
	for _, c := range cmds {
		commandTable[c.name] = c
		commandNames = append(commandNames, c.name)
		commandIndex[len(c.name)][c.name[0]-'a'] = append(commandIndex[len(c.name)][c.name[0]-'a'], c)
	}
	sort.Strings(commandNames)
}

// maxCommandName bounds the names lookupCommand lowers on the stack.
const maxCommandName = 16

// lookupCommand finds name case-insensitively without allocating or hashing.
func lookupCommand(name []byte) *command {
	if len(name) == 0 || len(name) > maxCommandName {
		return nil
	}
	c := lower(name[0])
	if c < 'a' || c > 'z' {
		return nil
	}
	for _, cmd := range commandIndex[len(name)][c-'a'] {
		if equalFold(name, cmd.name) {
			return cmd
		}
	}
	return nil
}

// exec runs one request.
func (c *conn) exec(argv [][]byte) {
	cmd := lookupCommand(argv[0])
	if cmd == nil {
		c.unknownCommand(argv)
		return
	}
	if (cmd.arity > 0 && len(argv) != cmd.arity) || len(argv) < -cmd.arity {
		c.arityError(cmd.name)
		return
	}
	cmd.run(c, argv)
}

// unknownCommand answers like Redis 7: the name and the first arguments,
// each cut so the argument list stays near 128 bytes.
func (c *conn) unknownCommand(argv [][]byte) {
	b := append(c.out, '-')
	start := len(b)
	b = append(b, "ERR unknown command '"...)
	b = append(b, cut(argv[0], 128)...)
	b = append(b, "', with args beginning with: "...)
	n := 0
	for _, a := range argv[1:] {
		if n >= 128 {
			break
		}
		a = cut(a, 128-n)
		b = append(b, '\'')
		b = append(b, a...)
		b = append(b, '\'', ' ')
		n += len(a) + 3
	}
	sanitize(b[start:])
	c.out = append(b, '\r', '\n')
}

func cut(p []byte, n int) []byte {
	if len(p) > n {
		return p[:n]
	}
	return p
}

func (c *conn) arityError(name string) {
	c.out = append(c.out, "-ERR wrong number of arguments for '"...)
	c.out = append(c.out, name...)
	c.out = append(c.out, "' command\r\n"...)
}

// Common error replies.
const (
	errNotInt      = "ERR value is not an integer or out of range"
	errSyntax      = "ERR syntax error"
	errOverflow    = "ERR increment or decrement would overflow"
	errDBIndex     = "ERR DB index is out of range"
	errNXAndXXGTLT = "ERR NX and XX, GT or LT options at the same time are not compatible"
	errGTAndLT     = "ERR GT and LT options at the same time are not compatible"
)

func (c *conn) err(msg string) { c.out = appendError(c.out, msg) }

func (c *conn) invalidExpire(name string) {
	c.out = append(c.out, "-ERR invalid expire time in '"...)
	c.out = append(c.out, name...)
	c.out = append(c.out, "' command\r\n"...)
}

// equalFold reports whether p equals the lower-case ASCII word s, ignoring case.
func equalFold(p []byte, s string) bool {
	if len(p) != len(s) {
		return false
	}
	for i, c := range p {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// unixNow is the batch time as Unix milliseconds.
func (c *conn) unixNow() int64 {
	now := c.clockNow()
	return c.s.base.UnixMilli() + now
}

// deadline converts an expiry argument to the store's scale. unitMS is 1000
// for seconds, 1 for milliseconds; abs says the value is a Unix time. ok is
// false (and the error answered) for a value Redis rejects. allowNonPositive
// is true for EXPIRE and friends, which delete the key for a past time; SET
// and SETEX reject a non-positive value.
func (c *conn) deadline(arg []byte, unitMS int64, abs, allowNonPositive bool, name string) (int64, bool) {
	v, ok := parseInt(arg)
	if !ok {
		c.err(errNotInt)
		return 0, false
	}
	if !allowNonPositive && v <= 0 {
		c.invalidExpire(name)
		return 0, false
	}
	if unitMS > 1 && (v > math.MaxInt64/unitMS || v < math.MinInt64/unitMS) {
		c.invalidExpire(name)
		return 0, false
	}
	v *= unitMS
	if abs {
		return c.s.relUnixMilli(v), true
	}
	if un := c.unixNow(); un > 0 && v > math.MaxInt64-un {
		c.invalidExpire(name)
		return 0, false
	}
	now := c.clockNow()
	if v > math.MaxInt64-now {
		return math.MaxInt64, true
	}
	return now + v, true
}

func cmdPing(c *conn, argv [][]byte) {
	switch len(argv) {
	case 1:
		c.out = append(c.out, replyPong...)
	case 2:
		c.out = appendBulk(c.out, argv[1])
	default:
		c.arityError("ping")
	}
}

func cmdEcho(c *conn, argv [][]byte) { c.out = appendBulk(c.out, argv[1]) }

func cmdQuit(c *conn, _ [][]byte) {
	c.out = append(c.out, replyOK...)
	c.closing = true
}

func cmdReset(c *conn, _ [][]byte) {
	c.name = ""
	c.out = appendSimple(c.out, "RESET")
}

func cmdSelect(c *conn, argv [][]byte) {
	v, ok := parseInt(argv[1])
	switch {
	case !ok || v != int64(int32(v)):
		c.err(errNotInt)
	case v != 0:
		c.err(errDBIndex)
	default:
		c.out = append(c.out, replyOK...)
	}
}

func cmdDBSize(c *conn, _ [][]byte) { c.out = appendInt(c.out, int64(len(c.s.m))) }

func cmdFlush(c *conn, argv [][]byte) {
	if len(argv) > 2 || (len(argv) == 2 && !equalFold(argv[1], "async") && !equalFold(argv[1], "sync")) {
		c.err(errSyntax)
		return
	}
	c.s.flush()
	c.out = append(c.out, replyOK...)
}
