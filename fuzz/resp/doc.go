// Package respfuzz holds the fuzz targets of protocols/resp. Their seed
// corpora live in testdata/fuzz, so plain `go test ./fuzz/resp/` runs every
// seed; `go test -fuzz=FuzzServer ./fuzz/resp/` explores further.
package respfuzz
