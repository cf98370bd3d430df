# faults_lib.sh — sourced by the fault_*.sh scripts: a private cluster for
# the case (its own port and data folder, removed on exit), serve_lib.sh's
# machinery on top of it (the service, requests, and the password check over
# everything captured), a steady load from loadgen, and the summary line.
#
# Environment (set by tests/faults/CMakeLists.txt):
#   PQPOOL_BIN        the pqpool binary
#   PQPOOL_LOADGEN    the load generator (tests/faults/loadgen.c)
#   PQPOOL_SRC        the source tree
#   PQPOOL_FAULTS_SUMMARY  a file the summary lines are appended to (optional)
set -u

fsrc=${PQPOOL_SRC:?set PQPOOL_SRC to the source tree (run under ctest)}
loadgen=${PQPOOL_LOADGEN:?set PQPOOL_LOADGEN to the load generator (run under ctest)}
fstate=$(mktemp -d /tmp/pqpool-faults.XXXXXX)
chmod 755 "$fstate"

fault_cleanup() {
	"$fsrc/tests/pg_fixture.sh" stop "$fstate/pg" >/dev/null 2>&1
	rm -rf "$fstate"
}

if ! "$fsrc/tests/pg_fixture.sh" start "$fstate/pg" >"$fstate/fixture.log" 2>&1; then
	echo "FAIL could not start the case's cluster: $(tail -n 5 "$fstate/fixture.log")"
	fault_cleanup
	exit 1
fi
export PQPOOL_TEST_ENV="$fstate/pg/env"
. "$fsrc/tests/sh/serve_lib.sh"
# serve_lib's own trap restarts a stopped cluster for the tests that share
# it; ours is private and removed anyway
trap 'cluster_stopped=0; load_stop; serve_cleanup; fault_cleanup' EXIT

pgport=$(fixture PQPOOL_TEST_PORT)
pgbin=""
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
	[ -x "$d/pg_isready" ] && {
		pgbin=$d
		break
	}
done

# fault_pg_settings NAME=VALUE ...: server settings of this case's cluster
# (ALTER SYSTEM, then a restart, since some need one).
fault_pg_settings() {
	local kv
	for kv in "$@"; do
		admin_sql "ALTER SYSTEM SET ${kv%%=*} = '${kv#*=}'" >/dev/null
	done
	"$cluster" ctl "$pgdata" restart -m fast -w -t 60 >/dev/null 2>&1
}

# pg_accepting [host]: true when the server accepts connections now.
pg_accepting() {
	"$pgbin/pg_isready" -q -h "${1:-127.0.0.1}" -p "$pgport" -t 1 >/dev/null 2>&1
}

# pg_wait_accepting <old postmaster pid> <timeout_ms>: waits until a
# postmaster other than that one accepts connections; ACCEPT_MS is when
# (wall ms; empty on timeout). Polls every 10 ms or so.
pg_wait_accepting() {
	local old=$1 deadline=$(($(now_ms) + $2)) pid
	ACCEPT_MS=""
	while [ "$(now_ms)" -lt "$deadline" ]; do
		pid=$(head -n 1 "$pgdata/postmaster.pid" 2>/dev/null)
		if [ -n "$pid" ] && [ "$pid" != "$old" ] && pg_accepting; then
			ACCEPT_MS=$(now_ms)
			return 0
		fi
		sleep 0.01
	done
	return 1
}

postmaster_pid() { head -n 1 "$pgdata/postmaster.pid" 2>/dev/null; }

# ---- the load ------------------------------------------------------------------

LPID=""   # the running load generator
LFILE=""  # its per-request lines: sent_ms done_ms status
loads=0
LOADGEN_PREFIX=() # e.g. (ip netns exec NS) to run it elsewhere

# load_start <path> <requests/s> <threads> <max ms> [request timeout ms]:
# a steady load on the running service.
load_start() {
	loads=$((loads + 1))
	LFILE="$tmp/load.$loads"
	"${LOADGEN_PREFIX[@]}" "$loadgen" -p "$PORT" -P "$1" -r "$2" -c "$3" -d "$4" \
		-t "${5:-5000}" -o "$LFILE" >"$LFILE.summary" 2>&1 &
	LPID=$!
	LOAD_T0=$(now_ms)
}

# load_stop: ends the load (SIGTERM; it writes its lines) and waits for it.
load_stop() {
	[ -n "${LPID:-}" ] || return 0
	kill -TERM "$LPID" 2>/dev/null
	wait "$LPID" 2>/dev/null
	LPID=""
}

# load_wait: waits for the load's own end (its duration).
load_wait() {
	[ -n "${LPID:-}" ] || return 0
	wait "$LPID" 2>/dev/null
	LPID=""
}

# load_stats [since_ms]: from the last load's lines, sets SENT OK FAILED,
# FIRST_FAIL / LAST_FAIL (wall ms: when the first failed request was sent,
# when the last failed one ended; empty when none failed) and FIRST_OK_AFTER
# (when the first successful request ended at or after since_ms; empty if
# none), and LONGEST (the slowest request, ms).
load_stats() {
	local since=${1:-0}
	# shellcheck disable=SC2046
	read -r SENT OK FAILED FIRST_FAIL LAST_FAIL FIRST_OK_AFTER LONGEST < <(awk -v since="$since" '
		{ n++; d = $2 - $1; if (d > longest) longest = d
		  if ($3 >= 200 && $3 < 300) { ok++; if ($2 >= since && (fok == "" || $2 < fok)) fok = $2 }
		  else { bad++; if (ff == "") ff = $1; if ($2 > lf) lf = $2 } }
		END { printf "%d %d %d %s %s %s %d\n", n, ok, bad, ff == "" ? "-" : ff,
		      lf == "" ? "-" : lf, fok == "" ? "-" : fok, longest }' "$LFILE" 2>/dev/null)
	[ "${FIRST_FAIL:-}" = - ] && FIRST_FAIL=""
	[ "${LAST_FAIL:-}" = - ] && LAST_FAIL=""
	[ "${FIRST_OK_AFTER:-}" = - ] && FIRST_OK_AFTER=""
	: "${SENT:=0}" "${OK:=0}" "${FAILED:=0}" "${LONGEST:=0}"
}

# load_count <awk condition on $1 sent, $2 done, $3 status>: how many lines match.
load_count() { awk "$1 { n++ } END { print n + 0 }" "$LFILE" 2>/dev/null; }

# ---- the report ------------------------------------------------------------------

# fault_summary <case> key=value ...: the one line a reliability table quotes.
fault_summary() {
	local line="FAULT $1:"
	shift
	line="$line $*"
	echo "$line"
	[ -n "${PQPOOL_FAULTS_SUMMARY:-}" ] && echo "$line" >>"$PQPOOL_FAULTS_SUMMARY"
	return 0
}

# pool_settled <timeout_ms>: once the load stopped, waits for no lease and no
# waiter in /api/metrics/database; sets POOL_JSON to the last answer.
pool_settled() {
	local deadline=$(($(now_ms) + $1))
	while :; do
		req /api/metrics/database
		POOL_JSON=$BODY
		if [ "$CODE" = 200 ] && jq -e '.metrics.activeConnections == 0 and .metrics.waitingConnections == 0' \
			>/dev/null 2>&1 <<<"$BODY"; then
			return 0
		fi
		[ "$(now_ms)" -ge "$deadline" ] && return 1
		sleep 0.1
	done
}
