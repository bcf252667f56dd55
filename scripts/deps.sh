#!/usr/bin/env bash
# Installs what the build, the tests, `make run` and `make deb` need, when it
# is missing (the packaging tools too: t/test_packages.py builds the packages).
# Idempotent and silent when everything is already there.
#
#   deps.sh         everything
#   deps.sh --deb   only what `make deb` needs: the build's libraries and
#                   Debian's packaging tools (no test tools, no npm)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

deb_packages=(
    build-essential nginx nginx-dev libssl-dev libjwt-dev libcjson-dev
    libevent-dev libsqlite3-dev libhiredis-dev
    debhelper dpkg-dev lintian
)
apt_packages=(
    "${deb_packages[@]}"
    redis-server redis-sentinel libgtest-dev googletest libbenchmark-dev clang-14 libclang-rt-14-dev
    python3-pytest python3-requests python3-cryptography openssl curl ca-certificates
    chromium fonts-liberation prometheus
)
only_deb=false
if [ "${1:-}" = "--deb" ]; then
    only_deb=true
    apt_packages=("${deb_packages[@]}")
fi

missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Installing nginx or redis-server may start Debian's own services (nginx
    # on port 80, Redis on 6379).  They are left alone, as is any nginx or
    # Redis already running: this machine may be someone's production edge.
    # Tests, `make run` and `make run-cluster` start their own instances, on
    # their own ports, and never touch a server they did not start.
fi

if $only_deb; then
    exit 0
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "deps: Node.js 20+ and npm are required (not found)" >&2
    exit 1
fi

# npm packages, pinned by package-lock.json; reinstalled only when the lock changes.
if [ -f "$root/package-lock.json" ]; then
    stamp="$root/node_modules/.lock-stamp"
    want=$(cksum < "$root/package-lock.json")
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "deps: npm ci"
        (cd "$root" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
        printf '%s' "$want" > "$stamp"
    fi
fi
