package http

import "iter"

// Header is an ordered list of header fields. Lookups compare names
// ASCII-case-insensitively; names are kept (and written) as given. The zero
// Header is empty and ready to use.
//
// Not goroutine-safe. A request's Header holds views into the connection's
// receive buffer and a ResponseWriter's Header is reused for the next
// response: both are valid only until ServeHTTP returns.
type Header struct {
	f []field
}

type field struct {
	name, value string
}

// Get returns the value of the first field named name, or "".
func (h *Header) Get(name string) string {
	for i := range h.f {
		if equalFold(h.f[i].name, name) {
			return h.f[i].value
		}
	}
	return ""
}

// Has reports whether a field named name is present.
func (h *Header) Has(name string) bool {
	for i := range h.f {
		if equalFold(h.f[i].name, name) {
			return true
		}
	}
	return false
}

// Values returns the values of every field named name, in order. It allocates
// the returned slice; use All to iterate without allocating.
func (h *Header) Values(name string) []string {
	var out []string
	for i := range h.f {
		if equalFold(h.f[i].name, name) {
			out = append(out, h.f[i].value)
		}
	}
	return out
}

// Add appends a field.
func (h *Header) Add(name, value string) {
	h.f = append(h.f, field{name: name, value: value})
}

// Set replaces every field named name with one field holding value.
func (h *Header) Set(name, value string) {
	for i := range h.f {
		if equalFold(h.f[i].name, name) {
			h.f[i].value = value
			h.del(name, i+1)
			return
		}
	}
	h.Add(name, value)
}

// Del removes every field named name.
func (h *Header) Del(name string) { h.del(name, 0) }

func (h *Header) del(name string, from int) {
	j := from
	for i := from; i < len(h.f); i++ {
		if !equalFold(h.f[i].name, name) {
			h.f[j] = h.f[i]
			j++
		}
	}
	clear(h.f[j:])
	h.f = h.f[:j]
}

// Len is the number of fields.
func (h *Header) Len() int { return len(h.f) }

// All yields every field's name and value, in order, without allocating.
func (h *Header) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for i := range h.f {
			if !yield(h.f[i].name, h.f[i].value) {
				return
			}
		}
	}
}

// Reset removes every field and keeps the storage.
func (h *Header) Reset() {
	clear(h.f)
	h.f = h.f[:0]
}

// equalFold compares ASCII strings case-insensitively.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x|0x20 != y|0x20 || x|0x20 < 'a' || x|0x20 > 'z' {
			return false
		}
	}
	return true
}
