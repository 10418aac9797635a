package resp

import (
	"math"
	"slices"
)

// String and keyspace commands. Handlers run with the store locked (shared
// stores) and append their reply to c.out.

// setEntry stores val under key; e is key's live entry or nil.
func (c *conn) setEntry(e *entry, key, val []byte, keepTTL bool) *entry {
	if e == nil {
		e = &entry{key: string(key), vidx: -1}
		e.val = append(make([]byte, 0, len(val)), val...)
		c.s.m[e.key] = e
		return e
	}
	e.setVal(val)
	if !keepTTL {
		c.s.persist(e)
	}
	return e
}

// Expiry kinds of SET.
const (
	expNone = iota
	expEX
	expPX
	expEXAT
	expPXAT
)

func cmdSet(c *conn, argv [][]byte) {
	var nx, xx, get, keepTTL bool
	kind := expNone
	var expArg []byte
	for i := 3; i < len(argv); i++ {
		a := argv[i]
		next := i+1 < len(argv)
		switch {
		case equalFold(a, "nx") && !xx:
			nx = true
		case equalFold(a, "xx") && !nx:
			xx = true
		case equalFold(a, "get"):
			get = true
		case equalFold(a, "keepttl") && kind == expNone:
			keepTTL = true
		case next && !keepTTL && (kind == expNone || kind == expEX) && equalFold(a, "ex"):
			kind, expArg, i = expEX, argv[i+1], i+1
		case next && !keepTTL && (kind == expNone || kind == expPX) && equalFold(a, "px"):
			kind, expArg, i = expPX, argv[i+1], i+1
		case next && !keepTTL && (kind == expNone || kind == expEXAT) && equalFold(a, "exat"):
			kind, expArg, i = expEXAT, argv[i+1], i+1
		case next && !keepTTL && (kind == expNone || kind == expPXAT) && equalFold(a, "pxat"):
			kind, expArg, i = expPXAT, argv[i+1], i+1
		default:
			c.err(errSyntax)
			return
		}
	}
	var when int64
	if kind != expNone {
		var ok bool
		unit := int64(1)
		if kind == expEX || kind == expEXAT {
			unit = 1000
		}
		when, ok = c.deadline(expArg, unit, kind == expEXAT || kind == expPXAT, false, "set")
		if !ok {
			return
		}
	}
	c.set(argv[1], argv[2], nx, xx, get, keepTTL, kind != expNone, when)
}

// set is the common part of SET, SETNX, SETEX, PSETEX, GETSET: it stores val
// under key as the flags say and answers (OK, or the old value for get).
func (c *conn) set(key, val []byte, nx, xx, get, keepTTL, expires bool, when int64) {
	e := c.lookup(key)
	if get {
		if e == nil {
			c.out = append(c.out, replyNull...)
		} else {
			c.out = appendBulk(c.out, e.val)
		}
	}
	if (nx && e != nil) || (xx && e == nil) {
		if !get {
			c.out = append(c.out, replyNull...)
		}
		return
	}
	if !get {
		c.out = append(c.out, replyOK...)
	}
	if expires && when <= c.clockNow() {
		// A deadline already past (EXAT/PXAT): the key is simply gone.
		if e != nil {
			c.s.remove(e)
		}
		return
	}
	e = c.setEntry(e, key, val, keepTTL)
	if expires {
		c.s.expireAt(e, when)
	}
}

func cmdSetNX(c *conn, argv [][]byte) {
	if c.lookup(argv[1]) != nil {
		c.out = append(c.out, replyZero...)
		return
	}
	c.setEntry(nil, argv[1], argv[2], false)
	c.out = append(c.out, replyOne...)
}

func cmdSetEX(c *conn, argv [][]byte)  { c.setEX(argv, 1000, "setex") }
func cmdPSetEX(c *conn, argv [][]byte) { c.setEX(argv, 1, "psetex") }

func (c *conn) setEX(argv [][]byte, unit int64, name string) {
	when, ok := c.deadline(argv[2], unit, false, false, name)
	if ok {
		c.set(argv[1], argv[3], false, false, false, false, true, when)
	}
}

func cmdGet(c *conn, argv [][]byte) {
	if e := c.lookup(argv[1]); e != nil {
		c.out = appendBulk(c.out, e.val)
	} else {
		c.out = append(c.out, replyNull...)
	}
}

func cmdGetSet(c *conn, argv [][]byte) {
	c.set(argv[1], argv[2], false, false, true, false, false, 0)
}

func cmdGetDel(c *conn, argv [][]byte) {
	e := c.lookup(argv[1])
	if e == nil {
		c.out = append(c.out, replyNull...)
		return
	}
	c.out = appendBulk(c.out, e.val)
	c.s.remove(e)
}

func cmdAppend(c *conn, argv [][]byte) {
	e := c.lookup(argv[1])
	if e == nil {
		e = c.setEntry(nil, argv[1], argv[2], false)
	} else {
		if int64(len(e.val))+int64(len(argv[2])) > c.f.opts.MaxBulkLen {
			c.err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
			return
		}
		e.val = append(e.val, argv[2]...)
	}
	c.out = appendInt(c.out, int64(len(e.val)))
}

func cmdStrlen(c *conn, argv [][]byte) {
	n := 0
	if e := c.lookup(argv[1]); e != nil {
		n = len(e.val)
	}
	c.out = appendInt(c.out, int64(n))
}

func cmdIncr(c *conn, argv [][]byte) { c.incrBy(argv[1], 1) }
func cmdDecr(c *conn, argv [][]byte) { c.incrBy(argv[1], -1) }

func cmdIncrBy(c *conn, argv [][]byte) {
	if v, ok := parseInt(argv[2]); ok {
		c.incrBy(argv[1], v)
	} else {
		c.err(errNotInt)
	}
}

func cmdDecrBy(c *conn, argv [][]byte) {
	v, ok := parseInt(argv[2])
	switch {
	case !ok:
		c.err(errNotInt)
	case v == math.MinInt64:
		c.err("ERR decrement would overflow")
	default:
		c.incrBy(argv[1], -v)
	}
}

// incrBy adds by to key's integer value (0 when missing), keeping its expiry,
// and rewrites the value in place.
func (c *conn) incrBy(key []byte, by int64) {
	e := c.lookup(key)
	var v int64
	if e != nil {
		var ok bool
		if v, ok = parseInt(e.val); !ok {
			c.err(errNotInt)
			return
		}
	}
	if (by < 0 && v < 0 && by < math.MinInt64-v) || (by > 0 && v > 0 && by > math.MaxInt64-v) {
		c.err(errOverflow)
		return
	}
	v += by
	if e == nil {
		e = &entry{key: string(key), vidx: -1, val: make([]byte, 0, 20)}
		c.s.m[e.key] = e
	}
	e.val = formatInt(e.val[:0], v)
	c.out = appendInt(c.out, v)
}

func cmdMSet(c *conn, argv [][]byte) {
	if len(argv)%2 == 0 {
		c.arityError("mset")
		return
	}
	for i := 1; i < len(argv); i += 2 {
		c.setEntry(c.lookup(argv[i]), argv[i], argv[i+1], false)
	}
	c.out = append(c.out, replyOK...)
}

func cmdMSetNX(c *conn, argv [][]byte) {
	if len(argv)%2 == 0 {
		c.arityError("msetnx")
		return
	}
	for i := 1; i < len(argv); i += 2 {
		if c.lookup(argv[i]) != nil {
			c.out = append(c.out, replyZero...)
			return
		}
	}
	for i := 1; i < len(argv); i += 2 {
		c.setEntry(c.s.m[string(argv[i])], argv[i], argv[i+1], false)
	}
	c.out = append(c.out, replyOne...)
}

func cmdMGet(c *conn, argv [][]byte) {
	c.out = appendArray(c.out, len(argv)-1)
	for _, k := range argv[1:] {
		if e := c.lookup(k); e != nil {
			c.out = appendBulk(c.out, e.val)
		} else {
			c.out = append(c.out, replyNull...)
		}
	}
}

func cmdDel(c *conn, argv [][]byte) {
	n := 0
	for _, k := range argv[1:] {
		if e := c.lookup(k); e != nil {
			c.s.remove(e)
			n++
		}
	}
	c.out = appendInt(c.out, int64(n))
}

func cmdExists(c *conn, argv [][]byte) {
	n := 0
	for _, k := range argv[1:] {
		if c.lookup(k) != nil {
			n++
		}
	}
	c.out = appendInt(c.out, int64(n))
}

func cmdType(c *conn, argv [][]byte) {
	if c.lookup(argv[1]) != nil {
		c.out = appendSimple(c.out, "string")
	} else {
		c.out = appendSimple(c.out, "none")
	}
}

func cmdKeys(c *conn, argv [][]byte) {
	pat := argv[1]
	all := len(pat) == 1 && pat[0] == '*'
	var keys []string
	for k, e := range c.s.m {
		if e.exp != 0 && c.clockNow() > e.exp {
			c.s.remove(e)
			continue
		}
		if all || globMatch(pat, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // Redis's order is arbitrary; a sorted one is reproducible
	c.out = appendArray(c.out, len(keys))
	for _, k := range keys {
		c.out = appendBulkString(c.out, k)
	}
}

func cmdExpire(c *conn, argv [][]byte)    { c.expire(argv, 1000, false, "expire") }
func cmdPExpire(c *conn, argv [][]byte)   { c.expire(argv, 1, false, "pexpire") }
func cmdExpireAt(c *conn, argv [][]byte)  { c.expire(argv, 1000, true, "expireat") }
func cmdPExpireAt(c *conn, argv [][]byte) { c.expire(argv, 1, true, "pexpireat") }

// expire is EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT with Redis 7's NX, XX,
// GT and LT options.
func (c *conn) expire(argv [][]byte, unit int64, abs bool, name string) {
	var nx, xx, gt, lt bool
	for _, a := range argv[3:] {
		switch {
		case equalFold(a, "nx"):
			nx = true
		case equalFold(a, "xx"):
			xx = true
		case equalFold(a, "gt"):
			gt = true
		case equalFold(a, "lt"):
			lt = true
		default:
			c.out = append(c.out, "-ERR Unsupported option "...)
			start := len(c.out)
			c.out = append(c.out, a...)
			sanitize(c.out[start:])
			c.out = append(c.out, '\r', '\n')
			return
		}
	}
	if nx && (xx || gt || lt) {
		c.err(errNXAndXXGTLT)
		return
	}
	if gt && lt {
		c.err(errGTAndLT)
		return
	}
	when, ok := c.deadline(argv[2], unit, abs, true, name)
	if !ok {
		return
	}
	e := c.lookup(argv[1])
	if e == nil ||
		(nx && e.exp != 0) ||
		(xx && e.exp == 0) ||
		(gt && (e.exp == 0 || when <= e.exp)) ||
		(lt && e.exp != 0 && when >= e.exp) {
		c.out = append(c.out, replyZero...)
		return
	}
	if when <= c.clockNow() {
		c.s.remove(e)
	} else {
		c.s.expireAt(e, when)
	}
	c.out = append(c.out, replyOne...)
}

func cmdTTL(c *conn, argv [][]byte)  { c.ttl(argv[1], false) }
func cmdPTTL(c *conn, argv [][]byte) { c.ttl(argv[1], true) }

func (c *conn) ttl(key []byte, ms bool) {
	e := c.lookup(key)
	switch {
	case e == nil:
		c.out = appendInt(c.out, -2)
	case e.exp == 0:
		c.out = appendInt(c.out, -1)
	default:
		t := max(e.exp-c.clockNow(), 0)
		if !ms {
			t = (t + 500) / 1000
		}
		c.out = appendInt(c.out, t)
	}
}

func cmdPersist(c *conn, argv [][]byte) {
	if e := c.lookup(argv[1]); e != nil && c.s.persist(e) {
		c.out = append(c.out, replyOne...)
	} else {
		c.out = append(c.out, replyZero...)
	}
}
