#!/usr/bin/env bash
# Builds ngx_http_mcp_auth_module.so against an nginx source tree.
#
#   build-module.sh NGINX_SRC BUILD_DIR
#
# With Debian's nginx-dev tree (/usr/share/nginx/src) the configure flags are
# the packaged binary's own (conf_flags), as Debian's nginx_mod.pm does, so the
# module's binary-compatibility signature matches /usr/sbin/nginx.  Any other
# tree is configured with --with-compat.  Nothing is written into NGINX_SRC.
set -euo pipefail

src=$1
build=$2
root=$(cd "$(dirname "$0")/.." && pwd)
objs=$build/nginx

if [ ! -x "$src/configure" ] && [ ! -x "$src/auto/configure" ]; then
    echo "build-module: no nginx source tree at $src (install nginx-dev or set NGINX_SRC)" >&2
    exit 1
fi

NGX_CONF_FLAGS=(--with-compat)
if [ -f "$src/conf_flags" ]; then
    # shellcheck disable=SC1091
    . "$src/conf_flags"
fi

cflags="-fPIC ${SAN_FLAGS:-}"
ldflags="-fPIC ${SAN_FLAGS:-}"
if command -v dpkg-buildflags >/dev/null; then
    # all of Debian's hardening (adds bind-now to the default relro)
    export DEB_BUILD_MAINT_OPTIONS=${DEB_BUILD_MAINT_OPTIONS:-hardening=+all}
    cflags="$(dpkg-buildflags --get CFLAGS) $cflags $(dpkg-buildflags --get CPPFLAGS)"
    ldflags="$(dpkg-buildflags --get LDFLAGS) $ldflags"
fi

# Re-run configure only when its inputs change (it takes most of the time).
stamp_text="$src|${NGX_CONF_FLAGS[*]}|$cflags|$ldflags|$(cksum < "$root/config")"
stamp=$objs/.configured
if [ ! -f "$objs/Makefile" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$stamp_text" ]; then
    mkdir -p "$objs"
    configure=./configure
    [ -x "$src/configure" ] || configure=./auto/configure
    (cd "$src" && $configure --with-cc-opt="$cflags" --with-ld-opt="$ldflags" \
        "${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$root" --builddir="$objs") \
        > "$objs.configure.log" 2>&1 || { cat "$objs.configure.log" >&2; exit 1; }
    printf '%s' "$stamp_text" > "$stamp"
fi

make -s -f "$objs/Makefile" -C "$src" modules
# Copy, then rename over the old file: a running nginx (make run, a test)
# has the old one mapped, and overwriting it in place crashes its workers.
cp "$objs/ngx_http_mcp_auth_module.so" "$build/ngx_http_mcp_auth_module.so.$$"
mv -f "$build/ngx_http_mcp_auth_module.so.$$" "$build/ngx_http_mcp_auth_module.so"
