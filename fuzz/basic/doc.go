// Package basic holds the fuzz targets for the framers in protocols/basic
// (line, netstring and length-prefixed receivers). The targets are in the test
// files; their seed corpora under testdata/fuzz run with every go test:
//
//	go test ./fuzz/basic/
//	go test ./fuzz/basic/ -run '^$' -fuzz FuzzLineReceiver -fuzztime 30s
package basic
