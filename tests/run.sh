#!/bin/sh
# Runs test binaries and test scripts, shows each one's output, and ends with one
# summary line "N passed, N failed" counted over individual test cases / checks.
#
# usage: tests/run.sh BUILD_DIR BIN... [-- SCRIPT...]
#   BIN     a cmocka test binary; its "[  PASSED  ] N test(s)" and
#           "[  FAILED  ] N test(s)" lines are counted.
#   SCRIPT  a shell test script, run as `sh SCRIPT BUILD_DIR/dimd`; its last
#           "N passed, M failed" line is counted.
# A binary or script that crashes or exits non-zero without reporting a failure,
# or that prints no summary at all, counts as one failure. Logs go to
# BUILD_DIR/test-logs/NAME.log; each program's wall-clock follows its output.
set -u
build=$1; shift
mkdir -p "$build/test-logs"
passed=0; failed=0

# account NAME RC P F: adds one program's counts to the totals.
account() {
    p=${3:-0}; f=${4:-0}
    if [ "$2" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "!! $1 exited with status $2"
        f=1
    elif [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        echo "!! $1 reported no test results"
        f=1
    fi
    passed=$((passed + p)); failed=$((failed + f))
}

scripts=0
for arg in "$@"; do
    if [ "$arg" = "--" ]; then
        scripts=1
        continue
    fi
    name=$(basename "$arg")
    log="$build/test-logs/$name.log"
    echo "== $name"
    t0=$(date +%s)
    if [ "$scripts" -eq 1 ]; then
        sh "$arg" "$build/dimd" >"$log" 2>&1
        rc=$?
        cat "$log"
        summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
        account "$name" "$rc" "$(echo "$summary" | sed -n 's/^\([0-9]*\) passed.*/\1/p')" \
            "$(echo "$summary" | sed -n 's/.* \([0-9]*\) failed$/\1/p')"
    else
        "$arg" >"$log" 2>&1
        rc=$?
        cat "$log"
        account "$name" "$rc" \
            "$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)" \
            "$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)"
    fi
    echo "-- $name: $(($(date +%s) - t0)) s"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
