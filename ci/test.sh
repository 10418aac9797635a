#!/usr/bin/env bash
# The whole test suite, as the README gives it: formatting, vet, staticcheck
# (when installed), the unit and integration tests with -race once per
# backend, the serialized sysctl tests (root only), the giouring differential
# tests, fuzz seed corpora (part of go test) and the real-peer checks.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"
export CGO_ENABLED=1

step() { printf '\n=== %s\n' "$*"; }

step "gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "gofmt would change:"; echo "$bad"; exit 1; fi

step "go vet"
go vet ./...
go vet -tags giouring ./uring/...

if command -v staticcheck >/dev/null 2>&1; then
  step "staticcheck"
  staticcheck ./...
fi

for be in uring epoll; do
  step "go test -race (GYRE_BACKEND=$be)"
  GYRE_BACKEND=$be go test -race -count=1 -timeout 20m ./...
done

if [ "$(id -u)" = 0 ] && [ -w /proc/sys/kernel/io_uring_disabled ]; then
  step "sysctl io_uring_disabled tests (serialized)"
  GYRE_SYSCTL_TESTS=1 go test -p 1 -count=1 -run 'Sysctl' ./uring/ ./reactor/
fi

step "giouring differential tests"
go test -count=1 -tags giouring -ldflags=-checklinkname=0 ./uring/...

step "benchmarks compile and run once (allocation checks)"
go test -run '^$' -bench . -benchtime 1x ./... >/dev/null

step "real peers"
bash ci/peers.sh

echo
echo "all tests passed"
