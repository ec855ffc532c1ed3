#!/usr/bin/env bash
# Runs every unit test binary of a build dir under valgrind memcheck; any error or leak fails.
set -uo pipefail
dir=${1:-build}
fail=0; n=0
for t in "$dir"/tests/unit/test_*; do
  [ -x "$t" ] || continue
  n=$((n+1))
  # KF_TEST_SLOWDOWN: CPU-bound time limits in the tests scale with it (valgrind: about 19x slower)
  if ! KF_TEST_SLOWDOWN=30 valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible \
       --errors-for-leak-kinds=definite,indirect,possible --suppressions=hack/valgrind.supp \
       "$t" >"$t.valgrind.log" 2>&1; then
    echo "valgrind: FAIL $(basename "$t") (log: $t.valgrind.log)"; tail -40 "$t.valgrind.log"; fail=$((fail+1))
  fi
done
echo "valgrind: $((n-fail)) of $n unit test programs clean"
[ $fail = 0 ]
