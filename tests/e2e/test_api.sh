#!/bin/sh
# test_api.sh - end-to-end tests of the HTTP API of `dimd serve`: starts the real
# daemon on free loopback ports with temporary state directories, drives it over
# HTTP and checks every response against openapi.yaml. One line per test
# ("ok NAME" / "FAIL NAME: reason"), then "N passed, M failed"; exits non-zero
# when a test failed or none ran.
#
# usage: sh tests/e2e/test_api.sh PATH/TO/dimd [MODULE|MODULE.TEST ...]
# env:   DIMD_TEST_TIMEOUT_SCALE  multiplies every deadline (default 1; 3 for a
#                                 binary under a directory named *san*)
#        DIMD_API_TESTS_EXCLUDE   comma-separated modules not to run here
#                                 (make test-san: test_faults,test_jobs,test_events,test_backup,
#                                 which make test-unit runs)
# Needs /usr/bin/python3 with python3-yaml (Debian packages).
set -u
if [ $# -lt 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH/TO/dimd [MODULE|MODULE.TEST ...]" >&2
    exit 2
fi
PYTHONDONTWRITEBYTECODE=1 exec /usr/bin/python3 "$(dirname "$0")/run_tests.py" "$@"
