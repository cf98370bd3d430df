# serve_lib.sh — sourced by the test_serve_*.sh tests: assertions, the fixture's
# cluster, starting and stopping `pqpool serve`, and HTTP requests with curl.
#
# Environment (set by tests/CMakeLists.txt):
#   PQPOOL_BIN       the pqpool binary (required)
#   PQPOOL_TEST_ENV  the fixture's env file (DATABASE_URL, PQPOOL_TEST_PASSWORD,
#                    PQPOOL_TEST_PGDATA, PQPOOL_TEST_CLUSTER) (required)
#
# Every run's stderr and every response (headers and body) is kept in $tmp/all,
# which serve_finish searches for the password before reporting.
set -u

bin=$(realpath "${PQPOOL_BIN:?set PQPOOL_BIN to the pqpool binary}")
testenv=${PQPOOL_TEST_ENV:?set PQPOOL_TEST_ENV to the fixture env file (run under ctest)}
[ -r "$testenv" ] || {
	echo "FAIL cannot read $testenv"
	exit 1
}
for tool in curl jq; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "FAIL $tool not found: run scripts/deps.sh"
		exit 1
	}
done

fixture() { sed -n "s/^$1=//p" "$testenv" | head -n 1; }
url=$(fixture DATABASE_URL)
password=$(fixture PQPOOL_TEST_PASSWORD)
pgdata=$(fixture PQPOOL_TEST_PGDATA)
cluster=$(fixture PQPOOL_TEST_CLUSTER)

tmp=$(mktemp -d /tmp/pqpool-serve-test.XXXXXX)
work="$tmp/work" # the working directory of every run
mkdir -p "$work"
: >"$tmp/all"

# ---- assertions: see assert.sh ---------------------------------------------

. "$(dirname "${BASH_SOURCE[0]}")/assert.sh"

# ---- the service -----------------------------------------------------------

# Only what the runs need crosses into them: the caller's DB_*, HTTP_* or LOG_*
# settings must not change the results. Sanitizer options are kept.
keep=("PATH=$PATH")
for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS TSAN_OPTIONS; do
	[ -n "${!v:-}" ] && keep+=("$v=${!v}")
done

SPID=""      # the running service
PORT=""      # its port
BASE=""      # http://127.0.0.1:$PORT
SLOG=""      # its stderr
RC=""        # exit status of the last run that ended
EXIT_MS=""   # how long it took to end after serve_signal, ms
runs=0
cluster_stopped=0
frozen_pid="" # a postmaster stopped with SIGSTOP

# run [NAME=value ...] -- [arguments]: runs pqpool to completion in $work with
# exactly those variables; sets RC, OUT, ERR.
run() {
	local vars=()
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do
		vars+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	(cd "$work" && exec timeout -s KILL 60 env -i "${keep[@]}" "${vars[@]}" "$bin" "$@") \
		>"$tmp/out" 2>"$tmp/err" </dev/null
	RC=$?
	OUT=$(cat "$tmp/out")
	ERR=$(cat "$tmp/err")
	cat "$tmp/out" "$tmp/err" >>"$tmp/all"
}

# serve_start [NAME=value ...]: starts `pqpool serve` on a free port of
# 127.0.0.1 against the fixture's database (both overridable) and waits up
# to 15 s for its "listening on" line. Returns 1 if it did not come up.
serve_start() {
	runs=$((runs + 1))
	SLOG="$tmp/serve.$runs.log"
	: >"$SLOG" # before the polling below reads it
	(cd "$work" && exec env -i "${keep[@]}" "DATABASE_URL=$url" PORT=0 "$@" "$bin" serve) \
		>"$SLOG" 2>&1 </dev/null &
	SPID=$!
	PORT=""
	local deadline=$(($(now_ms) + 15000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		PORT=$(sed -n 's|.*listening on http://[^ "]*:\([0-9][0-9]*\).*|\1|p' "$SLOG" | head -n 1)
		# LOG_LEVEL=warn hides that line: ask the kernel instead
		[ -z "$PORT" ] && PORT=$(ss -Htlnp 2>/dev/null |
			sed -n "s/.*:\([0-9][0-9]*\) .*pid=$SPID,.*/\1/p" | head -n 1)
		[ -n "$PORT" ] && break
		serve_alive || break
		sleep 0.05
	done
	if [ -z "$PORT" ]; then
		fail "the service starts (run $runs)" "log: $(head -c 2000 "$SLOG")"
		serve_kill
		return 1
	fi
	BASE="http://127.0.0.1:$PORT"
	return 0
}

# True while the service runs (a zombie has ended: we have not reaped it yet).
serve_alive() {
	[ -n "$SPID" ] || return 1
	local state
	state=$(awk '/^State:/ { print $2 }' "/proc/$SPID/status" 2>/dev/null)
	[ -n "$state" ] && [ "$state" != Z ]
}

# serve_wait <timeout_ms>: waits for the service to end, killing it past the
# timeout; sets RC (137 when killed) and EXIT_MS (since $SIGNALLED_AT).
serve_wait() {
	local deadline=$(($(now_ms) + $1))
	while serve_alive && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.02; done
	EXIT_MS=$(($(now_ms) - ${SIGNALLED_AT:-$(now_ms)}))
	serve_alive && kill -KILL "$SPID" 2>/dev/null
	wait "$SPID" 2>/dev/null
	RC=$?
	cat "$SLOG" >>"$tmp/all"
	SPID=""
}

# serve_signal <SIG>: sends the signal and notes when.
serve_signal() {
	SIGNALLED_AT=$(now_ms)
	kill -"$1" "$SPID"
}

# serve_stop: SIGTERM, and a bounded wait; asserts a clean exit.
serve_stop() {
	[ -n "$SPID" ] || return 0
	serve_signal TERM
	serve_wait 15000
	expect_eq "run $runs: exit status after SIGTERM" 0 "$RC"
}

serve_kill() {
	[ -n "$SPID" ] || return 0
	kill -KILL "$SPID" 2>/dev/null
	wait "$SPID" 2>/dev/null
	cat "$SLOG" >>"$tmp/all"
	SPID=""
}

# ---- requests ----------------------------------------------------------------

# req <path> [curl options]: one request to the running service. Sets CODE
# (000 when there was no HTTP answer), BODY, SIZE (bytes of body received),
# HDRS (the response headers), CTYPE, TIME_MS and CURL_RC.
req() {
	local path=$1 w
	shift
	w=$(curl -s --max-time 20 -o "$tmp/body" -D "$tmp/hdrs" \
		-w '%{http_code} %{size_download} %{time_total}' "$@" "$BASE$path" 2>/dev/null)
	CURL_RC=$?
	read -r CODE SIZE w <<<"$w"
	TIME_MS=$(awk -v t="$w" 'BEGIN { printf "%d", t * 1000 }')
	BODY=$(cat "$tmp/body" 2>/dev/null)
	HDRS=$(tr -d '\r' <"$tmp/hdrs" 2>/dev/null)
	CTYPE=$(sed -n 's/^[Cc]ontent-[Tt]ype: //p' <<<"$HDRS" | tail -n 1)
	cat "$tmp/hdrs" "$tmp/body" >>"$tmp/all" 2>/dev/null
	rm -f "$tmp/body" "$tmp/hdrs"
}

# header <name>: the value of a response header of the last req.
header() { sed -n "s/^$1: //Ip" <<<"$HDRS" | tail -n 1; }

# ---- the cluster ---------------------------------------------------------------

pg_stop() {
	cluster_stopped=1
	"$cluster" ctl "$pgdata" stop -m fast -w >/dev/null 2>&1
}
pg_start() {
	"$cluster" ctl "$pgdata" start -w -t 60 >/dev/null 2>&1 && cluster_stopped=0
}
# pg_freeze / pg_thaw: the postmaster stopped with SIGSTOP accepts TCP
# connections (the kernel completes the handshake) but never answers them,
# while sessions already open go on: a database that hangs for newcomers.
pg_freeze() {
	frozen_pid=$(head -n 1 "$pgdata/postmaster.pid" 2>/dev/null)
	[ -n "$frozen_pid" ] && kill -STOP "$frozen_pid" 2>/dev/null || frozen_pid=""
	[ -n "$frozen_pid" ]
}
pg_thaw() {
	[ -n "$frozen_pid" ] && kill -CONT "$frozen_pid"
	frozen_pid=""
}
# admin_sql <sql>: one value, as the superuser in database hyperpage. Only
# psql's output is the value: its errors and warnings go to the test's log
# (stderr), never into what a check compares.
admin_sql() { "$cluster" psql "$pgdata" -d hyperpage -Atc "$1"; }

# ---- the end -------------------------------------------------------------------

serve_cleanup() {
	serve_kill
	# other tests share the cluster: never leave it stopped or frozen
	[ -n "$frozen_pid" ] && kill -CONT "$frozen_pid" 2>/dev/null
	[ "$cluster_stopped" = 1 ] && pg_start
	# PQPOOL_KEEP_TMP=1: a copy of the runs' logs in /tmp/kept-serve-logs
	[ -n "${PQPOOL_KEEP_TMP:-}" ] && cp -r "$tmp" /tmp/kept-serve-logs 2>/dev/null
	rm -rf "$tmp"
}
trap serve_cleanup EXIT
trap 'exit 130' INT TERM

# Further secrets a test hands to its runs (a token, another cluster's
# password, a private key's text): serve_finish checks them as the password.
secrets=()

# serve_finish: the password check over everything captured, the summary,
# and the exit status of the test.
serve_finish() {
	local i
	serve_kill
	expect_absent "the password appears in no log line, header or body" "$password" \
		"$(cat "$tmp/all")"
	for i in "${!secrets[@]}"; do
		[ -n "${secrets[$i]}" ] && expect_absent \
			"secret #$((i + 1)) appears in no log line, header or body" \
			"${secrets[$i]}" "$(cat "$tmp/all")"
	done
	echo "$checks checks, $fails failed"
	[ "$fails" -eq 0 ]
}
