package http

const (
	// maxChunkLine bounds a chunk-size line with its extensions.
	maxChunkLine = 4096
	// defaultMaxTrailer bounds the trailer section when the decoder has no limit.
	defaultMaxTrailer = 16 << 10
)

const (
	stSize = iota
	stSizeMore
	stSizeWS
	stExt
	stSizeLF
	stData
	stDataCR
	stDataLF
	stTrailerStart
	stTrailerName
	stTrailerValue
	stTrailerLF
	stEndLF
	stDone
)

// ChunkedDecoder decodes a chunked body (RFC 9112 §7.1) incrementally:
// chunk sizes, extensions (checked and dropped), data, the last chunk and the
// trailer section (parsed and dropped). Chunk lines must end in CR LF. The
// zero value is ready; Reset makes it reusable. Not goroutine-safe.
type ChunkedDecoder struct {
	// MaxBodyBytes limits the decoded body; 0 means no limit. A chunk size
	// that would pass it fails with an error matching ErrBodyTooLarge.
	MaxBodyBytes int64
	// MaxTrailerBytes limits the trailer section; 0 means 16 KiB.
	MaxTrailerBytes int

	state   uint8
	size    int64 // bytes left in the current chunk (in stSize*: the value so far)
	total   int64 // decoded bytes declared so far
	line    int   // bytes in the current chunk-size line
	trailer int   // bytes in the trailer section
}

// Reset prepares d for a new body, keeping the limits.
func (d *ChunkedDecoder) Reset() {
	*d = ChunkedDecoder{MaxBodyBytes: d.MaxBodyBytes, MaxTrailerBytes: d.MaxTrailerBytes}
}

// Done reports that the whole body, trailers included, has been decoded.
func (d *ChunkedDecoder) Done() bool { return d.state == stDone }

// Decode consumes src and writes the decoded data to dst. It returns the
// bytes written and read, and done once the body's end was read (src bytes
// after that are not consumed). dst may overlap src if it starts at the same
// position or earlier (in-place decoding), since decoding never writes more
// than it has read. Decode stops early when dst is full. After an error, d is
// unusable until Reset.
func (d *ChunkedDecoder) Decode(dst, src []byte) (nw, nr int, done bool, err error) {
	i := 0
	for i < len(src) {
		c := src[i]
		switch d.state {
		case stData:
			n := int64(len(src) - i)
			if n > d.size {
				n = d.size
			}
			if room := int64(len(dst) - nw); n > room {
				n = room
			}
			if n == 0 {
				return nw, i, false, nil
			}
			copy(dst[nw:], src[i:i+int(n)])
			nw += int(n)
			i += int(n)
			d.size -= n
			if d.size == 0 {
				d.state = stDataCR
			}
			continue
		case stSize, stSizeMore:
			if v := unhex(c); v >= 0 {
				if d.size > (1<<63-1)>>4 {
					return nw, i, false, errChunkOverflow
				}
				d.size = d.size<<4 | int64(v)
				d.state = stSizeMore
			} else if d.state == stSize {
				return nw, i, false, errChunkSize
			} else {
				switch c {
				case ' ', '\t':
					d.state = stSizeWS
				case ';':
					d.state = stExt
				case '\r':
					d.state = stSizeLF
				default:
					return nw, i, false, errChunkSize
				}
			}
			d.line++
		case stSizeWS:
			switch c {
			case ' ', '\t':
			case ';':
				d.state = stExt
			default:
				return nw, i, false, errChunkExt
			}
			d.line++
		case stExt:
			if c == '\r' {
				d.state = stSizeLF
			} else if class[c]&cValue == 0 {
				return nw, i, false, errChunkExt
			}
			d.line++
		case stSizeLF:
			if c != '\n' {
				return nw, i, false, errChunkCRLF
			}
			d.line = 0
			if d.size == 0 {
				d.state = stTrailerStart
				break
			}
			if d.MaxBodyBytes > 0 && d.size > d.MaxBodyBytes-d.total {
				return nw, i, false, errBodyTooLarge
			}
			d.total += d.size
			d.state = stData
		case stDataCR:
			if c != '\r' {
				return nw, i, false, errChunkCRLF
			}
			d.state = stDataLF
		case stDataLF:
			if c != '\n' {
				return nw, i, false, errChunkCRLF
			}
			d.state = stSize
			d.size = 0
		case stTrailerStart:
			if c == '\r' {
				d.state = stEndLF
				break
			}
			if class[c]&cTchar == 0 {
				return nw, i, false, errTrailer
			}
			d.state = stTrailerName
			d.trailer++
		case stTrailerName:
			if c == ':' {
				d.state = stTrailerValue
			} else if class[c]&cTchar == 0 {
				return nw, i, false, errTrailer
			}
			d.trailer++
		case stTrailerValue:
			if c == '\r' {
				d.state = stTrailerLF
			} else if class[c]&cValue == 0 {
				return nw, i, false, errTrailer
			}
			d.trailer++
		case stTrailerLF:
			if c != '\n' {
				return nw, i, false, errTrailer
			}
			d.state = stTrailerStart
		case stEndLF:
			if c != '\n' {
				return nw, i, false, errChunkCRLF
			}
			d.state = stDone
			return nw, i + 1, true, nil
		case stDone:
			return nw, i, true, nil
		}
		if d.line > maxChunkLine {
			return nw, i, false, errChunkLine
		}
		max := d.MaxTrailerBytes
		if max <= 0 {
			max = defaultMaxTrailer
		}
		if d.trailer > max {
			return nw, i, false, errTrailerSize
		}
		i++
	}
	return nw, i, d.state == stDone, nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
