#!/bin/sh
# Runs the libFuzzer targets of tests/fuzz/ (built by `make fuzz-build` into
# BUILD_DIR/fuzz/), from the repository's root.
#
# usage: tests/fuzz/run.sh [--replay] BUILD_DIR [TARGET...]
#   --replay  runs every input of the committed corpus tests/fuzz/corpus/TARGET/
#             once (the regression inputs) and fails on any crash.
#   otherwise fuzzes each target for a fixed number of executions: FUZZ_RUNS
#             when set, else the target's own count below (about 3 minutes for
#             all of them on the 2-core CI machine), starting from the committed
#             corpus and BUILD_DIR/corpus/TARGET/ (where new inputs go); a crash
#             is saved as BUILD_DIR/crashes/TARGET-crash-SHA1 and fails the run.
#             FUZZ_SEED (default 1) is libFuzzer's -seed (0: a random one).
# Prints one line per target: executions, exec/s (over the whole run, start-up
# included), coverage (libFuzzer's cov:
# edges and ft: features), corpus size (inputs/bytes) and new inputs; logs go to
# BUILD_DIR/fuzz-logs/TARGET.log. Exits non-zero when any target failed.
set -u
replay=0
if [ "${1:-}" = "--replay" ]; then
    replay=1
    shift
fi
build=$1
shift
targets="$*"
[ -n "$targets" ] || targets=$(ls tests/fuzz/fuzz_*.c | sed 's|.*/\(fuzz_[a-z0-9_]*\)\.c$|\1|')

# Executions per target by default: 10 to 20 s each on the shared 2-core machine
# (fuzz_checkpoint builds a whole model for most inputs, fuzz_http makes a real
# HTTP request, fuzz_idx and fuzz_cifar write files).
runs_of() {
    case $1 in
    fuzz_checkpoint) echo 300 ;;
    fuzz_cifar) echo 3000 ;;
    fuzz_idx) echo 6000 ;;
    fuzz_http) echo 5000 ;;
    fuzz_image) echo 150000 ;;
    fuzz_jobspec | fuzz_evalspec) echo 300000 ;;
    fuzz_sweep_spec) echo 60000 ;;
    fuzz_multipart | fuzz_tensor) echo 400000 ;;
    *) echo 600000 ;;
    esac
}
dict_of() {
    case $1 in
    fuzz_jobspec | fuzz_evalspec | fuzz_tensor | fuzz_sweep_spec) echo "-dict=tests/fuzz/json.dict" ;;
    fuzz_http) echo "-dict=tests/fuzz/http.dict" ;;
    esac
}

mkdir -p "$build/fuzz-logs" "$build/crashes"
failed=0
total=0
t_all=$(date +%s)
for t in $targets; do
    bin=$build/fuzz/$t
    seeds=tests/fuzz/corpus/$t
    log=$build/fuzz-logs/$t.log
    if [ ! -x "$bin" ]; then
        echo "!! $t: $bin is not built (make fuzz-build)"
        failed=$((failed + 1))
        continue
    fi
    total=$((total + 1))
    t0=$(date +%s)
    ms0=$(date +%s%3N)
    if [ "$replay" -eq 1 ]; then
        n=$(ls "$seeds" | wc -l)
        # shellcheck disable=SC2046
        if "$bin" -rss_limit_mb=2048 -timeout=30 $(ls -d "$seeds"/*) >"$log" 2>&1; then
            printf '%-16s replayed %4d corpus inputs in %3d s: ok\n' "$t" "$n" \
                "$(($(date +%s) - t0))"
        else
            echo "!! $t: a corpus input fails (log $log):"
            tail -n 40 "$log"
            failed=$((failed + 1))
        fi
        continue
    fi
    runs=${FUZZ_RUNS:-$(runs_of "$t")}
    mkdir -p "$build/corpus/$t"
    # shellcheck disable=SC2046
    "$bin" -runs="$runs" -seed="${FUZZ_SEED:-1}" -rss_limit_mb=2048 -timeout=30 \
        -print_final_stats=1 -artifact_prefix="$build/crashes/$t-" $(dict_of "$t") \
        "$build/corpus/$t" "$seeds" >"$log" 2>&1
    rc=$?
    secs=$(($(date +%s) - t0))
    ms=$(($(date +%s%3N) - ms0))
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
    stat() { sed -n "s/^stat::$1: *\([0-9]*\).*/\1/p" "$log" | tail -n 1; }
    field() { echo "$done_line" | sed -n "s/.* $1: *\([^ ]*\).*/\1/p"; }
    if [ "$rc" -ne 0 ] || [ -z "$done_line" ]; then
        echo "!! $t: failed after $secs s (status $rc; log $log):"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz invariant|artifact_prefix|Test unit written)' "$log" |
            head -n 10
        tail -n 30 "$log"
        failed=$((failed + 1))
        continue
    fi
    printf '%-16s %8s execs %7s exec/s  cov: %-5s ft: %-6s corpus: %-12s new: %-4s %3d s\n' \
        "$t" "$(stat number_of_executed_units)" \
        "$(($(stat number_of_executed_units) * 1000 / (ms > 0 ? ms : 1)))" "$(field cov)" \
        "$(field ft)" "$(field corp)" "$(stat new_units_added)" "$secs"
done
echo "fuzz: $((total - failed)) of $total target(s) passed ($([ "$replay" -eq 1 ] && echo replay ||
    echo fuzzing)) in $(($(date +%s) - t_all)) s"
[ "$failed" -eq 0 ]
