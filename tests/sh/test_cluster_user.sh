#!/usr/bin/env bash
# test_cluster_user.sh — what runs as the cluster's OS user (the "postgres"
# user when the tests run as root) works from a working directory that user
# cannot enter, as a checkout in /root or in a `mktemp -d` folder (mode 0700)
# is: scripts/pgcluster.sh's psql and ctl, and a whole cluster's life through
# tests/pg_fixture.sh (initdb, pg_ctl start, psql, pg_ctl stop). Each gives
# its value on stdout and says nothing on stderr: PostgreSQL's programs, run
# from such a folder, warn 'could not change directory to "...": Permission
# denied', and a check that read stderr with the value failed on it.
# As another user than root the cluster runs as that user, who can enter the
# folder: the same checks, nothing to refuse.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/assert.sh"
testenv=${PQPOOL_TEST_ENV:?set PQPOOL_TEST_ENV to the fixture env file (run under ctest)}
fixture() { sed -n "s/^$1=//p" "$testenv" | head -n 1; }
pgdata=$(fixture PQPOOL_TEST_PGDATA)
cluster=$(fixture PQPOOL_TEST_CLUSTER)

closed=$(mktemp -d /tmp/pqpool-closed.XXXXXX) # mode 0700, ours
own="$closed/pg"                               # a second cluster's state, below
trap '"$here/../pg_fixture.sh" stop "$own" >/dev/null 2>&1; rm -rf "$closed"' EXIT
chmod 700 "$closed"
if [ "$(id -u)" -eq 0 ]; then
	# the premise: the cluster's user really cannot enter it
	if (cd / && runuser -u postgres -- test -x "$closed"); then
		fail "postgres cannot enter $closed (mode 0700, root's)"
	else
		pass "postgres cannot enter $closed (mode 0700, root's)"
	fi
fi
cd "$closed" || exit 1
refusal='could not change directory|Permission denied'

out=$("$cluster" psql "$pgdata" -d hyperpage -Atc 'SELECT 41 + 1' 2>"$closed/err")
expect_eq "pgcluster.sh psql: exit status" 0 "$?"
expect_eq "pgcluster.sh psql: the value alone on stdout" 42 "$out"
expect_eq "pgcluster.sh psql: nothing on stderr" "" "$(cat "$closed/err")"

out=$("$cluster" psql "$pgdata" -d hyperpage -At 2>"$closed/err" <<<"SELECT current_user")
expect_eq "pgcluster.sh psql, SQL on stdin: the value" postgres "$out"
expect_eq "pgcluster.sh psql, SQL on stdin: nothing on stderr" "" "$(cat "$closed/err")"

"$cluster" ctl "$pgdata" status >/dev/null 2>"$closed/err"
expect_eq "pgcluster.sh ctl status: exit status" 0 "$?"
expect_eq "pgcluster.sh ctl status: nothing on stderr" "" "$(cat "$closed/err")"

# a cluster of its own, from start to removal (a retry on a port taken
# meanwhile may say so on stderr: only the refusal is looked for)
"$here/../pg_fixture.sh" start "$own" >"$closed/start.out" 2>"$closed/err"
expect_eq "pg_fixture.sh start: exit status" 0 "$?"
expect_no_match "pg_fixture.sh start: no refusal on stderr" "$refusal" "$(cat "$closed/err")"
owndata=$(sed -n 's/^PQPOOL_TEST_PGDATA=//p' "$own/env" 2>/dev/null)
out=$("$cluster" psql "$owndata" -d hyperpage -Atc 'SELECT current_database()' 2>"$closed/err")
expect_eq "the new cluster answers: the value alone" hyperpage "$out"
expect_eq "the new cluster answers: nothing on stderr" "" "$(cat "$closed/err")"
"$cluster" ctl "$owndata" restart -m fast -w -t 60 >/dev/null 2>"$closed/err"
expect_eq "pgcluster.sh ctl restart: exit status" 0 "$?"
expect_no_match "pgcluster.sh ctl restart: no refusal on stderr" "$refusal" "$(cat "$closed/err")"
"$here/../pg_fixture.sh" stop "$own" >/dev/null 2>"$closed/err"
expect_eq "pg_fixture.sh stop: exit status" 0 "$?"
expect_no_match "pg_fixture.sh stop: no refusal on stderr" "$refusal" "$(cat "$closed/err")"
expect_eq "pg_fixture.sh stop: the cluster's folder is gone" no "$([ -n "$owndata" ] && [ -e "$owndata" ] && echo yes || echo no)"

echo "$checks checks, $fails failed"
[ "$fails" -eq 0 ]
