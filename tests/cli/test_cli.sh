#!/bin/sh
# test_cli.sh - end-to-end tests of the dimd command line: runs the real binary
# on bad input, --help, a short training run on a tiny IDX dataset made here,
# a resume, encode, eval and measure. Prints one line per check and ends with
# "N passed, M failed"; exits non-zero when a check failed or none ran.
#
# usage: tests/cli/test_cli.sh PATH/TO/dimd
# env:   MAKE_PNG  the PNG writer built from tests/cli/make_png.c
#                  (default: DIR_OF_DIMD/tests/cli/make_png)
#        DIMD_FASHION_MNIST  where the Fashion-MNIST IDX files are
#                  (default /usr/share/datasets/fashion-mnist)
#        CLI_TIMEOUT  seconds before one dimd run counts as hung (default 300; 900
#                  for a binary in a directory named *san*, as tests/e2e scales it)
# Needs only sh, coreutils, grep, sed, awk, gzip. Every run of dimd that must
# fail has to exit with status 2 and print exactly one line on stderr naming
# the problem; any status >= 128 (a signal, i.e. a crash) fails its check.
set -u

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH/TO/dimd" >&2
    exit 2
fi
case $1 in
/*) DIMD=$1 ;;
*) DIMD=$(pwd)/$1 ;;
esac
MAKE_PNG=${MAKE_PNG:-$(dirname "$DIMD")/tests/cli/make_png}
FMNIST=${DIMD_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}

T=$(mktemp -d "${TMPDIR:-/tmp}/dimd-cli-XXXXXX") || exit 1
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

# run CMD...: runs it with stdout in $T/out, stderr in $T/err, status in $rc;
# killed after CLI_TIMEOUT seconds (default 300, 900 under a sanitizer; status
# 124 then) when timeout exists.
case $(dirname "$DIMD") in
*san*) DEFAULT_TIMEOUT=900 ;;
*) DEFAULT_TIMEOUT=300 ;;
esac
if command -v timeout >/dev/null 2>&1; then
    LIMIT="timeout ${CLI_TIMEOUT:-$DEFAULT_TIMEOUT}"
else
    LIMIT=""
fi
run() {
    $LIMIT "$@" >"$T/out" 2>"$T/err"
    rc=$?
}

# The last line of stdout, and its lines count.
last_line() { tail -n 1 "$T/out"; }
nlines() { wc -l <"$1" | tr -d ' '; }

# show_err: stderr of the last run, on one line, shortened (for failure messages).
show_err() { head -c 300 "$T/err" | tr '\n' '|'; }

# expect_usage NAME KEYS CMD...: CMD must exit 2 and print exactly one stderr
# line that contains each of KEYS (fixed strings separated by '&').
expect_usage() {
    name=$1 keys=$2
    shift 2
    run "$@"
    n=$(nlines "$T/err")
    absent=""
    old_ifs=$IFS
    IFS='&'
    for key in $keys; do
        grep -qF -- "$key" "$T/err" || absent="$absent '$key'"
    done
    IFS=$old_ifs
    if [ "$rc" -ge 128 ]; then
        fail "$name" "crashed with status $rc: $(show_err)"
    elif [ "$rc" -ne 2 ]; then
        fail "$name" "exit status $rc, expected 2; stderr: $(show_err)"
    elif [ "$n" -ne 1 ]; then
        fail "$name" "$n lines on stderr, expected 1: $(show_err)"
    elif [ -n "$absent" ]; then
        fail "$name" "stderr does not name$absent: $(show_err)"
    else
        pass "$name  [$(cat "$T/err")]"
    fi
}

# expect_ok NAME CMD...: CMD must exit 0 with nothing on stderr.
expect_ok() {
    name=$1
    shift
    run "$@"
    if [ "$rc" -ne 0 ]; then
        fail "$name" "exit status $rc; stderr: $(show_err)"
    elif [ -s "$T/err" ]; then
        fail "$name" "unexpected stderr: $(show_err)"
    else
        pass "$name"
    fi
}

# check NAME DETAIL CONDITION: passes when the shell code CONDITION (evaluated
# here, so it sees this script's functions and variables) succeeds.
check() {
    if eval "$3"; then pass "$1"; else fail "$1" "$2"; fi
}

# help_lists CMD FLAG...: `dimd CMD --help` exits 0 and mentions every --FLAG.
help_lists() {
    cmd=$1
    shift
    run "$DIMD" "$cmd" --help
    missing=""
    for f in "$@"; do
        grep -qE -- "--$f([^a-z_0-9]|\$)" "$T/out" || missing="$missing --$f"
    done
    if [ "$rc" -ne 0 ]; then
        fail "$cmd --help" "exit status $rc"
    elif [ -n "$missing" ]; then
        fail "$cmd --help" "does not list$missing"
    else
        pass "$cmd --help lists $# flags"
    fi
}

NUM='-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?'

# json_obj KEY FILE: the flat JSON object "KEY":{...} of the last line of FILE.
json_obj() { tail -n 1 "$2" | grep -oE "\"$1\":\{[^{}]*\}"; }
# json_num KEY TEXT: the number after "KEY": in TEXT (first match).
json_num() { printf '%s\n' "$2" | grep -oE "\"$1\":$NUM" | head -n 1 | sed 's/^[^:]*://'; }

# has_accuracies TEXT [KEYS]: TEXT holds "KEY":a for each of KEYS (default
# conv fc y) with each a in [0, 1].
has_accuracies() {
    for k in ${2:-conv fc y}; do
        v=$(json_num "$k" "$1")
        [ -n "$v" ] || return 1
        awk -v v="$v" 'BEGIN { exit !(v >= 0 && v <= 1) }' || return 1
    done
}

# json_rows KEY FILE: a classifier's rows {"KEY":{"conv":a,"fc":b,"y":c,"pixels":d
# (the accuracies before its "fit") on FILE's last line.
json_rows() { tail -n 1 "$2" | grep -oE "\"$1\":\{\"conv\":$NUM,\"fc\":$NUM,\"y\":$NUM,\"pixels\":$NUM" | head -n 1; }

# segments TEXT A B: each piece of TEXT from a fixed string A to the next B, one a line.
segments() {
    printf '%s\n' "$1" | awk -v a="$2" -v b="$3" '{
        while ((i = index($0, a)) > 0) {
            $0 = substr($0, i); j = index($0, b); if (!j) exit
            print substr($0, 1, j - 1); $0 = substr($0, j)
        } }'
}

# converged_fits TEXT N: TEXT holds exactly N converged solves: N "stop":"converged",
# no other stop, and N gradient norms, each <= 1e-4 (the linear probe's tolerance).
converged_fits() {
    [ "$(printf '%s\n' "$1" | grep -oE '"stop":"[a-z ]*"' | grep -c '"stop":"converged"')" = "$2" ] &&
        [ "$(printf '%s\n' "$1" | grep -oE '"stop":"[a-z ]*"' | wc -l | tr -d ' ')" = "$2" ] &&
        [ "$(printf '%s\n' "$1" | grep -oE "\"gnorm\":$NUM" | wc -l | tr -d ' ')" = "$2" ] &&
        printf '%s\n' "$1" | grep -oE "\"gnorm\":$NUM" | sed 's/^[^:]*://' |
        awk '{ if (!($1 >= 0 && $1 <= 1e-4)) bad = 1 } END { exit bad }'
}

# embedding_len LINE: how many numbers the line's "embedding" array holds (all finite).
embedding_len() {
    printf '%s\n' "$1" | sed -n 's/.*"embedding":\[\([^]]*\)\].*/\1/p' |
        awk -F, -v num="^$NUM\$" '{ for (i = 1; i <= NF; i++) if ($i !~ num) { print -1; exit }
                                   print NF }'
}

# ---------------------------------------------------------------- fixtures

# be32 N: N as 4 big-endian bytes.
be32() {
    printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))"
    printf "\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"
}

# make_idx SPLIT N DIR: the first N images and labels of Fashion-MNIST's SPLIT
# (train or t10k) as uncompressed IDX files in DIR.
make_idx() {
    { printf '\000\000\010\003'; be32 "$2"; be32 28; be32 28
      gzip -dc "$FMNIST/$1-images-idx3-ubyte.gz" | tail -c +17 | head -c $(($2 * 784)); } \
        >"$3/$1-images-idx3-ubyte"
    { printf '\000\000\010\001'; be32 "$2"
      gzip -dc "$FMNIST/$1-labels-idx1-ubyte.gz" | tail -c +9 | head -c "$2"; } \
        >"$3/$1-labels-idx1-ubyte"
}

fixtures_ok=1
DS=$T/ds
mkdir -p "$DS"
if [ -r "$FMNIST/train-images-idx3-ubyte.gz" ]; then
    make_idx train 512 "$DS"
    make_idx t10k 256 "$DS"
    gzip -n "$DS/t10k-images-idx3-ubyte" "$DS/t10k-labels-idx1-ubyte" # test split gzipped
else
    fixtures_ok=0
fi
check "fixture: 512+256-image IDX dataset from $FMNIST" "could not build it" \
    '[ "$fixtures_ok" -eq 1 ] && [ "$(wc -c <"$DS/train-images-idx3-ubyte")" -eq $((16 + 512 * 784)) ]'

check "fixture: PNG writer $MAKE_PNG" "missing or failed" \
    '"$MAKE_PNG" "$T/a.png" 28 28 1 1 && "$MAKE_PNG" "$T/b.png" 40 30 3 2 &&
     [ "$(head -c 4 "$T/a.png" | od -An -c | tr -d " ")" = "211PNG" ]'

# An image folder (two classes, grey and RGB PNGs) and a broken copy of it.
IF=$T/imgs
mkdir -p "$IF/shirt" "$IF/shoe"
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
    "$MAKE_PNG" "$IF/shirt/$i.png" 28 28 1 "$i" 2>/dev/null
    "$MAKE_PNG" "$IF/shoe/$i.png" 32 32 3 $((i + 20)) 2>/dev/null
done
cp -r "$IF" "$T/badimgs"
head -c 60 "$IF/shoe/3.png" >"$T/badimgs/shoe/7.png" # a truncated PNG in a dataset

printf 'just some text\n' >"$T/notes.txt"
head -c $(($(wc -c <"$T/b.png") / 2)) "$T/b.png" >"$T/trunc.png"
{ printf '\211PNG\r\n\032\n'; head -c 200 /dev/zero; } >"$T/garbage.png"
cp -r "$DS" "$T/shortidx"
head -c 100000 "$DS/train-images-idx3-ubyte" >"$T/shortidx/train-images-idx3-ubyte"

# ---------------------------------------------------------------- --help

help_lists train dataset epochs steps out resume threads log_every random_crop random_flip \
    probe probe_epochs json preset channels y_dim mi_dim estimator alpha beta gamma lr \
    adam_beta1 adam_beta2 adam_eps batch seed lr_schedule lr_warmup lr_final lr_step_factor \
    lr_horizon
help_lists encode checkpoint tap max_pixels
help_lists eval checkpoint dataset probe probe_epochs threads json no_pixels
# openapi.yaml's Hyperparameters schema must list the flags of `dimd train --help`'s
# "Hyperparameters" section, in order, with the same defaults.
OPENAPI=$(dirname "$0")/../../openapi.yaml
run "$DIMD" train --help
awk '/^Hyperparameters/ { h = 1; next }
     h && /^  --/ { sub(/^--/, "", $1); print $1, $2 }' "$T/out" >"$T/help-hp"
awk '/^    Hyperparameters:/ { h = 1; next }
     h && /^    [^ ]/ { h = 0 }
     h && /^        [a-z_0-9]+:$/ { name = $1; sub(/:$/, "", name) }
     h && /^          default:/ { print name, $2 }' "$OPENAPI" >"$T/openapi-hp" 2>/dev/null
check "openapi.yaml Hyperparameters = train --help's (names, order, defaults)" \
    "help: $(tr '\n' ' ' <"$T/help-hp") / openapi: $(tr '\n' ' ' <"$T/openapi-hp")" \
    '[ -s "$T/help-hp" ] && paste -d" " "$T/help-hp" "$T/openapi-hp" | awk "
         NF != 4 || \$1 != \$3 { bad = 1 }
         (\$2 + 0 == \$2 && \$4 + 0 == \$4) ? (\$2 + 0 != \$4 + 0) : (\$2 != \$4) { bad = 1 }
         END { exit bad || NR == 0 }"'

run "$DIMD" --help
check "dimd --help lists train, encode, eval" "status $rc or a command missing" \
    '[ "$rc" -eq 0 ] && grep -q train "$T/out" && grep -q encode "$T/out" && grep -q eval "$T/out"'
run "$DIMD" version
check "dimd version" "status $rc, output '$(cat "$T/out")'" \
    '[ "$rc" -eq 0 ] && grep -qE "^dimd [0-9]+\.[0-9]+\.[0-9]+\$" "$T/out"'

# ---------------------------------------------------------------- bad input

expect_usage "unknown command" "unknown command&frobnicate" "$DIMD" frobnicate
expect_usage "train: unknown flag" "unknown flag --frobnicate" "$DIMD" train --frobnicate
expect_usage "train: unknown flag with a value" "unknown flag --frobnicate" "$DIMD" train --frobnicate 3
expect_usage "train: stray argument" stray "$DIMD" train stray
expect_usage "encode: unknown flag" "unknown flag --frobnicate" "$DIMD" encode --frobnicate
expect_usage "eval: unknown flag" "unknown flag --frobnicate" "$DIMD" eval --frobnicate
expect_usage "train: --batch without its value" "--batch&needs a value" "$DIMD" train --batch
expect_usage "encode: --checkpoint without its value" "--checkpoint&needs a value" "$DIMD" encode --checkpoint
expect_usage "eval: --dataset without its value" "--dataset&needs a value" "$DIMD" eval --checkpoint x --dataset
expect_usage "train --batch 0" "batch&0" "$DIMD" train --dataset "$DS" --batch 0
expect_usage "train --batch=1" batch "$DIMD" train --dataset "$DS" --batch=1
expect_usage "train --lr -1" "lr&-1" "$DIMD" train --dataset "$DS" --lr -1
expect_usage "train --estimator foo" "estimator&foo" "$DIMD" train --dataset "$DS" --estimator foo
expect_usage "train --preset bar" "preset&bar" "$DIMD" train --dataset "$DS" --preset bar
expect_usage "train --channels 2" "channels&2" "$DIMD" train --dataset "$DS" --channels 2 --steps 1
expect_usage "train --epochs abc" "epochs&abc" "$DIMD" train --dataset "$DS" --epochs abc
expect_usage "train --steps 0" steps "$DIMD" train --dataset "$DS" --steps 0
expect_usage "train --y_dim 1.5" y_dim "$DIMD" train --dataset "$DS" --y_dim 1.5
expect_usage "train --gamma nan" gamma "$DIMD" train --dataset "$DS" --gamma nan
expect_usage "train --probe foo" probe "$DIMD" train --dataset "$DS" --probe foo
expect_usage "train --lr_schedule linear" "lr_schedule&'linear'&constant, cosine, step" \
    "$DIMD" train --dataset "$DS" --lr_schedule linear
expect_usage "train --lr_warmup -5" "lr_warmup&-5" "$DIMD" train --dataset "$DS" --lr_warmup -5
expect_usage "train --lr_final 1.5" "lr_final&1.5" "$DIMD" train --dataset "$DS" --lr_final 1.5
expect_usage "train --lr_warmup 50 --steps 10" "lr_warmup 50&the run's 10 steps" \
    "$DIMD" train --dataset "$DS" --lr_schedule cosine --lr_warmup 50 --steps 10
expect_usage "train --lr_warmup 50 --lr_horizon 40" "lr_warmup 50 is longer than lr_horizon 40" \
    "$DIMD" train --dataset "$DS" --lr_warmup 50 --lr_horizon 40
expect_usage "train --lr_warmup longer than --epochs 1" "lr_warmup 100000&steps" \
    "$DIMD" train --dataset "$DS" --lr_warmup 100000 --epochs 1
expect_usage "train --seed 2^53" "seed&9007199254740992" "$DIMD" train --dataset "$DS" \
    --seed 9007199254740992
expect_usage "train: missing dataset directory" "$T/nope" "$DIMD" train --dataset "$T/nope"
expect_usage "train: corrupt PNG in an image folder" "$T/badimgs/shoe/7.png" "$DIMD" train --dataset "$T/badimgs" \
    --steps 1
expect_usage "train: truncated IDX file" "$T/shortidx/train-images-idx3-ubyte&truncated" "$DIMD" train --dataset "$T/shortidx" \
    --steps 1
expect_usage "train --resume of a non-checkpoint" "$T/notes.txt" "$DIMD" train --dataset "$DS" \
    --resume "$T/notes.txt" --steps 1
expect_usage "train --resume of a missing file" "$T/none.ckpt" "$DIMD" train --dataset "$DS" \
    --resume "$T/none.ckpt" --steps 1
expect_usage "encode without --checkpoint" checkpoint "$DIMD" encode "$T/a.png"
expect_usage "encode without images" image "$DIMD" encode --checkpoint "$T/none.ckpt"
expect_usage "encode --tap foo" tap "$DIMD" encode --checkpoint "$T/none.ckpt" --tap foo "$T/a.png"
expect_usage "encode: missing checkpoint" "$T/none.ckpt" "$DIMD" encode --checkpoint \
    "$T/none.ckpt" "$T/a.png"
expect_usage "encode: non-checkpoint file" "$T/notes.txt" "$DIMD" encode --checkpoint \
    "$T/notes.txt" "$T/a.png"
expect_usage "eval without --checkpoint" checkpoint "$DIMD" eval --dataset "$DS"
expect_usage "eval --probe_epochs 0" probe_epochs "$DIMD" eval --checkpoint x --probe_epochs 0

# ---------------------------------------------------------------- training

RUNOPTS="--dataset $DS --log_every 5 --threads 1"
TRAIN="$RUNOPTS --preset basic28x28 --mi_dim 64 --batch 16"
# shellcheck disable=SC2086 # TRAIN is split on purpose ($T comes from mktemp: no spaces)
expect_ok "train 20 steps on the tiny IDX dataset" \
    "$DIMD" train $TRAIN --steps 20 --probe_epochs 2 --out "$T/run.ckpt" --json
cp "$T/out" "$T/train.out"
PROGRESS="^step (5|10|15|20)/20 epoch 0 local $NUM prior $NUM disc $NUM total $NUM \| $NUM img/s ETA"
check "train: a progress line every 5 steps" "$(grep '^step ' "$T/train.out" | tr '\n' '|')" \
    '[ "$(grep -cE "$PROGRESS" "$T/train.out")" -eq 4 ] && [ "$(grep -c "^step " "$T/train.out")" -eq 4 ]'
# On a terminal the step lines become one progress bar redrawn with carriage returns.
if command -v script >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    script -qec "$DIMD train $TRAIN --steps 4 --log_every 2 --probe none" /dev/null \
        >"$T/tty.out" 2>&1 </dev/null
    check "train on a terminal: a progress bar instead of step lines" \
        "$(tr '\r' '|' <"$T/tty.out" | head -c 300)" \
        'grep -q "\[###############\.*\] 2/4" "$T/tty.out" && grep -q "\] 4/4" "$T/tty.out" &&
         ! grep -q "^step " "$T/tty.out"'
fi
check "train: probe table for trained and fresh encoder and raw pixels" "missing" \
    'grep -qE "^  trained encoder +$NUM +$NUM +$NUM\$" "$T/train.out" &&
     grep -qE "^  fresh encoder +$NUM +$NUM +$NUM\$" "$T/train.out" &&
     grep -qE "^  raw pixels, same probe +$NUM\$" "$T/train.out" &&
     grep -q "^linear probe (converged), test accuracy" "$T/train.out"'
J=$(last_line)
check "train --json: last line is one JSON object" "last line: $(printf '%s' "$J" | head -c 200)" \
    'printf "%s\n" "$J" | grep -qE "^\{\"command\":\"train\",.*\}\$"'
check "train --json: steps 20, steps_this_run 20" "$(printf '%s' "$J" | head -c 400)" \
    '[ "$(json_num steps "$J")" = 20 ] && [ "$(json_num steps_this_run "$J")" = 20 ]'
IPS=$(json_num images_per_second "$J")
check "train --json: images_per_second > 0" "got '$IPS'" \
    'awk -v v="${IPS:-0}" "BEGIN { exit !(v > 0) }"'
LOSSES=$(json_obj final_losses "$T/train.out")
check "train --json: final_losses local, prior_enc, prior_disc, total" "got '$LOSSES'" \
    '(for k in local prior_enc prior_disc total; do
          printf "%s\n" "$LOSSES" | grep -qE "\"$k\":$NUM" || exit 1; done)'
HP=$(json_obj hparams "$T/train.out")
check "train --json: hparams as given" "got '$HP'" \
    '(for kv in "\"preset\":\"basic28x28\"" "\"estimator\":\"jsd\"" "\"mi_dim\":64" \
                "\"y_dim\":64" "\"batch\":16" "\"channels\":1"; do
          printf "%s\n" "$HP" | grep -qF "$kv" || exit 1; done)'
PT=$(json_obj trained "$T/train.out")
PF=$(json_obj fresh "$T/train.out")
check "train --json: probe.trained conv/fc/y in [0,1]" "got '$PT'" 'has_accuracies "$PT"'
check "train --json: probe.fresh conv/fc/y in [0,1]" "got '$PF'" 'has_accuracies "$PF"'
PPX=$(json_num pixels "$(printf '%s' "$J" | grep -oE '"probe":.*')")
check "train --json: probe.kind linear, probe.pixels in [0,1]" "$(printf '%s' "$J" | grep -oE '"probe":.*' | head -c 300)" \
    'printf "%s\n" "$J" | grep -qF "\"probe\":{\"kind\":\"linear\"," &&
     has_accuracies "\"pixels\":$PPX" pixels'
check "train --json: 7 linear fits (trained, fresh, pixels) converged, gnorm <= 1e-4" \
    "$(printf '%s' "$J" | grep -oE '"fit":.*' | head -c 400)" \
    'converged_fits "$(printf "%s" "$J" | grep -oE "\"fit\":.*")" 7'
check "train: checkpoint written (DIMDCKPT magic)" "$T/run.ckpt" \
    '[ "$(head -c 8 "$T/run.ckpt" 2>/dev/null)" = DIMDCKPT ]'

# shellcheck disable=SC2086
expect_usage "train --resume with a hyperparameter flag" "--batch&--resume" \
    "$DIMD" train $RUNOPTS --resume "$T/run.ckpt" --batch 8 --steps 30
# shellcheck disable=SC2086
expect_usage "train --resume with nothing left to run" "step 20&nothing" \
    "$DIMD" train $RUNOPTS --resume "$T/run.ckpt" --steps 20
# shellcheck disable=SC2086
expect_ok "train --resume from step 20 to 30" \
    "$DIMD" train $RUNOPTS --resume "$T/run.ckpt" --steps 30 --probe none \
    --out "$T/run30.ckpt" --json
J=$(last_line)
check "resume --json: steps 30, steps_this_run 10" "$(printf '%s' "$J" | head -c 400)" \
    '[ "$(json_num steps "$J")" = 30 ] && [ "$(json_num steps_this_run "$J")" = 10 ]'
check "resume: progress lines 25/30 and 30/30 only" "$(grep '^step ' "$T/out" | tr '\n' '|')" \
    '[ "$(grep "^step " "$T/out" | cut -d" " -f2 | tr "\n" " ")" = "25/30 30/30 " ]'
# shellcheck disable=SC2086
expect_ok "train 30 steps straight" \
    "$DIMD" train $TRAIN --steps 30 --probe none --out "$T/straight30.ckpt"
check "resume is exact: 20 + 10 steps = 30 steps (identical checkpoints)" "checkpoints differ" \
    'cmp -s "$T/run30.ckpt" "$T/straight30.ckpt"'

# A cosine schedule with a warm-up: the lr of each logged step in its progress
# line, the resolved horizon in the hyperparameters, and a resume that keeps it.
SCHED="--lr 0.001 --lr_schedule cosine --lr_warmup 5 --lr_final 0.01"
# shellcheck disable=SC2086
expect_ok "train 20 steps, cosine lr with 5 steps of warm-up" \
    "$DIMD" train $TRAIN $SCHED --steps 20 --probe none --out "$T/cos20.ckpt" --json
cp "$T/out" "$T/cos.out"
check "cosine: the first line names the schedule" "$(head -n 1 "$T/cos.out")" \
    'head -n 1 "$T/cos.out" | grep -qF "lr 0.001 (cosine, warm-up 5, horizon 20, to lr * lr_final)"'
# step 5 ends the warm-up (lr); step t then takes lr (0.01 + 0.99 (1 + cos(pi (t-6)/15)) / 2)
LRS=$(grep '^step ' "$T/cos.out" | sed -n 's/.* lr \([^ ]*\) |.*/\1/p' | tr '\n' ' ')
check "cosine: progress lines show lr 0.001 0.0008362 0.000352 2.082e-05" "got '$LRS'" \
    '[ "$LRS" = "0.001 0.0008362 0.000352 2.082e-05 " ]'
HP=$(json_obj hparams "$T/cos.out")
check "cosine --json: hparams with the horizon resolved to the run's 20 steps" "got '$HP'" \
    '(for kv in "\"lr_schedule\":\"cosine\"" "\"lr_warmup\":5," "\"lr_final\":0.01," \
                "\"lr_horizon\":20,"; do
          printf "%s\n" "$HP" | grep -qF "$kv" || exit 1; done)'
# the same schedule in two runs: 12 steps of a 20-step horizon, then --resume to 20
# shellcheck disable=SC2086
expect_ok "train 12 steps of a 20-step cosine horizon" \
    "$DIMD" train $TRAIN $SCHED --lr_horizon 20 --steps 12 --probe none --out "$T/cos12.ckpt"
# shellcheck disable=SC2086
expect_ok "train --resume a cosine run from step 12 to 20" \
    "$DIMD" train $RUNOPTS --resume "$T/cos12.ckpt" --steps 20 --probe none \
    --out "$T/cos12to20.ckpt" --json
check "cosine --resume: the checkpoint's schedule applies (lr of step 20 as straight)" \
    "$(grep '^step 20/20' "$T/out")" \
    'grep -q "^step 20/20 .* lr 2.082e-05 |" "$T/out" &&
     json_obj hparams "$T/out" | grep -qF "\"lr_schedule\":\"cosine\""'
check "cosine resume is exact: 12 + 8 steps = 20 steps (identical checkpoints)" "checkpoints differ" \
    'cmp -s "$T/cos12to20.ckpt" "$T/cos20.ckpt"'

expect_ok "train DIM(L+G) NCE, no prior, 2 steps" \
    "$DIMD" train --dataset "$DS" --preset basic28x28 --estimator nce --alpha 0.5 --beta 1 \
    --gamma 0 --y_dim 32 --mi_dim 16 --batch 8 --lr 0.001 --seed 9007199254740991 --steps 2 \
    --probe none --threads 1 --json
HP=$(json_obj hparams "$T/out")
check "train --json: hparams echo every flag given (seed exact at 2^53 - 1)" "got '$HP'" \
    '(for kv in "\"estimator\":\"nce\"" "\"alpha\":0.5," "\"gamma\":0.0," "\"y_dim\":32," \
                "\"mi_dim\":16," "\"batch\":8," "\"lr\":0.001," "\"seed\":9007199254740991}"; do
          printf "%s\n" "$HP" | grep -qF "$kv" || exit 1; done)'
LOSSES=$(json_obj final_losses "$T/out")
check "train --json: final_losses has local and global, no prior terms" "got '$LOSSES'" \
    'printf "%s\n" "$LOSSES" | grep -qE "^\"final_losses\":\{\"local\":$NUM,\"global\":$NUM,\"total\":$NUM\}\$"'

expect_ok "train on an image folder (grey and RGB PNGs, default threads)" \
    "$DIMD" train --dataset "$IF" --preset basic28x28 --mi_dim 32 --batch 8 --steps 3 \
    --probe_epochs 1 --json
J=$(last_line)
check "image folder train --json: steps 3 and probe accuracies" "$(printf '%s' "$J" | head -c 300)" \
    '[ "$(json_num steps "$J")" = 3 ] && has_accuracies "$(json_obj trained "$T/out")"'

# ---------------------------------------------------------------- encode

expect_ok "encode two PNGs" "$DIMD" encode --checkpoint "$T/run.ckpt" "$T/a.png" "$T/b.png"
cp "$T/out" "$T/enc1.out"
check "encode: one JSON line per image" "$(nlines "$T/enc1.out") lines" \
    '[ "$(nlines "$T/enc1.out")" -eq 2 ] &&
     head -n 1 "$T/enc1.out" | grep -qF "{\"file\":\"$T/a.png\"," &&
     tail -n 1 "$T/enc1.out" | grep -qF "{\"file\":\"$T/b.png\","'
L1=$(head -n 1 "$T/enc1.out")
L2=$(tail -n 1 "$T/enc1.out")
check "encode: embedding of 64 finite numbers, dim 64, tap y" "$(printf '%s' "$L1" | head -c 200)" \
    '[ "$(embedding_len "$L1")" = 64 ] && [ "$(embedding_len "$L2")" = 64 ] &&
     [ "$(json_num dim "$L1")" = 64 ] && printf "%s\n" "$L1" | grep -qF "\"tap\":\"y\""'
check "encode: different images give different embeddings" "identical" \
    '[ "${L1#*\"embedding\"}" != "${L2#*\"embedding\"}" ]'
run "$DIMD" encode --checkpoint "$T/run.ckpt" "$T/a.png" "$T/b.png"
check "encode is deterministic (same output twice)" "outputs differ" 'cmp -s "$T/out" "$T/enc1.out"'
expect_ok "encode --tap fc" "$DIMD" encode --checkpoint "$T/run.ckpt" --tap fc "$T/a.png"
check "encode --tap fc: 1024 numbers" "$(embedding_len "$(last_line)") numbers" \
    '[ "$(embedding_len "$(last_line)")" = 1024 ] && [ "$(json_num dim "$(last_line)")" = 1024 ]'
expect_ok "encode --tap local" "$DIMD" encode --checkpoint "$T/run.ckpt" --tap local "$T/b.png"
check "encode --tap local: dim matches the numbers" "$(last_line | head -c 200)" \
    'n=$(embedding_len "$(last_line)"); [ "${n:--1}" -gt 0 ] && [ "$n" = "$(json_num dim "$(last_line)")" ]'
expect_usage "encode: truncated PNG" "$T/trunc.png&truncated" "$DIMD" encode --checkpoint "$T/run.ckpt" \
    "$T/trunc.png"
expect_usage "encode: PNG signature then garbage" "$T/garbage.png" "$DIMD" encode \
    --checkpoint "$T/run.ckpt" "$T/garbage.png"
expect_usage "encode: a text file as image" "$T/notes.txt" "$DIMD" encode --checkpoint \
    "$T/run.ckpt" "$T/notes.txt"
expect_usage "encode: missing image file" "$T/none.png" "$DIMD" encode --checkpoint "$T/run.ckpt" \
    "$T/none.png"
head -c $(($(wc -c <"$T/run.ckpt") / 2)) "$T/run.ckpt" >"$T/half.ckpt"
expect_usage "encode: truncated checkpoint" "$T/half.ckpt&truncated" "$DIMD" encode --checkpoint \
    "$T/half.ckpt" "$T/a.png"
cp "$T/run.ckpt" "$T/flipped.ckpt"
printf '\377\377\377\377' |
    dd of="$T/flipped.ckpt" bs=1 seek=$(($(wc -c <"$T/run.ckpt") / 2)) conv=notrunc 2>/dev/null
expect_usage "encode: corrupted checkpoint (checksum)" "$T/flipped.ckpt&checksum" "$DIMD" encode \
    --checkpoint "$T/flipped.ckpt" "$T/a.png"
expect_usage "train --resume of a truncated checkpoint" "$T/half.ckpt" "$DIMD" train \
    --dataset "$DS" --resume "$T/half.ckpt" --steps 1

# ---------------------------------------------------------------- eval

expect_ok "eval --json on the tiny dataset" \
    "$DIMD" eval --checkpoint "$T/run.ckpt" --dataset "$DS" --probe_epochs 2 --threads 1 --json
J=$(last_line)
ACC=$(json_obj trained "$T/out")
check "eval --json: {command eval, dataset, probe {kind linear, seconds, trained, pixels, fit}}" \
    "got '$(printf '%s' "$J" | head -c 300)'" \
    'printf "%s\n" "$J" | grep -qE "^\{\"command\":\"eval\",\"dataset\":\"[^\"]+\",\"probe\":\{\"kind\":\"linear\",\"seconds\":$NUM,\"trained\":\{" &&
     ! printf "%s\n" "$J" | grep -qE "\"(accuracy|fresh|epochs)\":"'
check "eval --json: probe.trained conv/fc/y in [0,1]" "got '$J'" 'has_accuracies "$ACC"'
EPX=$(json_num pixels "$J")
check "eval --json: probe.pixels in [0,1], train's value" "eval $EPX, train $PPX" \
    'has_accuracies "\"pixels\":$EPX" pixels && [ "$EPX" = "$PPX" ]'
check "eval --json: 4 linear fits (trained conv/fc/y, pixels) converged, gnorm <= 1e-4" \
    "$(printf '%s' "$J" | grep -oE '"fit":.*' | head -c 400)" \
    'converged_fits "$(printf "%s" "$J" | grep -oE "\"fit\":.*")" 4 &&
     printf "%s\n" "$J" | grep -qE "\"fit\":\{\"trained\":\{\"conv\":\{\"lambda\":$NUM,\"val_accuracy\":$NUM,\"iterations\":[0-9]+,"'
check "eval reproduces train's probe.trained accuracies" "eval '$ACC' vs train '$PT'" \
    '[ -n "$PT" ] && [ "${ACC#*:}" = "${PT#*:}" ]'
expect_ok "eval --fresh --json on the tiny dataset" \
    "$DIMD" eval --checkpoint "$T/run.ckpt" --dataset "$DS" --probe_epochs 2 --threads 1 \
    --fresh --json
FR=$(json_obj fresh "$T/out")
ACC2=$(json_obj trained "$T/out")
check "eval --fresh: the same trained accuracies and train's probe.fresh ones" \
    "eval '$ACC2' '$FR' vs train '$PT' '$PF'" \
    '[ "${ACC2#*:}" = "${PT#*:}" ] && [ -n "$PF" ] && [ "${FR#*:}" = "${PF#*:}" ]'
J=$(last_line)
check "eval --fresh --json: the pixel row once, 7 converged fits" "$(printf '%s' "$J" | head -c 400)" \
    '[ "$(json_num pixels "$J")" = "$PPX" ] &&
     converged_fits "$(printf "%s" "$J" | grep -oE "\"fit\":.*")" 7'
expect_ok "eval --no_pixels --json on the tiny dataset" \
    "$DIMD" eval --checkpoint "$T/run.ckpt" --dataset "$DS" --threads 1 --no_pixels --json
J=$(last_line)
ACC3=$(json_obj trained "$T/out")
check "eval --no_pixels: train's trained accuracies, no pixel row, 3 converged fits" \
    "$(printf '%s' "$J" | head -c 400)" \
    '[ "${ACC3#*:}" = "${PT#*:}" ] && ! printf "%s\n" "$J" | grep -q pixels &&
     converged_fits "$(printf "%s" "$J" | grep -oE "\"fit\":.*")" 3'
expect_usage "eval: truncated checkpoint" "$T/half.ckpt" "$DIMD" eval --checkpoint \
    "$T/half.ckpt" --dataset "$DS"
expect_usage "eval: missing dataset directory" "$T/nope" "$DIMD" eval --checkpoint "$T/run.ckpt" \
    --dataset "$T/nope"

# ---------------------------------------------------------------- measure

help_lists measure checkpoint dataset measures fresh seed threads grid json max_train max_test \
    probe_epochs ndm_steps mine_steps recon_epochs grid_pairs
run "$DIMD" measure --help
check "measure --help: no SVM epochs or seeds (the SVM is solved to convergence)" \
    "$(grep -E "svm_(epochs|seeds)" "$T/out" | head -n 2 | tr '\n' '|')" \
    '[ "$rc" -eq 0 ] && ! grep -qE "svm_(epochs|seeds)" "$T/out"'
run "$DIMD" --help
check "dimd --help lists measure" "missing" 'grep -q "^  measure " "$T/out"'
expect_usage "measure: unknown flag" "unknown flag --frobnicate" "$DIMD" measure --frobnicate
expect_usage "measure without --checkpoint" checkpoint "$DIMD" measure --dataset "$DS"
expect_usage "measure --measures with an unknown name" "measures&'foo'" "$DIMD" measure \
    --checkpoint "$T/run.ckpt" --measures linear,foo
expect_usage "measure --measures with an empty entry" "measures&empty" "$DIMD" measure \
    --checkpoint "$T/run.ckpt" --measures ndm,
expect_usage "measure --mine_steps 0" "mine_steps&0" "$DIMD" measure --checkpoint "$T/run.ckpt" \
    --mine_steps 0
expect_usage "measure --svm_seeds 2 (gone)" "unknown flag --svm_seeds" "$DIMD" measure \
    --checkpoint "$T/run.ckpt" --svm_seeds 2
expect_usage "measure --svm_epochs 2 (gone)" "unknown flag --svm_epochs" "$DIMD" measure \
    --checkpoint "$T/run.ckpt" --svm_epochs 2
expect_usage "measure --grid without recon" "grid&recon" "$DIMD" measure --checkpoint \
    "$T/run.ckpt" --measures ndm --grid "$T/g.png"
expect_usage "measure: --seed without its value" "--seed&needs a value" "$DIMD" measure \
    --checkpoint "$T/run.ckpt" --seed
expect_usage "measure: truncated checkpoint" "$T/half.ckpt" "$DIMD" measure --checkpoint \
    "$T/half.ckpt" --dataset "$DS"
expect_usage "measure: missing dataset directory" "$T/nope" "$DIMD" measure --checkpoint \
    "$T/run.ckpt" --dataset "$T/nope"
MBUDGET="--max_train 120 --max_test 60 --probe_epochs 1 --ndm_steps 20 --mine_steps 20
         --recon_epochs 2 --grid_pairs 4"
# shellcheck disable=SC2086 # MBUDGET is split on purpose
expect_ok "measure --fresh --json, every measure, tiny budgets" \
    "$DIMD" measure --checkpoint "$T/run.ckpt" --dataset "$DS" $MBUDGET --threads 1 --fresh \
    --grid "$T/grid.png" --json
J=$(last_line)
check "measure --json: last line is one JSON object with both encoders" \
    "last line: $(printf '%s' "$J" | head -c 300)" \
    'printf "%s\n" "$J" | grep -qE "^\{\"command\":\"measure\",.*\"trained\":\{.*\"fresh\":\{.*\}\$"'
check "measure --json: subset sizes 120 and 60" "$(printf '%s' "$J" | head -c 300)" \
    '[ "$(json_num n_train "$J")" = 120 ] && [ "$(json_num n_test "$J")" = 60 ]'
check "measure --json: linear, mlp, svm accuracies on conv, fc, y, pixels in [0,1]" \
    "$(printf '%s' "$J" | head -c 400)" \
    '(for m in linear mlp svm; do
          has_accuracies "$(json_rows $m "$T/out")" "conv fc y pixels" || exit 1; done) &&
     ! printf "%s\n" "$J" | grep -qE "\"(mean|std)\":"'
check "measure --json: linear fits converged (4 rows x 2 encoders), svm fits present" \
    "$(printf '%s' "$J" | grep -oE '"linear":.*' | head -c 400)" \
    'segments "$J" "\"linear\":{" "\"mlp\":" >"$T/lin" && [ "$(nlines "$T/lin")" = 2 ] &&
     (while read -r L; do converged_fits "$L" 4 || exit 1; done <"$T/lin") &&
     [ "$(printf "%s\n" "$J" | grep -oE "\"path_iterations\":[0-9]+" | wc -l | tr -d " ")" = 16 ]'
check "measure --json: ndm, ndm_sigmoid, mine, recon_mse, ssim, ms_ssim are numbers" \
    "$(printf '%s' "$J" | tail -c 600)" \
    '(for k in ndm ndm_sigmoid mine recon_mse ssim ms_ssim; do
          [ -n "$(json_num "$k" "$J")" ] || exit 1; done) &&
     [ "$(json_num ms_ssim_scales "$J")" = 2 ]'
check "measure: the table names every figure for both encoders" "$(head -c 300 "$T/out")" \
    'grep -qE "^  linear probe acc, pixels +$NUM +$NUM\$" "$T/out" &&
     grep -qE "^  MLP probe acc, pixels +$NUM +$NUM\$" "$T/out" &&
     grep -qE "^  SVM acc, conv +$NUM +$NUM\$" "$T/out" && ! grep -qE "(mean|std)\)" "$T/out" &&
     grep -qE "^  MINE I\(X;Y\) \(nats\) +$NUM +$NUM\$" "$T/out" &&
     grep -qE "^  SSIM +$NUM +$NUM\$" "$T/out" && grep -qE "^  NDM \(nats\) +$NUM +$NUM\$" "$T/out"'
check "measure --grid: PNGs for the trained and the fresh encoder" "missing or not PNG" \
    '[ "$(head -c 4 "$T/grid.png" 2>/dev/null | od -An -c | tr -d " ")" = "211PNG" ] &&
     [ "$(head -c 4 "$T/grid-fresh.png" 2>/dev/null | od -An -c | tr -d " ")" = "211PNG" ]'
expect_ok "measure --measures ndm,recon (subset, text output)" \
    "$DIMD" measure --checkpoint "$T/run.ckpt" --dataset "$DS" --measures recon,ndm --max_train 100 \
    --max_test 50 --ndm_steps 5 --recon_epochs 1 --threads 1
check "measure subset: only NDM and reconstruction rows" "$(tr '\n' '|' <"$T/out" | head -c 400)" \
    'grep -q "^  NDM (nats)" "$T/out" && grep -q "^  SSIM " "$T/out" &&
     ! grep -q "probe acc" "$T/out" && ! grep -q "^  MINE" "$T/out"'

# ---------------------------------------------------------------- serve (settings only;
# the daemon itself is tested over HTTP by tests/e2e/)

EXAMPLE=$(dirname "$0")/../../docs/dimd.conf.example
expect_ok "serve --print-config" "$DIMD" serve --print-config
check "docs/dimd.conf.example is exactly serve --print-config (every key, its default)" \
    "diff: $(diff "$T/out" "$EXAMPLE" 2>&1 | head -n 3 | tr '\n' ' ')" 'cmp -s "$T/out" "$EXAMPLE"'
printf 'port = 9999\n# a comment\n\nworkers = 2\n' >"$T/good.conf"
expect_ok "serve --config FILE --workers 3 --print-config" \
    "$DIMD" serve --config "$T/good.conf" --workers 3 --print-config
check "serve: the config file sets port, a flag overrides workers" "got $(tr '\n' ' ' <"$T/out")" \
    'grep -qx "port = 9999" "$T/out" && grep -qx "workers = 3" "$T/out"'
expect_usage "serve: unknown flag" "--bogus" "$DIMD" serve --bogus 1
expect_usage "serve: a bad number" "workers&abc" "$DIMD" serve --workers abc
expect_usage "serve: out of range" "port&70000" "$DIMD" serve --port 70000
expect_usage "serve: flag without value" "--port" "$DIMD" serve --port
expect_usage "serve: missing config file" "$T/none.conf" "$DIMD" serve --config "$T/none.conf"
printf 'port 80\n' >"$T/bad1.conf"
expect_usage "serve: config line without =" "bad1.conf:1" "$DIMD" serve --config "$T/bad1.conf"
printf '# ok\nnope = 1\n' >"$T/bad2.conf"
expect_usage "serve: unknown config key, with its line" "bad2.conf:2&nope" "$DIMD" serve \
    --config "$T/bad2.conf"
expect_usage "serve: a data root that does not exist" "$T/no-root" "$DIMD" serve \
    --data_roots "$T/no-root" --state_dir "$T/state"
expect_usage "serve: a listen address that is not one" "listen&localhost:80" "$DIMD" serve \
    --listen localhost:80 --state_dir "$T/state2" --port 0
help_lists backup state_dir out pages_per_step json
help_lists check state_dir json
expect_usage "backup without --state_dir" "--state_dir" "$DIMD" backup --out "$T/b.db"
expect_usage "backup: a state_dir that is not one" "$T/nodir&not a directory" "$DIMD" backup \
    --state_dir "$T/nodir" --out "$T/b.db"
mkdir -p "$T/emptystate"
expect_usage "backup: a state_dir without dimd.db" "$T/emptystate/dimd.db&no database" "$DIMD" \
    backup --state_dir "$T/emptystate" --out "$T/b.db"
expect_usage "check: a state_dir without dimd.db" "$T/emptystate/dimd.db&no database" "$DIMD" \
    check --state_dir "$T/emptystate"
expect_usage "backup --pages_per_step 0" "pages_per_step&0" "$DIMD" backup --state_dir \
    "$T/emptystate" --out "$T/b.db" --pages_per_step 0
expect_usage "check: unknown flag" "unknown flag --frob" "$DIMD" check --frob
head -c 8192 /dev/zero | tr '\0' 'x' >"$T/emptystate/dimd.db"
expect_usage "backup without --out" "--out" "$DIMD" backup --state_dir "$T/emptystate"
run "$DIMD" check --state_dir "$T/emptystate"
check "check: a dimd.db that is not a database fails (status 1) naming it" \
    "status $rc; stderr: $(show_err)" \
    '[ "$rc" -eq 1 ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -qF "$T/emptystate/dimd.db" "$T/err" && grep -q "not a database" "$T/err"'
run "$DIMD" backup --state_dir "$T/emptystate" --out "$T/b.db"
check "backup: a dimd.db that is not a database fails (status 1), nothing written" \
    "status $rc; stderr: $(show_err)" \
    '[ "$rc" -eq 1 ] && grep -q "not a database" "$T/err" && [ ! -e "$T/b.db" ] && [ ! -e "$T/b.db.tmp" ]'
run "$DIMD" routes
check "routes: one METHOD PATH SCOPE line per route" "got $(head -n 2 "$T/out" | tr '\n' ' ')" \
    '[ "$rc" -eq 0 ] && [ "$(nlines "$T/out")" -ge 20 ] && ! grep -vqE "^(GET|POST|DELETE) /[^ ]* (none|read|write)$" "$T/out"'

# dimd sweep: the sweep of POST /v1/sweeps, run here on the tiny IDX dataset (a data root $T)
help_lists sweep state_dir workers threads_per_worker data_roots json
expect_usage "sweep without a file" "FILE.json" "$DIMD" sweep
printf '{"base": {"dataset": "nowhere"}, "space": {"lr": [0.001]}}' >"$T/badsweep.json"
expect_usage "sweep: a bad body names the path" "badsweep.json&\$.budget&(and more)" "$DIMD" sweep \
    "$T/badsweep.json" --data_roots "$T"
SWDS=$(basename "$T")/ds
cat >"$T/sweep.json" <<SWEEP
{"name": "cli", "base": {"dataset": "$SWDS", "batch": 8, "mi_dim": 16, "y_dim": 16,
 "probe": "none"}, "space": {"lr": [0.0001, 0.001, 0.01, 0.3]}, "algorithm": "asha",
 "metric": "loss_total", "budget": {"steps": 12}, "asha": {"min_resource": 3,
 "reduction_factor": 3}}
SWEEP
run "$DIMD" sweep "$T/sweep.json" --data_roots "$T" --state_dir "$T/sweepstate"
check "sweep: ASHA on 4 points SUCCEEDED, a leaderboard of 4 trials on stdout" \
    "status $rc; stdout $(head -c 300 "$T/out" | tr '\n' '|'); stderr: $(show_err)" \
    '[ "$rc" -eq 0 ] && head -n 1 "$T/out" | grep -q "SUCCEEDED, metric loss_total (min)" && [ "$(grep -cE "^[0-3] +(SUCCEEDED|STOPPED|FAILED) " "$T/out")" -eq 4 ]'
check "sweep: events on stderr (4 trials started, rung results, decisions, the end)" \
    "stderr: $(show_err)" \
    '[ "$(grep -c "started:" "$T/err")" -eq 4 ] && grep -q "rung 0 (step 3)" "$T/err" && grep -qE ": (promote|stop) \(rank" "$T/err" && tail -n 1 "$T/err" | grep -q "sweep SUCCEEDED"'
check "sweep: ASHA stopped a trial at rung 0 and ran one to the budget" "stdout: $(tr '\n' '|' <"$T/out")" \
    'grep -qE "^[0-3] +STOPPED +0 " "$T/out" && grep -qE "^[0-3] +SUCCEEDED +2 " "$T/out"'
cp "$T/out" "$T/board1"
run "$DIMD" sweep "$T/sweep.json" --data_roots "$T" --state_dir "$T/sweepstate" --json
check "sweep: the same command again continues (here: reports) the same sweep, --json" \
    "status $rc; stderr: $(show_err)" \
    '[ "$rc" -eq 0 ] && grep -q "continuing sweep 1 (SUCCEEDED)" "$T/err" && ! grep -q "started:" "$T/err" && grep -q "\"state\":\"SUCCEEDED\"" "$T/out" && [ "$(grep -o "\"trial\":" "$T/out" | wc -l)" -ge 4 ]'
run "$DIMD" check --state_dir "$T/sweepstate"
check "sweep: its state directory passes dimd check" "status $rc; stderr: $(show_err)" '[ "$rc" -eq 0 ]'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
