#!/usr/bin/env bash
# test_example.sh — the README's example (examples/hello.c) runs against the
# throwaway cluster and prints what the README says it prints.
set -u
dotenv_file=${PQPOOL_TEST_ENV:?}
url=$(sed -n 's/^DATABASE_URL=//p' "$dotenv_file")
pw=$(sed -n 's/^PQPOOL_TEST_PASSWORD=//p' "$dotenv_file")
out=$(DATABASE_URL=$url "${PQPOOL_EXAMPLE:?}" 2>&1)
rc=$?
echo "$out"
fail=0
[ $rc -eq 0 ] || { echo "FAIL: exit status $rc"; fail=1; }
grep -qx 'test=42' <<<"$out" || { echo "FAIL: no test=42 line"; fail=1; }
grep -Eq '^health=healthy responseTime=[0-9]+\.[0-9]{3} ms connections=[1-9]' <<<"$out" \
  || { echo "FAIL: no healthy line"; fail=1; }
grep -q 'responseTime=0\.000 ' <<<"$out" && { echo "FAIL: responseTime is zero"; fail=1; }
grep -qF -- "$pw" <<<"$out" && { echo "FAIL: the password was printed"; fail=1; }
exit $fail
