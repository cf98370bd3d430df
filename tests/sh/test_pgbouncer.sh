#!/usr/bin/env bash
# test_pgbouncer.sh — the pool behind Debian's PgBouncer 1.18 in transaction
# mode (scripts/pgbouncer.sh, on loopback in front of the fixture cluster):
#  - with the defaults, connecting fails with an error that names the fix
#    (PgBouncer refuses the startup parameter that carries DB_STATEMENT_TIMEOUT);
#  - with DB_STATEMENT_TIMEOUT=0 and DB_PREPARED_STATEMENTS=off, `pqpool check`
#    is healthy; with prepared statements on, the errors name the fix;
#  - with DB_PIPELINE_ONE_SYNC=on too, the pipelining suites' mixed-error and
#    exactly-once insert tests pass through it, on the blocking and the
#    asynchronous path (with several Syncs in flight PgBouncer 1.18 hands the
#    server connection on at the first ReadyForQuery and drops the client);
#  - the password never shows.
set -u
src=${PQPOOL_SRC:?}
# shellcheck source=assert.sh
. "$src/tests/sh/assert.sh"
env_file=${PQPOOL_TEST_ENV:?}
pg_port=$(sed -n 's/^PQPOOL_TEST_PORT=//p' "$env_file")
pw=$(sed -n 's/^PQPOOL_TEST_PASSWORD=//p' "$env_file")
bin=${PQPOOL_BIN:?}
tests=${PQPOOL_BUILD:?}/tests

dir=$(mktemp -d /tmp/pqpool-bouncer.XXXXXX)
chmod 755 "$dir"
cleanup() { "$src/scripts/pgbouncer.sh" stop "$dir/b" >/dev/null 2>&1; rm -rf "$dir"; }
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
started=0
for _ in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 30000))
	port_free "$port" || continue
	if "$src/scripts/pgbouncer.sh" start "$dir/b" "$port" "$pg_port" "$pw"; then
		started=1
		break
	fi
done
if [ $started -ne 1 ]; then
	fail "PgBouncer starts"
	echo "$checks checks, $fails failed"
	exit 1
fi
pass "PgBouncer 1.18 in transaction mode on 127.0.0.1:$port"
url="postgresql://hyperpage:$pw@127.0.0.1:$port/hyperpage"

out=$(DATABASE_URL=$url timeout 60 "$bin" check 2>&1)
rc=$?
expect_ne "defaults: check fails (PgBouncer refuses the options startup parameter)" 0 "$rc"
expect_match "defaults: the error names the fix" "DB_STATEMENT_TIMEOUT=0" "$out"
expect_no_password() {
	if grep -qF -- "$pw" <<<"$2"; then fail "$1: the password never shows" "it did"; else
		pass "$1: the password never shows"; fi
}
expect_no_password "defaults" "$out"

out=$(DATABASE_URL=$url DB_STATEMENT_TIMEOUT=0 DB_PREPARED_STATEMENTS=off timeout 60 "$bin" check 2>&1)
rc=$?
expect_eq "DB_STATEMENT_TIMEOUT=0 DB_PREPARED_STATEMENTS=off: check exits 0" 0 "$rc"
expect_match "and the database is healthy" '"status":"healthy"' "$out"
expect_no_password "check" "$out"

# prepared statements on: another client's server connection has other
# statements; the error says what to turn off
out=$(DATABASE_URL=$url DB_STATEMENT_TIMEOUT=0 DB_PIPELINE_ONE_SYNC=on timeout 60 \
	"$bin" bench throughput -t 16 -p 4 -d 1 --prepared --no-progress 2>&1)
expect_match "prepared statements on: the errors name the fix" \
	'prepared statement "pqpool_[0-9]+" (already exists|does not exist) \(.*set DB_PREPARED_STATEMENTS=off\)' "$out"
expect_no_password "bench" "$out"

# the C suites through PgBouncer: the same env file, its URL replaced
# (tests/testenv.c then sets DB_STATEMENT_TIMEOUT=0, DB_PIPELINE_ONE_SYNC=on,
# and the tests themselves DB_PREPARED_STATEMENTS=off)
benv=$dir/env
{
	grep -v '^DATABASE_URL=' "$env_file"
	echo "DATABASE_URL=$url"
	echo "PQPOOL_TEST_BOUNCER=1"
} >"$benv"
chmod 600 "$benv"
for suite in test_pool_pipeline test_pool_submit; do
	for t in test_mixed_failures_unnamed test_inserts_exactly_once; do
		out=$(PQPOOL_TEST_ENV=$benv PQPOOL_TEST_FILTER=$t timeout 240 "$tests/$suite" 2>&1)
		rc=$?
		if [ $rc -eq 0 ] && grep -q '\[  PASSED  \] 1 test' <<<"$out"; then
			pass "$suite $t through PgBouncer"
		else
			fail "$suite $t through PgBouncer (exit $rc)" "$(tail -n 15 <<<"$out")"
		fi
		expect_no_password "$suite $t" "$out"
	done
done

echo "$checks checks, $fails failed"
[ "$fails" -eq 0 ]
