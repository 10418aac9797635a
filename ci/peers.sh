#!/usr/bin/env bash
# Drives gyre's example servers with real peers (socat, nc, redis-cli,
# redis-benchmark, curl, wrk, ab, h2load, openssl) on both backends, on
# loopback only. Every load run is bounded. Each server must stop on SIGTERM
# and exit 0. A missing tool is reported and its check skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

bin=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$bin"' EXIT
for ex in echo resp http udpecho; do
  [ -d "examples/$ex" ] && go build -o "$bin/$ex" "./examples/$ex"
done

fail() { echo "FAIL: $*"; exit 1; }
have() { command -v "$1" >/dev/null 2>&1 || { echo "skip: $1 not installed"; return 1; }; }

# A port nobody listens on (no python needed): try random ones.
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 12000)) # below the ephemeral range (32768+): a port an outgoing connection holds refuses bind
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  fail "no free port found"
}

# start NAME BACKEND [FLAGS...] -> sets PID and PORT
start() {
  PORT=$(free_port)
  "$bin/$1" -addr "127.0.0.1:$PORT" -backend "$2" "${@:3}" >"$bin/$1-$2.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  cat "$bin/$1-$2.log"; fail "$1 ($2) did not start"
}

# start_unix NAME BACKEND PATH -> sets PID; serves on the UNIX socket PATH
start_unix() {
  "$bin/$1" -addr "unix:$3" -backend "$2" >"$bin/$1-$2.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    [ -S "$3" ] && return 0
    sleep 0.05
  done
  cat "$bin/$1-$2.log"; fail "$1 ($2) did not start on unix:$3"
}

stop() {
  kill -TERM "$PID"
  local rc=0
  wait "$PID" || rc=$?
  [ "$rc" = 0 ] || { cat "$bin/$1-$2.log"; fail "$1 ($2) exited $rc after SIGTERM"; }
}

for be in uring epoll; do
  echo "--- backend $be"
  if [ -x "$bin/echo" ]; then
    start echo "$be"
    if have socat; then
      out=$(printf 'hello socat\n' | timeout 10 socat -t 2 - "TCP:127.0.0.1:$PORT")
      [ "$out" = "hello socat" ] || fail "echo/socat got '$out'"
      head -c 1000000 /dev/urandom > "$bin/blob"
      timeout 20 socat -t 5 - "TCP:127.0.0.1:$PORT" < "$bin/blob" > "$bin/blob.out"
      cmp "$bin/blob" "$bin/blob.out" || fail "echo/socat 1 MB differs"
      echo "ok echo socat ($be)"
    fi
    if have nc; then
      out=$(printf 'hello nc\n' | timeout 10 nc -N -w 5 127.0.0.1 "$PORT")
      [ "$out" = "hello nc" ] || fail "echo/nc got '$out'"
      echo "ok echo nc ($be)"
    fi
    stop echo "$be"
    if have socat; then
      sock="$bin/echo-$be.sock"
      start_unix echo "$be" "$sock"
      out=$(printf 'hello unix\n' | timeout 10 socat -t 2 - "UNIX-CONNECT:$sock")
      [ "$out" = "hello unix" ] || fail "echo/socat unix got '$out'"
      timeout 20 socat -t 5 - "UNIX-CONNECT:$sock" < "$bin/blob" > "$bin/blob.out"
      cmp "$bin/blob" "$bin/blob.out" || fail "echo/socat unix 1 MB differs"
      stop echo "$be"
      [ ! -e "$sock" ] || fail "echo left its socket file $sock"
      echo "ok echo socat unix ($be)"
    fi
    # TLS: a certificate made on the fly; openssl s_client speaks TLS 1.2 and 1.3.
    if have openssl; then
      if [ ! -f "$bin/tls.crt" ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
          -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
          -keyout "$bin/tls.key" -out "$bin/tls.crt" 2>/dev/null || fail "openssl req"
      fi
      start echo "$be" -tls-cert "$bin/tls.crt" -tls-key "$bin/tls.key"
      for v in -tls1_2 -tls1_3; do
        out=$( (printf 'hello tls\n'; sleep 1) | timeout 10 openssl s_client -quiet -no_ign_eof $v -verify_return_error \
          -CAfile "$bin/tls.crt" -servername localhost -connect "127.0.0.1:$PORT" 2>/dev/null)
        [ "$out" = "hello tls" ] || fail "echo/openssl s_client $v got '$out'"
      done
      stop echo "$be"
      echo "ok echo openssl s_client TLS 1.2, 1.3 ($be)"
    fi
  fi

  if [ -x "$bin/resp" ]; then
    start resp "$be"
    if have redis-cli; then
      rc() { timeout 10 redis-cli -h 127.0.0.1 -p "$PORT" "$@"; }
      [ "$(rc PING)" = "PONG" ] || fail "resp PING"
      [ "$(rc SET k v)" = "OK" ] || fail "resp SET"
      [ "$(rc GET k)" = "v" ] || fail "resp GET"
      [ "$(rc INCR n)" = "1" ] || fail "resp INCR"
      [ "$(rc INCR n)" = "2" ] || fail "resp INCR 2"
      [ "$(rc DEL k n)" = "2" ] || fail "resp DEL"
      [ "$(rc EXISTS k)" = "0" ] || fail "resp EXISTS"
      rc NOSUCHCMD 2>&1 | grep -q "unknown command" || fail "resp unknown command"
      echo "ok resp redis-cli ($be)"
    fi
    if have redis-benchmark; then
      out=$(timeout 120 redis-benchmark -h 127.0.0.1 -p "$PORT" -t ping,set,get,incr,mset -n 20000 -c 20 -P 16 -q 2>&1 | tr '\r' '\n' | grep -v 'rps=')
      echo "$out" | tail -n 6
      for t in PING_INLINE PING_MBULK SET GET INCR MSET; do
        echo "$out" | grep -q "^ *$t.*requests per second" || fail "redis-benchmark: no result for $t"
      done
      # The benchmark wrote keys; the answers must be right afterwards.
      [ "$(rc GET key:__rand_int__)" = "VXK" ] || fail "resp: value written by redis-benchmark SET is not its payload VXK"
      [ "$(rc INCR counter:__rand_int__)" -gt 20000 ] || fail "resp: INCR counter after redis-benchmark too small"
      echo "ok resp redis-benchmark ($be)"
    fi
    stop resp "$be"
  fi

  if [ -x "$bin/http" ]; then
    start http "$be"
    if have curl; then
      body=$(timeout 10 curl -sS "http://127.0.0.1:$PORT/")
      [ "$body" = "Hello, World!" ] || fail "http curl got '$body'"
      code=$(timeout 10 curl -sS -o /dev/null -w '%{http_code}' -X POST --data-binary @/etc/hostname "http://127.0.0.1:$PORT/")
      [ "$code" = 200 ] || fail "http curl POST code $code"
      timeout 10 curl -sS -I "http://127.0.0.1:$PORT/" | grep -qi '^content-length: 13' || fail "http HEAD"
      echo "ok http curl ($be)"
    fi
    if have wrk; then
      out=$(timeout 30 wrk -t 1 -c 20 -d 2s "http://127.0.0.1:$PORT/" 2>&1)
      echo "$out" | grep -E 'Requests/sec|errors' || true
      echo "$out" | grep -q 'Non-2xx' && fail "wrk saw non-2xx"
      echo "$out" | grep -q 'Socket errors' && fail "wrk socket errors"
      echo "ok http wrk ($be)"
    fi
    if have ab; then
      out=$(timeout 60 ab -k -n 5000 -c 10 "http://127.0.0.1:$PORT/" 2>&1)
      echo "$out" | grep -q '^Failed requests: *0' || { echo "$out"; fail "ab failures"; }
      echo "ok http ab -k ($be)"
    fi
    if have h2load; then
      out=$(timeout 60 h2load --h1 -n 5000 -c 10 "http://127.0.0.1:$PORT/" 2>&1)
      echo "$out" | grep -q '5000 succeeded' || { echo "$out"; fail "h2load --h1"; }
      echo "ok http h2load --h1 ($be)"
    fi
    stop http "$be"
  fi
  if [ -x "$bin/udpecho" ] && have socat; then
    UPORT=$(free_port) # a free TCP port number; UDP on it is almost surely free too
    "$bin/udpecho" -addr "127.0.0.1:$UPORT" -backend "$be" >"$bin/udpecho-$be.log" 2>&1 &
    UPID=$!
    out=""
    for _ in $(seq 1 20); do # until the server is up (UDP has no connect to probe)
      out=$(printf 'hello udp\n' | timeout 5 socat -t 0.5 - "UDP:127.0.0.1:$UPORT" || true)
      [ "$out" = "hello udp" ] && break
    done
    [ "$out" = "hello udp" ] || { cat "$bin/udpecho-$be.log"; fail "udpecho/socat got '$out'"; }
    kill -TERM "$UPID"; wait "$UPID" || fail "udpecho ($be) did not exit 0 on SIGTERM"
    echo "ok udpecho socat ($be)"
    USOCK="$bin/ugram-$be.sock"
    "$bin/udpecho" -addr "unixgram:$USOCK" -backend "$be" >"$bin/udpecho-unixgram-$be.log" 2>&1 &
    UPID=$!
    out=""
    for _ in $(seq 1 20); do # until the socket file is there and answers
      [ -S "$USOCK" ] && out=$(printf 'hello unixgram\n' | timeout 5 socat -t 0.5 - "UNIX-SENDTO:$USOCK,bind=$bin/ugram-client-$be.sock" || true)
      rm -f "$bin/ugram-client-$be.sock"
      [ "$out" = "hello unixgram" ] && break
      sleep 0.05
    done
    [ "$out" = "hello unixgram" ] || { cat "$bin/udpecho-unixgram-$be.log"; fail "udpecho unixgram/socat got '$out'"; }
    kill -TERM "$UPID"; wait "$UPID" || fail "udpecho unixgram ($be) did not exit 0 on SIGTERM"
    [ -e "$USOCK" ] && fail "udpecho unixgram ($be) left its socket file"
    echo "ok udpecho unixgram socat ($be)"
  fi
done
echo "real peers: all passed"
