#!/bin/sh
# What each of the guard's optimisations saves, in instructions per guarded
# request counted by callgrind in the core (bench/results.md, "What each
# optimisation saves").  Uses build/check-bench (make build/check-bench):
#
#   bench/guard_savings.sh [CHECK_BENCH]
#
# CHECK_BENCH may be another checkout's build/check-bench (the numbers of an
# older commit); its own src/ is used for the no-SSE2 copy.
#
# Prints, per request:
#   warm          one token of one session, every cache warm (Zone store:
#                 the pattern of bench/nginx_callgrind.py)
#   no-tokencache the same with the TokenCache emptied before each check
#   mint          what the IdentityCache spares: minting the assertion and
#                 the session's log tag
#   warm-no-prefetch  warm without the zone prefetch (what it costs in
#                 instructions; what it saves is memory latency: check-bench
#                 --ab-prefetch 1000000)
#   loop-1000     4,096 tokens over 1,000 sessions (--callgrind-loop)
#   redis-5s      the guard over a deferred store (Redis), through the C API,
#                 mcp_auth_session_cache 5s: the record from the worker's cache
#   redis-nocache the same without the record cache: every request stops at
#                 the store and runs again with Redis's answer (Redis's round
#                 trip and the glue's I/O not counted)
#   *-no-sse2     warm and redis-5s with the JSON string scan built without
#                 SSE2 (-DMCPA_NO_SSE2_SCAN: session.cpp and jsonrpc_peek.cpp
#                 recompiled into a copy of the core)
set -eu
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-build/check-bench}")
LIB=$(dirname "$BIN")/libmcpauth.a
SRC=$(dirname "$(dirname "$BIN")")/src
OUT=$(mktemp -d /tmp/guard-savings.XXXXXX)
N=2000

per_request() {  # profile, function pattern
  callgrind_annotate --inclusive=yes "$1" 2>/dev/null |
    awk -v pat="$2" -v n=$N '$0 ~ pat { gsub(",", "", $1); printf "%.0f\n", $1 / n; exit }'
}

run() {  # name, function, binary, args...
  name=$1 fn=$2 bin=$3
  shift 3
  valgrind --tool=callgrind --callgrind-out-file="$OUT/$name.out" --toggle-collect="*measured_*" \
    "$bin" "$@" >/dev/null 2>&1
  printf '%-24s %8s\n' "$name" "$(per_request "$OUT/$name.out" "$fn")"
}

run warm measured_checks "$BIN" --callgrind-parts $N
printf '%-24s %8s\n' no-tokencache "$(per_request "$OUT/warm.out" measured_without_token_cache)"
printf '%-24s %8s\n' mint "$(per_request "$OUT/warm.out" measured_mint)"
(export MCPA_BENCH_NO_PREFETCH=1; run warm-no-prefetch measured_checks "$BIN" --callgrind-parts $N)
run loop-1000 measured_checks "$BIN" --callgrind-loop $N
run redis-5s measured_redis_request "$BIN" --callgrind-redis $N 5
run redis-nocache measured_redis_request "$BIN" --callgrind-redis $N 0

# the same core with the byte loop alone in json_string_run
if [ -f "$LIB" ] && [ -f "$SRC/session.cpp" ]; then
  for f in session jsonrpc_peek; do
    g++ -std=c++17 -O2 -g -fPIC -fvisibility=hidden -I"$SRC" -DMCPA_NO_SSE2_SCAN -c "$SRC/$f.cpp" -o "$OUT/$f.o"
  done
  cp "$LIB" "$OUT/libmcpauth.a"
  ar rcs "$OUT/libmcpauth.a" "$OUT/session.o" "$OUT/jsonrpc_peek.o"
  g++ -o "$OUT/check-bench" "$(dirname "$BIN")/bench/check_bench.o" "$OUT/libmcpauth.a" \
    -lbenchmark -pthread -ljwt -lcjson -lcrypto
  run warm-no-sse2 measured_checks "$OUT/check-bench" --callgrind-one $N
  run redis-5s-no-sse2 measured_redis_request "$OUT/check-bench" --callgrind-redis $N 5
fi
echo "profiles in $OUT"
