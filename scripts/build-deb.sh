#!/usr/bin/env bash
# Builds the Debian packages (debian/) into build/deb/: `make deb`.
#
#   build-deb.sh [OUT_DIR]
#
# dpkg-buildpackage writes its packages next to the source tree, and the
# build leaves debian/<package>/ and friends inside it, so the source is
# copied (the files git tracks or would track, with their times) to
# OUT_DIR/src/ngx-mcp-auth-VERSION and built there.  The copy starts with the
# objects of the C++ core and the tool server that `make` already built
# (build/, same flags), so only the module's glue is compiled again: nginx's
# configure runs in the copy.  The packages are then checked with lintian
# (errors and warnings fail the build; its report, with the pedantic and
# informational tags, is OUT_DIR/lintian.txt).  Nothing is
# rebuilt when neither the sources nor those objects changed since the last
# run (OUT_DIR/.inputs).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build/deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$root"

version=$(dpkg-parsechangelog -S Version)
stage=$out/src/ngx-mcp-auth-$version

sources() {
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
            [ -e "$f" ] && [ ! -d "$f" ] && printf '%s\0' "$f"
        done
    else
        find . -path ./build -prune -o -path ./build-san -prune -o -path ./node_modules -prune \
            -o -path ./.git -prune -o -type f -print0
    fi
}
prebuilt=(build/libmcpauth.a build/core build/mcp-tool-server build/tool-server)

# what the packages are made of: the sources but the tests, benchmarks and
# fuzzers (in the source package, not in a binary one), and the objects
notin='^(t|bench|fuzz|soak|docs|prometheus|\.ci)/'
want=$( { sources | grep -zvE "$notin" | sort -z | xargs -0 cksum; \
          find "${prebuilt[@]}" -type f -printf '%p %T@\n' 2>/dev/null | sort; } \
        | cksum)
if [ -f "$out/.inputs" ] && [ "$(cat "$out/.inputs")" = "$want" ] \
   && ls "$out"/*.deb >/dev/null 2>&1; then
    echo "deb: $out is up to date"
    exit 0
fi

rm -rf "$out/src" "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo "$out/.inputs" "$out/lintian.txt"
mkdir -p "$stage/build"
sources | tar --null -T - -cf - | tar -xf - -C "$stage"
for p in "${prebuilt[@]}"; do
    if [ -e "$p" ]; then cp -a "$p" "$stage/build/"; fi
done

export DEB_BUILD_OPTIONS="parallel=$(nproc) noddebs ${DEB_BUILD_OPTIONS:-}"
(cd "$stage" && dpkg-buildpackage -us -uc -b --no-pre-clean) > "$out/build.log" 2>&1 \
    || { tail -60 "$out/build.log" >&2; echo "deb: dpkg-buildpackage failed (log: $out/build.log)" >&2; exit 1; }
mv "$out"/src/*.deb "$out"/src/*.changes "$out"/src/*.buildinfo "$out/"
rm -rf "$out/src"

changes=$(ls "$out"/*.changes)
lintian --display-info --pedantic --fail-on error,warning "$changes" > "$out/lintian.txt" 2>&1 \
    || { cat "$out/lintian.txt" >&2; echo "deb: lintian found errors or warnings" >&2; exit 1; }
cat "$out/lintian.txt"
printf '%s' "$want" > "$out/.inputs"
ls -1 "$out"/*.deb
