#!/bin/sh
# run-default.sh - what `make run` starts once dimd is built.
#
# Starts the daemon (`dimd serve`) on 127.0.0.1 with the state directory
# build/state (database build/state/dimd.db, first token build/state/token),
# and, when that database has no job yet, submits the main job: one epoch of
# DIM(L) (local JSD + prior, basic32x32) on Fashion-MNIST with linear probes at
# its checkpoints. It prints the URL, the token and the curl lines to follow the
# job, then stays in the foreground; Ctrl-C stops the daemon cleanly (the job
# checkpoints and resumes at the next `make run`).
#
# usage: scripts/run-default.sh [PATH/TO/dimd] [PORT]   (defaults build/dimd, 8470)
set -eu
dimd=${1:-build/dimd}
port=${2:-${DIMD_PORT:-8470}}
case $dimd in
/*) ;;
*) dimd=$(pwd)/$dimd ;;
esac
cd "$(dirname "$0")/.."
if [ ! -x "$dimd" ]; then
    echo "run-default.sh: $dimd is not built; run 'make run'" >&2
    exit 1
fi
state=build/state
mkdir -p build
log=build/run-serve.log
"$dimd" serve --state_dir "$state" --port "$port" >"$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid; exit 0' INT TERM
url=""
for _ in $(seq 1 100); do
    url=$(sed -n 's/^dimd: listening on \(.*\)$/\1/p' "$log")
    [ -n "$url" ] && break
    if ! kill -0 $pid 2>/dev/null; then
        cat "$log" >&2
        exit 1
    fi
    sleep 0.1
done
cat "$log"
[ -n "$url" ] || { echo "run-default.sh: dimd did not start" >&2; kill $pid; exit 1; }
token=$(cat "$state/token")
auth="Authorization: Bearer $token"
jobs=$(curl -s -H "$auth" "${url}v1/jobs?limit=1")
case $jobs in
*'"jobs":[]'*)
    echo "submitting the default job: one epoch of DIM(L) on Fashion-MNIST"
    curl -s -H "$auth" -H 'Content-Type: application/json' -H 'Idempotency-Key: make-run-default' \
        -d '{"name":"default: DIM(L) on Fashion-MNIST","dataset":"fashion-mnist","epochs":1}' \
        "${url}v1/jobs"
    ;;
*) echo "the state directory already has jobs; not submitting the default one" ;;
esac
cat <<INFO

dimd is running at $url (state in $state, log in $log)
  dashboard: open $url in a browser and paste the token
  token:    $token   (also in $state/token)
  jobs:     curl -H '$auth' ${url}v1/jobs
  metrics:  curl -H '$auth' ${url}v1/jobs/1/metrics/loss_total?max_points=100
  live:     curl -N -H '$auth' ${url}v1/jobs/1/events
Ctrl-C stops it (running jobs checkpoint and resume next time).
INFO
tail -n 0 -f "$log" &
tailpid=$!
wait $pid
status=$?
kill $tailpid 2>/dev/null
exit $status
