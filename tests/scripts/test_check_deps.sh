#!/bin/sh
# test_check_deps.sh - scripts/check-deps.sh (make check-deps) passes on the
# tree as it is and fails, naming the file or symbol, on each kind of
# wrong-way dependency planted in a copy of the tree and of its objects:
# an include in a header of a lower layer, an include of the server in core/,
# a call from a lower layer's object into a higher layer, and a call from
# libdimcore.a into the server.
# usage: sh tests/scripts/test_check_deps.sh BUILD_DIR/dimd   (from the repository root)
# Prints "ok NAME" / "FAIL NAME: reason" per check, then "N passed, M failed".
set -u
build=$(cd "$(dirname "$1")" && pwd)
repo=$(pwd)
passed=0; failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make -s --no-print-directory print-layers >"$tmp/layers" || { echo "0 passed, 1 failed"; exit 1; }

# run DIR BUILD: check-deps.sh over the tree in DIR with the objects in BUILD.
run() {
    (cd "$1" && set -- "$2" && while IFS= read -r l; do set -- "$@" "$l"; done <"$tmp/layers" &&
        sh "$repo/scripts/check-deps.sh" "$@") >"$tmp/out" 2>&1
}
# expect NAME TEXT: the last run failed and printed TEXT.
expect() {
    if [ "$rc" -eq 0 ]; then bad "$1" "check-deps passed"
    elif ! grep -qF "$2" "$tmp/out"; then bad "$1" "no line '$2' in: $(cat "$tmp/out")"
    else ok "$1"; fi
}
fresh() {
    rm -rf "$tmp/tree" "$tmp/build"
    mkdir -p "$tmp/tree" "$tmp/build"
    cp -r "$repo/api" "$repo/server" "$repo/core" "$tmp/tree/"
    cp -r "$build/api" "$build/server" "$build/gen" "$build/libdimcore.a" "$tmp/build/"
}

fresh
run "$tmp/tree" "$tmp/build"; rc=$?
if [ "$rc" -eq 0 ]; then ok "the tree as it is passes"; else bad "the tree as it is passes" "$(cat "$tmp/out")"; fi

fresh
printf '#include "handlers/handlers.h"\n' >"$tmp/tree/server/store/planted.h"
run "$tmp/tree" "$tmp/build"; rc=$?
expect "store header including handlers/" "server/store/planted.h includes handlers/"

fresh
printf '#include "api/jobspec.h"\n' >>"$tmp/tree/server/util/strbuf.h"
run "$tmp/tree" "$tmp/build"; rc=$?
expect "util header including api/" "server/util/strbuf.h includes api/"

fresh
printf '#include "store/store.h"\n' >"$tmp/tree/core/base/planted.h"
run "$tmp/tree" "$tmp/build"; rc=$?
expect "core including the store" "core/base/planted.h includes store/, outside core/"

fresh
printf 'int handle_healthz(void);\nint planted(void);\nint planted(void) { return handle_healthz(); }\n' >"$tmp/p.c"
cp "$tmp/p.c" "$tmp/tree/server/store/planted.c"
cc -c "$tmp/p.c" -o "$tmp/build/server/store/planted.o"
run "$tmp/tree" "$tmp/build"; rc=$?
expect "store object calling a handler" "layer store calls handle_healthz of layer handlers"

fresh
printf 'int store_close(void);\nint planted(void);\nint planted(void) { return store_close(); }\n' >"$tmp/p.c"
cc -c "$tmp/p.c" -o "$tmp/planted.o" && ar r "$tmp/build/libdimcore.a" "$tmp/planted.o" 2>/dev/null
run "$tmp/tree" "$tmp/build"; rc=$?
expect "libdimcore.a calling the store" "libdimcore.a calls store_close of layer store"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
