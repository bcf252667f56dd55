#!/usr/bin/env bash
# Benchmark of mcp-tool-server (run by `make bench`; not part of `make test`).
#
#  1. tools/call hello_mcp over Streamable HTTP (2025-06-18) with wrk, at 1, 16
#     and 64 connections, 10 s per run, 3 runs each: median requests/s and
#     median p99 latency. Every request carries a real X-MCP-Identity assertion
#     (HS256), as behind the gateway; any non-200 answer fails the run.
#  2. 2,000 idle HTTP+SSE streams: server VmRSS growth per stream.
#
# Builds nothing: uses build/mcp-tool-server (or $MCP_TOOL_SERVER). Installs
# wrk with apt-get when missing. Writes bench/results-tool-server.md.
#
# Knobs (environment): BENCH_DURATION (s, default 10), BENCH_RUNS (3),
# BENCH_CONNECTIONS ("1 16 64"), BENCH_STREAMS (2000).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${MCP_TOOL_SERVER:-$ROOT/build/mcp-tool-server}
DURATION=${BENCH_DURATION:-10}
RUNS=${BENCH_RUNS:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-1 16 64}
STREAMS=${BENCH_STREAMS:-2000}
PY=/usr/bin/python3
OUT=$ROOT/bench/results-tool-server.md

die() { echo "tool_server_bench: $*" >&2; exit 1; }

[ -x "$BIN" ] || die "$BIN not found: run 'make tool-server' first"
if ! command -v wrk >/dev/null 2>&1; then
    echo "wrk not found; installing it with apt-get" >&2
    apt-get install -y -qq wrk >/dev/null || die "could not install wrk (apt-get install wrk)"
fi

# Each stream is a descriptor on both sides; the server raises its own soft
# limit to the hard limit, this shell does the same for the client.
need=$((STREAMS + 512))
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$need" ] ||
    die "open-file limit $(ulimit -n) is below $need (raise the hard limit)"

WORK=$(mktemp -d /tmp/tool-server-bench.XXXXXX)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- machine -----------------------------------------------------------------
NPROC=$(nproc)
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
KERNEL=$(uname -sr)
WRK_VERSION=$(wrk -v 2>&1 | head -n1 | awk '{print $2}' || true)
echo "machine: $NPROC CPUs, ${CPU:-unknown CPU}, $KERNEL"

# --- server --------------------------------------------------------------------
"$PY" -c 'import os; print(os.urandom(32).hex())' > "$WORK/identity.key"
# the stream test holds $STREAMS sessions of one subject: past the default caps
"$BIN" --listen 127.0.0.1:0 --data-dir "$WORK/data" --identity-key "$WORK/identity.key" \
    --max-sessions-per-subject $((STREAMS + 100)) --max-sessions $((STREAMS + 10000)) \
    > "$WORK/server.out" 2> "$WORK/server.log" &
SERVER_PID=$!
PORT=
for _ in $(seq 1 100); do
    PORT=$(sed -n 's/^mcp-tool-server listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$WORK/server.out")
    [ -n "$PORT" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "server exited at start"; }
    sleep 0.05
done
[ -n "$PORT" ] || die "server did not report its port"
BASE="http://127.0.0.1:$PORT"
echo "server: pid $SERVER_PID on $BASE"

# An identity assertion like the gateway's: HS256, 2 minutes (the server
# refuses lifetimes over 5 minutes), so a fresh one is minted for every run.
mint() {
    "$PY" - "$WORK/identity.key" <<'PY'
import base64, hashlib, hmac, json, sys, time
key = open(sys.argv[1], "rb").read().strip()
b64 = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
now = int(time.time())
claims = {"iss": "ngx_mcp_auth", "aud": "mcp-tool-server", "sub": "bench-user",
          "client_id": "bench", "scope": "mcp", "iat": now, "exp": now + 120}
msg = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
print(msg + "." + b64(hmac.new(key, msg.encode(), hashlib.sha256).digest()))
PY
}

# initialize + notifications/initialized; prints the Mcp-Session-Id.
open_session() {
    "$PY" - "$BASE" "$1" <<'PY'
import json, sys, urllib.request
base, identity = sys.argv[1], sys.argv[2]
def post(body, sid=None):
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
         "X-MCP-Identity": identity}
    if sid:
        h.update({"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-06-18"})
    return urllib.request.urlopen(urllib.request.Request(base + "/mcp", json.dumps(body).encode(), h), timeout=5)
r = post({"jsonrpc": "2.0", "id": 0, "method": "initialize",
          "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                     "clientInfo": {"name": "bench", "version": "1"}}})
sid = r.headers["Mcp-Session-Id"]
assert json.load(r)["result"]["protocolVersion"] == "2025-06-18"
assert post({"jsonrpc": "2.0", "method": "notifications/initialized"}, sid).status == 202
print(sid)
PY
}

SESSION=$(open_session "$(mint)") || die "initialize failed"
echo "session: $SESSION"

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# --- 1. tools/call throughput ------------------------------------------------------
declare -A RPS P99
for c in $CONNECTIONS; do
    t=$((c < 2 ? c : 2))  # wrk needs at least one connection per thread
    rps_runs= p99_runs=
    for run in $(seq 1 "$RUNS"); do
        if ! result=$(MCP_SESSION=$SESSION MCP_IDENTITY=$(mint) \
                      wrk -t"$t" -c"$c" -d"${DURATION}s" --latency -s "$ROOT/bench/hello_mcp.lua" "$BASE/mcp"); then
            echo "$result" >&2
            die "wrk run failed at $c connections (non-200 answers or socket errors)"
        fi
        line=$(grep '^RESULT ' <<<"$result") || { echo "$result" >&2; die "no RESULT line from wrk"; }
        rps=$(sed 's/.* rps=\([0-9.]*\).*/\1/' <<<"$line")
        p99=$(sed 's/.* p99_ms=\([0-9.]*\).*/\1/' <<<"$line")
        echo "  c=$c t=$t run $run: $rps req/s, p99 $p99 ms"
        rps_runs+=" $rps" p99_runs+=" $p99"
    done
    RPS[$c]=$(median <<<"$rps_runs")
    P99[$c]=$(median <<<"$p99_runs")
done
kill -0 "$SERVER_PID" 2>/dev/null || die "server died during the wrk runs"

# --- 2. idle SSE streams ---------------------------------------------------------------
sse=$("$PY" "$ROOT/bench/sse_streams.py" --port "$PORT" --pid "$SERVER_PID" \
      --identity "$(mint)" --streams "$STREAMS") || die "SSE stream test failed"
echo "  $sse"
field() { sed "s/.* $1=\([0-9.]*\).*/\1/" <<<"$sse"; }
KIB=$(field kib_per_stream) RSS0=$(field rss_before_kib) RSS1=$(field rss_after_kib) SSE_SECS=$(field seconds)

# --- results -------------------------------------------------------------------------------
{
    echo "# mcp-tool-server benchmark"
    echo
    echo "Produced by \`bench/tool_server_bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo
    echo "Machine: $NPROC CPUs, ${CPU:-unknown CPU}, $KERNEL; wrk ${WRK_VERSION:-?} on the same machine (loopback)."
    echo
    echo "\`tools/call hello_mcp\`, Streamable HTTP 2025-06-18, one session, HS256 identity assertion on"
    echo "every request; ${DURATION} s per run, median of $RUNS runs, all responses 200:"
    echo
    echo "| connections | wrk threads | requests/s | p99 latency |"
    echo "|---:|---:|---:|---:|"
    for c in $CONNECTIONS; do
        printf '| %s | %s | %.0f | %.2f ms |\n' "$c" "$((c < 2 ? c : 2))" "${RPS[$c]}" "${P99[$c]}"
    done
    echo
    echo "Idle HTTP+SSE streams (GET /sse, each received its \`endpoint\` event):"
    echo
    echo "| streams | server VmRSS before | after | per stream |"
    echo "|---:|---:|---:|---:|"
    printf '| %s | %s KiB | %s KiB | %.1f KiB |\n' "$STREAMS" "$RSS0" "$RSS1" "$KIB"
    echo
    echo "($STREAMS streams opened in ${SSE_SECS} s, 100 at a time.)"
} > "$OUT"
echo
cat "$OUT"
