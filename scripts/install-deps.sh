#!/bin/sh
# Installs the Debian packages dimd needs, when any is missing. clang-14 and
# libclang-rt-14-dev (libFuzzer and clang's sanitizer runtimes) are for the
# fuzz targets of `make fuzz` / `make test` only; the daemon builds with gcc.
# `install-deps.sh results` also installs python3-matplotlib, which draws the
# plots of `make results` (docs/results.md) and nothing else.
# `install-deps.sh peers` also installs python3-torch, the peer that `make bench-peers`
# measures dimd against (bench/peers/) and nothing else: dimd never loads it.
# As root: runs apt-get. Otherwise: prints the exact apt-get line and fails.
set -eu
PKGS="build-essential pkg-config libopenmpi-dev openmpi-bin libopenblas-pthread-dev libmicrohttpd-dev libjansson-dev \
libsqlite3-dev libuv1-dev libcmocka-dev libpng-dev libjpeg62-turbo-dev zlib1g-dev \
dataset-fashion-mnist curl python3 python3-yaml chromium clang-14 libclang-rt-14-dev"
[ "${1:-}" = results ] && PKGS="$PKGS python3-matplotlib"
[ "${1:-}" = peers ] && PKGS="$PKGS python3-torch"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
# Node.js and npm build the dashboard (npm ci) and drive its browser tests: any
# installed node 18 or newer will do, else Debian's npm (which brings nodejs).
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    missing="$missing npm"
fi
[ -z "$missing" ] && exit 0
line="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "dimd: missing Debian packages. Run as root:" >&2
    echo "  apt-get update && $line" >&2
    exit 1
fi
echo "dimd: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
$line
