#!/bin/sh
# Runs test binaries, shows each one's cmocka output, and ends with one summary
# line "N passed, N failed" counted over individual test cases. A binary that
# crashes or exits non-zero without a cmocka summary counts as one failure.
# usage: tests/run.sh BUILD_DIR BIN...
set -u
build=$1; shift
mkdir -p "$build/test-logs"
passed=0; failed=0
for bin in "$@"; do
    name=$(basename "$bin")
    log="$build/test-logs/$name.log"
    echo "== $name"
    "$bin" >"$log" 2>&1
    rc=$?
    cat "$log"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    p=${p:-0}; f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "!! $name exited with status $rc"
        f=1
    fi
    passed=$((passed + p)); failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
