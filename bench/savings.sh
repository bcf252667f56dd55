#!/usr/bin/env bash
# What each optimisation saves, in instructions per request (callgrind), for
# bench/results.md ("What each optimisation saves"). Not part of `make test`.
#
#   bench/savings.sh            tool server and core, about 20 minutes on 2 cores
#   bench/savings.sh tool       the tool server only
#   bench/savings.sh core       the core's ct_equal only
#   bench/savings.sh compare    one ct_equal against one CRYPTO_memcmp only
#
# Copies the committed tree (git HEAD) once per variant into a temporary
# directory, takes one optimisation out of the copy, builds it (-j2), and
# counts:
#   tool server: bench/tool_server_callgrind.py against each variant's
#                mcp-tool-server (tools/call hello_mcp at 1 and 64
#                connections, tools/list at 1);
#   core:        check-bench --callgrind-loop 2000 (the guard's warm check,
#                1,000 sessions) with ct_equal as it is and on CRYPTO_memcmp,
#                then one comparison alone (bench/ct_equal_cost.cpp).
# Variants:
#   as-is        nothing taken out
#   no-alloc     alloc_cache_install() not called (glibc malloc and free)
#   cjson-print  json_append through cJSON_PrintUnformatted
#   cjson-prealloc json_append through cJSON_PrintPreallocated into a reused buffer
#   memcmp       ct_equal (src/crypto.cpp) on CRYPTO_memcmp
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
WHAT=${1:-all}
WORK=$(mktemp -d /tmp/mcp-savings.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1); commit $(git -C "$ROOT" rev-parse --short HEAD)"

# variant NAME: a copy of HEAD in $WORK/NAME with the optimisation taken out.
variant() {
    local dir=$WORK/$1
    mkdir -p "$dir"
    git -C "$ROOT" archive HEAD | tar -x -C "$dir"
    "$PY" - "$1" "$dir" <<'PY'
import sys
name, d = sys.argv[1], sys.argv[2]
def between(path, start, end, new):
    p = d + "/" + path
    s = open(p).read()
    a, b = s.index(start), s.index(end)
    open(p, "w").write(s[:a] + new + s[b:])
APPEND = "inline bool json_append(std::string& out, const cJSON* j) {"
NEXT = "// `j` as cJSON_PrintUnformatted prints it"
if name == "no-alloc":
    p = d + "/tool-server/main.cpp"
    s = open(p).read()
    assert s.count("    alloc_cache_install();") == 1
    open(p, "w").write(s.replace("    alloc_cache_install();", "    // alloc_cache_install();"))
elif name == "cjson-print":
    between("tool-server/json.hpp", APPEND, NEXT, APPEND + """
    char* s = cJSON_PrintUnformatted(j);
    if (!s) return false;
    out += s;
    cJSON_free(s);
    return true;
}

""")
elif name == "cjson-prealloc":
    between("tool-server/json.hpp", APPEND, NEXT, APPEND + """
    static std::string buf(4096, '\\0');
    for (;;) {
        if (cJSON_PrintPreallocated(const_cast<cJSON*>(j), &buf[0], static_cast<int>(buf.size()), 0)) {
            out.append(buf.c_str());
            return true;
        }
        if (buf.size() >= (64u << 20)) return false;
        buf.resize(buf.size() * 2);
    }
}

""")
elif name == "memcmp":
    between("src/crypto.cpp", "bool ct_equal(std::string_view a, std::string_view b) {",
            "// ---------------------------------------------------------------- KeyRing", """\
bool ct_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

""")
elif name != "as-is":
    sys.exit("unknown variant " + name)
PY
}

tool() {
    local v
    for v in as-is no-alloc cjson-print cjson-prealloc memcmp; do
        variant "$v"
        (cd "$WORK/$v" && make -s -f tool-server/tool-server.mk BUILD=build -j2 build/mcp-tool-server >/dev/null)
        echo "== tool server, $v"
        "$PY" "$ROOT/bench/tool_server_callgrind.py" --bin "$WORK/$v/build/mcp-tool-server"
        rm -rf "$WORK/$v"
    done
}

core() {
    local v out
    for v in as-is memcmp; do
        variant "$v"
        (cd "$WORK/$v" && make -s -j2 build/check-bench >/dev/null)
        out=$WORK/$v.callgrind
        valgrind --tool=callgrind --toggle-collect='*measured_checks*' --callgrind-out-file="$out" \
            "$WORK/$v/build/check-bench" --callgrind-loop 2000 >/dev/null 2>&1
        echo "== core, $v: $(callgrind_annotate "$out" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); printf "%.0f", $1 / 2000}') instructions per guarded check"
        rm -rf "$WORK/$v"
    done
    compare
}

# one comparison on its own, at the lengths compared in practice
compare() {
    local len out
    g++ -std=c++17 -O2 -I"$ROOT/src" "$ROOT/bench/ct_equal_cost.cpp" "$ROOT/src/crypto.cpp" "$ROOT/src/encoding.cpp" \
        -lcrypto -o "$WORK/ct-equal-cost"
    for len in 32 43 170 280; do
        out=$WORK/ct.$len
        valgrind --tool=callgrind --callgrind-out-file="$out" "$WORK/ct-equal-cost" "$len" >/dev/null 2>&1
        callgrind_annotate --inclusive=yes "$out" | awk -v len="$len" '
            /loop_ct_equal/ {gsub(",", "", $1); ct = $1 / 1000}
            /loop_memcmp/ {gsub(",", "", $1); mc = $1 / 1000}
            END {printf "== one comparison of %d bytes: ct_equal %.0f, CRYPTO_memcmp %.0f instructions\n", len, ct, mc}'
    done
}

case $WHAT in
    tool) tool ;;
    core) core ;;
    compare) compare ;;
    all) tool; core ;;
    *) echo "usage: $0 [all|tool|core|compare]" >&2; exit 2 ;;
esac
