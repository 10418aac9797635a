// Package httpfuzz holds the fuzz targets of protocols/http: the request head
// parser, the chunked body decoder, and the whole server protocol fed at
// different chunkings. The seed corpora under testdata/fuzz run in every
// `go test`; `go test -fuzz=FuzzParseHead ./fuzz/http` (etc.) explores further.
package httpfuzz
