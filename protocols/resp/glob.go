package resp

// Glob-style matching as Redis's stringmatchlen: '*', '?', '[...]' classes
// with ranges and '^', and '\' escapes. The matcher backtracks only to the
// last '*', so it runs in O(len(pattern)·len(s)) at worst.

func globMatch(pat []byte, s string) bool     { return glob(pat, s, false) }
func globMatchFold(pat []byte, s string) bool { return glob(pat, s, true) }

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func glob(p []byte, s string, fold bool) bool {
	eq := func(a, b byte) bool {
		if fold {
			return lower(a) == lower(b)
		}
		return a == b
	}
	px, sx := 0, 0
	starP, starS := -1, -1
	for sx < len(s) {
		if px < len(p) {
			switch c := p[px]; {
			case c == '*':
				starP, starS = px, sx
				px++
				continue
			case c == '?':
				px++
				sx++
				continue
			case c == '[':
				n, ok := matchClass(p[px:], s[sx], eq)
				if ok {
					px += n
					sx++
					continue
				}
			case c == '\\' && px+1 < len(p):
				if eq(p[px+1], s[sx]) {
					px += 2
					sx++
					continue
				}
			default:
				if eq(c, s[sx]) {
					px++
					sx++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		px, sx = starP+1, starS
	}
	for px < len(p) && p[px] == '*' {
		px++
	}
	return px == len(p)
}

// matchClass matches c against the class at the start of p ("[...]"); it
// returns the class's length and whether c is in it. An unterminated class
// ends with the pattern, as in Redis.
func matchClass(p []byte, c byte, eq func(a, b byte) bool) (int, bool) {
	i := 1
	not := i < len(p) && p[i] == '^'
	if not {
		i++
	}
	match := false
	for i < len(p) && p[i] != ']' {
		switch {
		case p[i] == '\\' && i+1 < len(p):
			i++
			if eq(p[i], c) {
				match = true
			}
		case i+2 < len(p) && p[i+1] == '-':
			lo, hi := p[i], p[i+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			in := lo <= c && c <= hi
			if !in && eq('A', 'a') { // folding case
				lc := lower(c)
				in = lower(lo) <= lc && lc <= lower(hi)
			}
			if in {
				match = true
			}
			i += 2
		default:
			if eq(p[i], c) {
				match = true
			}
		}
		i++
	}
	if i < len(p) {
		i++ // the ']'
	}
	return i, match != not
}
