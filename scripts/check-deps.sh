#!/bin/sh
# Checks that dependencies between the layers point one way (make check-deps).
#
# usage: scripts/check-deps.sh BUILD_DIR "LAYER:DEP DEP ..." ...
#   One argument per layer above core/: its folder (api, or server/LAYER) may
#   include and call the listed layers and itself; "core" stands for every
#   folder of core/. core/ itself may use only its own folders.
# Two checks per layer:
#   includes  every #include "DIR/..." line in the layer's .c and .h files names
#             an allowed DIR (the build enforces the same through its per-layer
#             include folders; this also covers headers no object includes);
#   symbols   every undefined symbol of the layer's objects (BUILD_DIR/api or
#             BUILD_DIR/server/LAYER) that another layer defines is defined by an
#             allowed layer; libdimcore.a references no symbol of any layer.
# Prints each violation and exits 1 when there is any.
set -u
build=$1; shift
core_dirs=$(cd core && ls -d */ | tr -d / | tr '\n' ' ')
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

dir_of() { [ "$1" = api ] && echo api || echo "server/$1"; }
# objs DIR: the objects in $build/DIR whose source DIR/NAME.c exists (a stale
# object of a removed or renamed source is not the tree's).
objs() {
    find "$build/$1" -name '*.o' 2>/dev/null | while read -r o; do
        src=${o#"$build"/}
        [ -f "${src%.o}.c" ] && echo "$o"
    done
}
expand() { for d in $*; do [ "$d" = core ] && echo $core_dirs || echo "$d"; done | tr '\n' ' '; }

# Symbols each layer defines, as "symbol layer" lines.
: >"$tmp/defs"
for spec in "$@"; do
    layer=${spec%%:*}
    o=$(objs "$(dir_of "$layer")")
    [ -n "$o" ] || { echo "check-deps: no objects for layer $layer in $build"; fail=1; continue; }
    nm -g --defined-only $o 2>/dev/null | awk -v l="$layer" 'NF==3 {print $3, l}' >>"$tmp/defs"
done
[ -f "$build/gen/assets.o" ] &&
    nm -g --defined-only "$build/gen/assets.o" | awk 'NF==3 {print $3, "util"}' >>"$tmp/defs"

for spec in "$@"; do
    layer=${spec%%:*}
    allowed=" $layer $(expand ${spec#*:}) "
    dir=$(dir_of "$layer")
    # includes
    for f in $(find "$dir" -name '*.[ch]'); do
        sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^/"]*\)\/.*/\1/p' "$f" | sort -u |
        while read -r inc; do
            case "$allowed" in
            *" $inc "*) ;;
            *) echo "check-deps: $f includes $inc/, which layer $layer may not use (allowed:$allowed)"
               echo x >>"$tmp/bad" ;;
            esac
        done
    done
    # symbols
    nm -u $(objs "$dir") 2>/dev/null | awk '{print $NF}' | sort -u >"$tmp/undef"
    awk 'NR==FNR {u[$1]=1; next} ($1 in u) {print}' "$tmp/undef" "$tmp/defs" |
    while read -r sym owner; do
        case "$allowed" in
        *" $owner "*) ;;
        *) echo "check-deps: layer $layer calls $sym of layer $owner, which it may not use"
           echo x >>"$tmp/bad" ;;
        esac
    done
done

# core/ uses its own folders only
for f in $(find core -name '*.[ch]'); do
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^/"]*\)\/.*/\1/p' "$f" | sort -u |
    while read -r inc; do
        case " $core_dirs " in
        *" $inc "*) ;;
        *) echo "check-deps: $f includes $inc/, outside core/"; echo x >>"$tmp/bad" ;;
        esac
    done
done
if [ -f "$build/libdimcore.a" ]; then
    nm -u "$build/libdimcore.a" | awk '{print $NF}' | sort -u >"$tmp/undef"
    awk 'NR==FNR {u[$1]=1; next} ($1 in u) {print}' "$tmp/undef" "$tmp/defs" |
    while read -r sym owner; do
        echo "check-deps: libdimcore.a calls $sym of layer $owner"; echo x >>"$tmp/bad"
    done
fi

[ -s "$tmp/bad" ] && fail=1
if [ "$fail" -ne 0 ]; then
    echo "check-deps: FAILED"
    exit 1
fi
echo "check-deps: $# layers above core/; every include and every symbol points the allowed way"
