#!/usr/bin/env bash
# The whole test suite, as the README gives it: formatting, vet, staticcheck
# (when installed), the unit and integration tests with -race once per
# backend, the serialized io_uring-disabled step (root only), the giouring
# differential tests, fuzz seed corpora (part of go test), a short fixed fuzz
# run of every fuzz target and the real-peer checks. Each step's duration is
# printed when the next one starts, and all of them at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"
export CGO_ENABLED=1

# step NAME starts a step; the previous one's duration is printed and kept
# for the summary (step_end closes the last one).
step_name="" step_start=0 step_times=""
step_end() {
  if [ -n "$step_name" ]; then
    local d=$(( $(date +%s) - step_start ))
    printf -- '--- %s: %ds\n' "$step_name" "$d"
    step_times+=$(printf '%6ds  %s' "$d" "$step_name")$'\n'
  fi
  step_name=""
}
step() {
  step_end
  step_name="$*" step_start=$(date +%s)
  printf '\n=== %s\n' "$*"
}
suite_start=$(date +%s)

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

# io_uring unavailable, for real: kernel.io_uring_disabled=2 for the length
# of this step only (it is machine-wide, so nothing else may run meanwhile;
# the old value is put back on any exit of the subshell, failure or signal).
# In it: the sysctl tests (which flip the value themselves), the loop, TCP
# and echo suites on epoll (nothing on the epoll path may need io_uring), and
# the echo example with -backend auto: it must serve a real client (socat),
# stop cleanly on SIGTERM, and log exactly one line saying it fell back to
# epoll and why.
nouring_step() (
  sysctl=/proc/sys/kernel/io_uring_disabled
  old=$(cat "$sysctl")
  dir=$(mktemp -d)
  pid=""
  restore() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    echo "$old" >"$sysctl" || echo "RESTORE $sysctl TO $old BY HAND"
    echo "kernel.io_uring_disabled restored to $(cat "$sysctl")"
    rm -rf "$dir"
  }
  trap restore EXIT
  trap 'exit 130' INT TERM HUP
  go build -o "$dir/echo" ./examples/echo
  GYRE_SYSCTL_TESTS=1 go test -p 1 -count=1 -run 'Sysctl' ./uring/ ./reactor/
  echo 2 >"$sysctl"
  echo "kernel.io_uring_disabled=2 (was $old)"
  GYRE_BACKEND=epoll go test -p 1 -count=1 ./reactor/ ./transports/tcp/ ./protocols/echo/

  port=$((20000 + RANDOM % 12000))
  GYRE_BACKEND= "$dir/echo" -backend auto -addr "127.0.0.1:$port" >"$dir/log" 2>&1 &
  pid=$!
  up=""
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
    sleep 0.05
  done
  [ -n "$up" ] || { cat "$dir/log"; echo "FAIL: echo did not start"; exit 1; }
  reply=$(printf 'hello without io_uring\n' | timeout 10 socat -t 2 - "TCP:127.0.0.1:$port")
  [ "$reply" = "hello without io_uring" ] || { cat "$dir/log"; echo "FAIL: echo replied '$reply'"; exit 1; }
  kill -TERM "$pid"
  rc=0; wait "$pid" || rc=$?
  pid=""
  cat "$dir/log"
  [ "$rc" = 0 ] || { echo "FAIL: echo exited $rc after SIGTERM"; exit 1; }
  n=$(grep -c 'io_uring unavailable, using epoll' "$dir/log" || true)
  [ "$n" = 1 ] || { echo "FAIL: $n fallback lines, want exactly 1"; exit 1; }
  grep 'io_uring unavailable, using epoll' "$dir/log" | grep -q 'reason=.*\(EPERM\|not permitted\|disabled\)' ||
    { echo "FAIL: the fallback line does not say why (EPERM / io_uring_disabled)"; exit 1; }
  grep 'listening' "$dir/log" | grep -q 'backend=epoll' || { echo "FAIL: echo did not listen on epoll"; exit 1; }
  echo "echo fell back to epoll, said why in one line, and served"
)

if [ "$(id -u)" = 0 ] && [ -w /proc/sys/kernel/io_uring_disabled ] && command -v socat >/dev/null 2>&1; then
  step "io_uring disabled for real (kernel.io_uring_disabled=2, serialized)"
  nouring_step
else
  echo "skip: io_uring-disabled step (needs root, a writable /proc/sys/kernel/io_uring_disabled and socat)"
fi

step "giouring differential tests"
go test -count=1 -tags giouring -ldflags=-checklinkname=0 ./uring/...

step "benchmarks compile and run once (allocation checks)"
go test -run '^$' -bench . -benchtime 1x ./... >/dev/null

# Allocation counts without -race (the race detector's sync.Pool drops
# items at random): the steady-state data path of every transport and
# protocol, on both backends.
step "steady-state allocations (no -race)"
go test -count=1 -run 'SteadyStateAllocatesNothing' ./transports/

# A short fixed fuzz run of every fuzz target (the seed corpora already ran
# in go test above), one after the other: FUZZTIME each (default 5s). Every
# func FuzzX in a _test.go file is found, so new targets join by themselves.
# A crasher is written to the package's testdata/fuzz/FuzzX and fails the step.
# Go 1.26's fuzz coordinator may fail a run that found nothing with a bare
# "context deadline exceeded" at the -fuzztime boundary on a loaded machine
# (go.dev/issue/75804, fixed in Go 1.27): such a run, with no failing input
# written, passes if the target's corpus then replays cleanly.
step "fuzz each target for ${FUZZTIME:-5s}"
while read -r file target; do
  pkg="./$(dirname "$file")"
  printf '%s %s: ' "$pkg" "$target"
  if out=$(go test -run '^$' -fuzz "^${target}\$" -fuzztime "${FUZZTIME:-5s}" -fuzzminimizetime 100x "$pkg" 2>&1); then
    echo "$out" | grep -o 'execs: [0-9]*' | tail -1
  elif ! grep -q 'Failing input written' <<<"$out" && grep -q '^    context deadline exceeded$' <<<"$out" &&
    go test -count=1 -run "^${target}\$" "$pkg" >/dev/null 2>&1; then
    echo "$(echo "$out" | grep -o 'execs: [0-9]*' | tail -1) (coordinator deadline race, go.dev/issue/75804: no failing input; corpus replays clean)"
  else
    echo "FAILED"; echo "$out"; exit 1
  fi
done < <(git grep -o -E '^func Fuzz[A-Za-z0-9_]*' -- '*_test.go' | sed -E 's/:func / /' | sort)

step "real peers"
bash ci/peers.sh

step_end
echo
echo "step timings:"
printf '%s' "$step_times"
printf '%6ds  total\n' "$(( $(date +%s) - suite_start ))"
echo
echo "all tests passed"
