#!/bin/sh
# test_dist.sh - data-parallel `dimd train` under Open MPI's mpirun, ranks on loopback.
#
# The equivalence test: 2 ranks x B/2 images must reproduce 1 process x B for 30 steps
# on Fashion-MNIST (basic32x32, mi_dim 64, batch 16, one compute thread per process):
#   losses   every step's every term within 1e-5 of max(|term|, 1) (--losses, 17 digits);
#   params   per slab (main, prior, batch-norm state) ||a - b|| / ||a|| <= 2e-5 and
#            max |a - b| <= 2e-4 (ckpt_diff).
# DIM(L) with JSD, and DIM(L+G) with InfoNCE (the global critic too), both at lr 1e-5.
# Why not the default lr 1e-4 over 30 steps: at that rate these small-batch runs are
# chaotic in the order of float sums. One process whose only change is the order of the
# images inside each batch (the same step in exact arithmetic) drifts from the original
# by 1e-3 in the loss by step 16 (basic32x32, JSD, lr 1e-4) and by 1e-4 by step 30
# (L+G, NCE, lr 2e-5). Adam moves a weight by up to lr a step however small its gradient,
# so gradients near 0 (~1e-8) turn summation noise into lr-sized moves of either sign
# (hence max |a - b| up to ~10 lr while the L2 distance stays ~1e-6), and the runs then
# part like any two chaotic trajectories. So the default lr is checked step by step: from
# one process's checkpoint at step 20, 3 steps on 2 ranks and on 1 process must agree
# (losses within 1e-6, parameters within 1e-6 relative L2). The gradients themselves
# are compared at 1e-5 of their largest entry in tests/core/test_dist.c.
# Then: a batch
# that does not split over the ranks is refused by rank 0 alone, a run prints one
# summary, a 2-rank run resumed from rank 0's checkpoint equals the straight run
# bit for bit, and SIGINT to one rank stops both at the same step with a checkpoint.
# Ends with "N passed, M failed"; exits non-zero when a check failed or none ran.
#
# usage: tests/cli/test_dist.sh PATH/TO/dimd
# env:   CKPT_DIFF  the checkpoint comparer built from tests/cli/ckpt_diff.c
#                   (default: DIR_OF_DIMD/tests/cli/ckpt_diff)
#        MPIRUN     the mpirun to use (default: mpirun on PATH)
#        CLI_TIMEOUT  seconds before one run counts as hung (default 300)
# As root, mpirun needs OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM): set here.
set -u

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH/TO/dimd" >&2
    exit 2
fi
case $1 in
/*) DIMD=$1 ;;
*) DIMD=$(pwd)/$1 ;;
esac
CKPT_DIFF=${CKPT_DIFF:-$(dirname "$DIMD")/tests/cli/ckpt_diff}
MPIRUN=${MPIRUN:-mpirun}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# loopback only, two ranks on however many cores; waiting ranks yield the CPU
MPI="$MPIRUN -np 2 --oversubscribe --bind-to none --mca btl self,vader --mca mpi_yield_when_idle 1"

T=$(mktemp -d "${TMPDIR:-/tmp}/dimd-dist-XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
pass() {
    passed=$((passed + 1))
    echo "ok   $1"
}
fail() {
    failed=$((failed + 1))
    echo "FAIL $1: $2"
}

if command -v timeout >/dev/null 2>&1; then
    LIMIT="timeout ${CLI_TIMEOUT:-300}"
else
    LIMIT=""
fi
run() {
    $LIMIT "$@" >"$T/out" 2>"$T/err"
    rc=$?
}
show_err() { head -c 400 "$T/err" | tr '\n' '|'; }

if ! command -v "$MPIRUN" >/dev/null 2>&1; then
    fail "mpirun" "$MPIRUN is not installed (scripts/install-deps.sh installs openmpi-bin)"
    echo "$passed passed, $failed failed"
    exit 1
fi
if [ ! -x "$CKPT_DIFF" ]; then
    fail "ckpt_diff" "$CKPT_DIFF is missing (make $CKPT_DIFF)"
    echo "$passed passed, $failed failed"
    exit 1
fi

SMALL="--mi_dim 64 --batch 16 --steps 30 --threads 1 --probe none --log_every 10"

# losses_agree A.csv B.csv: every step of both, every term within 1e-5 of max(|a|, 1);
# prints the worst difference.
losses_agree() {
    awk -F, 'NR == FNR { for (i = 2; i <= NF; i++) a[$1, i] = $i; n[$1] = NF; next }
        { if (!(($1, 2) in a)) { bad = 1; next }
          for (i = 2; i <= NF; i++) {
              d = a[$1, i] - $i; if (d < 0) d = -d
              s = a[$1, i]; if (s < 0) s = -s; if (s < 1) s = 1
              if (d / s > worst) worst = d / s
          }
          rows++ }
        END { printf "%d steps, worst %.2e\n", rows, worst
              exit (bad || rows != 30 || worst > 1e-5) }' "$1" "$2"
}

# params_agree A.ckpt B.ckpt: ckpt_diff's slabs within the bounds above.
params_agree() {
    "$CKPT_DIFF" "$1" "$2" >"$T/diff" || return 1
    tr '\n' ' ' <"$T/diff"
    awk '{ if ($3 > 2e-4 || $5 > 2e-5) bad = 1; n++ } END { exit (bad || n != 3) }' "$T/diff"
}

# equivalence NAME TAG FLAGS...: the 2-rank checkpoint stays as two.ckpt.TAG
equivalence() {
    name=$1 tag=$2
    shift 2
    run "$DIMD" train $SMALL "$@" --out "$T/one.ckpt" --losses "$T/one.csv"
    if [ "$rc" -ne 0 ]; then
        fail "$name: one process" "status $rc: $(show_err)"
        return
    fi
    run $MPI "$DIMD" train $SMALL "$@" --out "$T/two.ckpt" --losses "$T/two.csv"
    if [ "$rc" -ne 0 ]; then
        fail "$name: 2 ranks" "status $rc: $(show_err)"
        return
    fi
    cp "$T/out" "$T/two.out"
    cp "$T/two.ckpt" "$T/two.ckpt.$tag"
    if l=$(losses_agree "$T/one.csv" "$T/two.csv"); then
        pass "$name: losses of 2 ranks x 8 = 1 x 16 ($l)"
    else
        fail "$name: losses" "$l"
    fi
    if p=$(params_agree "$T/one.ckpt" "$T/two.ckpt"); then
        pass "$name: parameters after 30 steps ($p)"
    else
        fail "$name: parameters" "$p"
    fi
    # the run moved: identical first and last losses would make the comparison empty
    first=$(head -n 1 "$T/one.csv" | cut -d, -f6)
    lastl=$(tail -n 1 "$T/one.csv" | cut -d, -f6)
    if [ "$first" != "$lastl" ]; then
        pass "$name: the run trained (total $first -> $lastl)"
    else
        fail "$name: the run trained" "total loss stayed $first"
    fi
}

equivalence "DIM(L) jsd" jsd --lr 1e-5
equivalence "DIM(L+G) nce" nce --lr 1e-5 --alpha 0.5 --beta 0.1 --estimator nce

# the default hyperparameters, step by step: both continue one process's step-20 checkpoint
run "$DIMD" train --mi_dim 64 --batch 16 --steps 20 --threads 1 --probe none --out "$T/w20.ckpt"
rc0=$rc
CONT="--resume $T/w20.ckpt --steps 23 --threads 1 --probe none"
run "$DIMD" train $CONT --out "$T/c1.ckpt" --losses "$T/c1.csv"
rc1=$rc
run $MPI "$DIMD" train $CONT --out "$T/c2.ckpt" --losses "$T/c2.csv"
if [ "$rc0$rc1$rc" != 000 ]; then
    fail "default lr, 3 steps from a checkpoint" "status $rc0/$rc1/$rc: $(show_err)"
else
    l=$(awk -F, 'NR == FNR { a[$1] = $6; next } { d = a[$1] - $6; if (d < 0) d = -d;
            s = a[$1] < 0 ? -a[$1] : a[$1]; if (d / s > w) w = d / s; n++ }
            END { printf "%d steps, worst %.2e", n, w; exit (n != 3 || w > 1e-6) }' \
        "$T/c1.csv" "$T/c2.csv")
    lrc=$?
    "$CKPT_DIFF" "$T/c1.ckpt" "$T/c2.ckpt" >"$T/diff"
    if [ $lrc -eq 0 ] && awk '{ if ($5 > 1e-6) bad = 1; n++ } END { exit (bad || n != 3) }' "$T/diff"; then
        pass "default lr, 3 steps from a checkpoint: 2 ranks = 1 process ($l; $(head -n 1 "$T/diff"))"
    else
        fail "default lr, 3 steps from a checkpoint" "$l; $(tr '\n' ' ' <"$T/diff")"
    fi
fi

# one summary: rank 0 prints the header, the communication line and the checkpoint once
h=$(grep -c '^dimd train: ' "$T/two.out")
c=$(grep -c '^checkpoint: ' "$T/two.out")
r=$(grep -c '^ranks: 2, communication ' "$T/two.out")
if [ "$h" -eq 1 ] && [ "$c" -eq 1 ] && [ "$r" -eq 1 ] && grep -q '2 ranks x 8 images' "$T/two.out"; then
    pass "one summary from 2 ranks ($(grep '^ranks: ' "$T/two.out"))"
else
    fail "one summary" "header $h, checkpoint $c, ranks $r lines: $(head -c 400 "$T/two.out")"
fi

# a batch that does not split: refused before training, one line from rank 0
run $MPI "$DIMD" train --batch 15 --steps 2 --probe none
n=$(grep -c '^dimd train: ' "$T/err")
if [ "$rc" -eq 2 ] && [ "$n" -eq 1 ] && grep -q 'batch 15 does not split evenly over 2 ranks' "$T/err"; then
    pass "batch 15 over 2 ranks refused  [$(grep '^dimd train: ' "$T/err")]"
else
    fail "batch 15 over 2 ranks" "status $rc, $n dimd lines: $(show_err)"
fi

# resume: 15 steps, then rank 0 reads the checkpoint, broadcasts it, and the ranks go on
# to 30; the result is the straight 30-step run's checkpoint, bit for bit
HALF=$(echo "$SMALL" | sed 's/--steps 30/--steps 15/')
run $MPI "$DIMD" train $HALF --lr 1e-5 --out "$T/half.ckpt"
rc1=$rc
run $MPI "$DIMD" train --batch 16 --resume "$T/half.ckpt" --steps 30 --threads 1 --probe none \
    --out "$T/resumed.ckpt"
if grep -q 'cannot be combined with --resume' "$T/err" && [ "$rc" -eq 2 ]; then
    pass "a hyperparameter with --resume refused on 2 ranks"
else
    fail "a hyperparameter with --resume" "status $rc: $(show_err)"
fi
run $MPI "$DIMD" train --resume "$T/half.ckpt" --steps 30 --threads 1 --probe none \
    --log_every 10 --out "$T/resumed.ckpt"
if [ "$rc1" -eq 0 ] && [ "$rc" -eq 0 ] && cmp -s "$T/resumed.ckpt" "$T/two.ckpt.jsd"; then
    pass "2 ranks: 15 steps + resume to 30 = 30 straight, bit for bit"
else
    fail "2 ranks resume" "status $rc1/$rc, $(cmp "$T/resumed.ckpt" "$T/two.ckpt.jsd" 2>&1): $(show_err)"
fi

# SIGINT to one rank: every rank stops at the same step, rank 0 writes the checkpoint
# and exits 130, and no rank is left running
$MPI "$DIMD" train $SMALL --steps 5000 --log_every 5000 --out "$T/int.ckpt" \
    >"$T/int.out" 2>"$T/int.err" &
mp=$!
# a watchdog: should the ranks not stop together, mpirun (and so every rank) is ended;
# it leaves by itself within a second of mpirun's end
(n=0; while kill -0 $mp 2>/dev/null; do
    sleep 1; n=$((n + 1))
    [ $n -eq "${CLI_TIMEOUT:-300}" ] && kill -TERM $mp 2>/dev/null
done) &
wd=$!
rank=""
i=0
while [ $i -lt 100 ] && [ -z "$rank" ]; do # the ranks start within seconds
    sleep 0.2
    rank=$(pgrep -P $mp -f 'dimd train' | head -n 1)
    i=$((i + 1))
done
sleep 3 # into the training loop (dataset loaded, steps running)
[ -n "$rank" ] && kill -INT "$rank"
wait $mp
rc=$?
wait $wd
left=$(pgrep -P $mp 2>/dev/null | wc -l)
if [ -n "$rank" ] && [ "$rc" -eq 130 ] && [ -s "$T/int.ckpt" ] && [ "$left" -eq 0 ] &&
    grep -q '^interrupted at step ' "$T/int.out"; then
    pass "SIGINT to one rank stops both ($(grep '^interrupted' "$T/int.out"), checkpoint written)"
else
    fail "SIGINT to one rank" "rank '$rank', status $rc, $left left: $(tail -c 300 "$T/int.out")"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
