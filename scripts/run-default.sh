#!/bin/sh
# run-default.sh - what `make run` starts once dimd is built.
#
# The HTTP service does not exist yet, so this runs the main job on the built-in
# defaults with the CLI: one epoch of DIM(L) (local JSD + prior, basic32x32) on
# Fashion-MNIST, a progress line per interval, the checkpoint in
# build/run/fashion-mnist-diml.ckpt, then the linear-probe test accuracy of the
# trained encoder against a freshly initialised one (conv, fc, y), and a last
# line of JSON with every final figure.
#
# usage: scripts/run-default.sh [PATH/TO/dimd]   (default build/dimd)
set -eu
dimd=${1:-build/dimd}
case $dimd in
/*) ;;
*) dimd=$(pwd)/$dimd ;;
esac
cd "$(dirname "$0")/.."
if [ ! -x "$dimd" ]; then
    echo "run-default.sh: $dimd is not built; run 'make run'" >&2
    exit 1
fi
out_dir=build/run
ckpt=$out_dir/fashion-mnist-diml.ckpt
mkdir -p "$out_dir"
echo "dimd: the HTTP service is not built yet; running the default job with the CLI:"
echo "  one epoch of Deep InfoMax (local JSD + prior) on Fashion-MNIST"
echo "  (/usr/share/datasets/fashion-mnist), checkpoint in $ckpt,"
echo "  then linear probes of the trained vs a freshly initialised encoder."
echo "+ $dimd train --dataset fashion-mnist --epochs 1 --out $ckpt --json"
exec "$dimd" train --dataset fashion-mnist --epochs 1 --out "$ckpt" --json
