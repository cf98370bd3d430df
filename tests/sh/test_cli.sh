#!/usr/bin/env bash
# test_cli.sh — the pqpool command line: options, exit statuses, configuration
# errors, .env.local, password masking and `check` against a real server.
#
# Environment (set by tests/CMakeLists.txt):
#   PQPOOL_BIN       the pqpool binary (required)
#   PQPOOL_TEST_ENV  the fixture's env file (DATABASE_URL, PQPOOL_TEST_PASSWORD, ...);
#                    without it the tests that need a server are skipped
#   PQPOOL_SRC       the source tree (for the version in include/pqpool.h)
set -u

here=$(cd "$(dirname "$0")" && pwd)
src=${PQPOOL_SRC:-$(cd "$here/../.." && pwd)}
bin=$(realpath "${PQPOOL_BIN:?set PQPOOL_BIN to the pqpool binary}")
testenv=${PQPOOL_TEST_ENV:-}

tmp=$(mktemp -d /tmp/pqpool-cli-test.XXXXXX)
work="$tmp/work" # the working directory of every run: its .env.local is ours
mkdir -p "$work"
stopped_pid=""
cleanup() {
	# never leave the fixture's server frozen, whatever happened
	[ -n "$stopped_pid" ] && kill -CONT "$stopped_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- assertions ---------------------------------------------------------

. "$(dirname "${BASH_SOURCE[0]}")/assert.sh"
# expect_eq <what> <expected> <actual>, with the run's stderr on failure
expect_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else
		fail "$1" "expected: $2" "actual:   $3" "stderr:   $(head -c 400 <<<"$ERR")"
	fi
}
expect_rc() { expect_eq "$1: exit status" "$2" "$RC"; }
expect_line() { expect_match "$@"; }
expect_no_line() { expect_no_match "$@"; }

# ---- running the binary -------------------------------------------------

# Only what the runs need crosses into them: the caller's DB_* or LOG_*
# settings must not change the results. Sanitizer options are kept.
keep=("PATH=$PATH")
for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS TSAN_OPTIONS; do
	[ -n "${!v:-}" ] && keep+=("$v=${!v}")
done

# run [NAME=value ...] -- [arguments]: runs pqpool in $work with exactly those
# variables. Sets RC, OUT, ERR and MS (elapsed milliseconds) and appends the
# output to $tmp/all for the final password check.
run() {
	local vars=() t0 t1
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do
		vars+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	t0=$(date +%s%N)
	(cd "$work" && exec env -i "${keep[@]}" "${vars[@]}" "$bin" "$@") \
		>"$tmp/out" 2>"$tmp/err" </dev/null
	RC=$?
	t1=$(date +%s%N)
	MS=$(((t1 - t0) / 1000000))
	OUT=$(cat "$tmp/out")
	ERR=$(cat "$tmp/err")
	cat "$tmp/out" "$tmp/err" >>"$tmp/all" # not the arguments: some hold secrets
}


# Secrets handed to runs; none may appear in any output (checked at the end).
secrets=()

# ---- options and exit statuses -----------------------------------------

version=$(sed -n 's/^#define PQPOOL_VERSION "\(.*\)"/\1/p' "$src/include/pqpool.h")

run -- --help
expect_rc "--help" 0
expect_line "--help shows the usage" '^usage: pqpool <command>' "$OUT"
expect_line "--help lists config" '^  config ' "$OUT"
expect_line "--help lists check" '^  check ' "$OUT"
expect_line "--help lists serve" '^  serve ' "$OUT"
run -- -h
expect_rc "-h" 0
run -- --version
expect_rc "--version" 0
expect_line "--version names pqpool and libpq" "^pqpool ${version//./\\.} \(libpq [0-9]+\.[0-9]+(\.[0-9]+)?\)$" "$OUT"
run -- -V
expect_rc "-V" 0
run -- config --help
expect_rc "config --help" 0
expect_line "config --help shows its usage" '^usage: pqpool config \[options\]' "$OUT"
expect_line "config --help lists --json" '--json' "$OUT"
run -- check --help
expect_rc "check --help" 0
expect_line "check --help shows its usage" '^usage: pqpool check \[options\]' "$OUT"
run -- config --version
expect_rc "config --version" 0
expect_line "config --version prints the version" '^pqpool ' "$OUT"

run --
expect_rc "no command" 2
expect_line "no command: usage on stderr" '^usage: pqpool' "$ERR"
expect_eq "no command: nothing on stdout" "" "$OUT"

run -- frobnicate
expect_rc "unknown command" 2
expect_line "unknown command: named" "^pqpool: unknown command 'frobnicate'$" "$ERR"
expect_line "unknown command: hint" "--help" "$ERR"
expect_eq "unknown command: nothing on stdout" "" "$OUT"

run -- --bogus
expect_rc "unknown global option" 2
expect_line "unknown global option: named" "--bogus" "$ERR"
run -- config --bogus
expect_rc "unknown config option" 2
expect_line "unknown config option: named" "^pqpool config: .*'--bogus'" "$ERR"
expect_line "unknown config option: hint" "^Try 'pqpool config --help'" "$ERR"
run -- check -x
expect_rc "unknown short option" 2
expect_line "unknown short option: named" "'-x'" "$ERR"
run -- config --json=yes
expect_rc "value for a flag" 2
run -- config extra
expect_rc "unexpected argument" 2
expect_line "unexpected argument: named" "'extra'" "$ERR"
secrets+=("hunter2-opt-secret")
run -- config --password=hunter2-opt-secret
expect_rc "unknown option with a value" 2
expect_line "unknown option with a value: named" "'--password'" "$ERR"

# ---- configuration errors ----------------------------------------------

run DB_POOL_MAX=abc -- config
expect_rc "DB_POOL_MAX=abc" 2
expect_line "DB_POOL_MAX=abc: named" '^pqpool: .*DB_POOL_MAX' "$ERR"
expect_eq "DB_POOL_MAX=abc: one line" 1 "$(wc -l <"$tmp/err")"
expect_eq "DB_POOL_MAX=abc: nothing on stdout" "" "$OUT"

for bad in DB_POOL_MAX=0 DB_POOL_MAX=10001 DB_POOL_MIN=-1 DB_POOL_MIN=30 \
	DB_IDLE_TIMEOUT=12ms DB_CONNECTION_TIMEOUT=99999999999999999999 \
	"DB_STATEMENT_TIMEOUT= 5" DB_QUERY_TIMEOUT=1e3 DB_RETRY_ATTEMPTS=0 \
	DB_FAIL_FAST=perhaps SSL_MODE=sometimes POSTGRES_PORT=http \
	LOG_LEVEL=verbose LOG_FORMAT=xml; do
	name=${bad%%=*}
	run "$bad" -- config
	expect_rc "config with $bad" 2
	expect_line "config with $bad: names $name" "^pqpool: .*$name" "$ERR"
done

run DB_POOL_MAX=abc -- check
expect_rc "check with a bad value" 2
expect_line "check with a bad value: named" 'DB_POOL_MAX' "$ERR"

secrets+=("url-secret-42")
run "DATABASE_URL=postgresql://hyperpage:url-secret-42@[::1/hyperpage" -- config
expect_rc "malformed DATABASE_URL" 2
expect_line "malformed DATABASE_URL: named" '^pqpool: .*DATABASE_URL' "$ERR"
expect_absent "malformed DATABASE_URL: password not echoed" "url-secret-42" "$OUT$ERR"

# ---- config output -------------------------------------------------------

run -- config
expect_rc "config with defaults" 0
expect_line "default DATABASE_URL, masked" \
	'^DATABASE_URL=postgresql://hyperpage:\*\*\*\*@localhost:5432/hyperpage +# default' "$OUT"
for nv in POSTGRES_HOST=localhost POSTGRES_PORT=5432 POSTGRES_DB=hyperpage \
	POSTGRES_USER=hyperpage 'POSTGRES_PASSWORD=\*\*\*\*' DB_POOL_MAX=20 DB_POOL_MIN=5 \
	DB_IDLE_TIMEOUT=30000 DB_CONNECTION_TIMEOUT=5000 DB_STATEMENT_TIMEOUT=30000 \
	DB_QUERY_TIMEOUT=30000 DB_RETRY_ATTEMPTS=3 DB_RETRY_BASE_DELAY=1000 \
	DB_HEALTH_SHARE=true DB_PREPARED_STATEMENTS=true DB_FAIL_FAST=false LOG_LEVEL=info LOG_FORMAT=text; do
	expect_line "default ${nv//\\/}" "^$nv +# default$" "$OUT"
done
expect_no_line "the default password is not shown" ':password@|=password' "$OUT$ERR"
expect_eq "config: the variables, in order" \
	"DATABASE_URL POSTGRES_HOST POSTGRES_PORT POSTGRES_DB POSTGRES_USER POSTGRES_PASSWORD NODE_ENV DB_POOL_MAX DB_POOL_MIN DB_IDLE_TIMEOUT DB_CONNECTION_TIMEOUT DB_STATEMENT_TIMEOUT DB_QUERY_TIMEOUT SSL_MODE SSL_CERT_PATH SSL_KEY_PATH SSL_CA_PATH DB_MAX_LIFETIME DB_LEASE_WARN DB_RETRY_ATTEMPTS DB_RETRY_BASE_DELAY DB_RETRY_MAX_DELAY DB_RETRY_DEADLINE DB_HEALTH_QUERY DB_HEALTH_SLOW DB_HEALTH_SHARE DB_PREPARED_STATEMENTS DB_PIPELINE DB_PIPELINE_DEPTH DB_PIPELINE_ONE_SYNC DB_READ_TARGET DB_MAX_REPLICA_LAG DB_FAIL_FAST HOST PORT HTTP_THREADS HTTP_DB_THREADS HTTP_MAX_CONNECTIONS HTTP_IDLE_TIMEOUT HTTP_MAX_HEADER_BYTES SHUTDOWN_TIMEOUT METRICS_TOKEN LOG_LEVEL LOG_FORMAT" \
	"$(sed 's/=.*//' <<<"$OUT" | tr '\n' ' ' | sed 's/ $//')"

secrets+=("custom-pw-77")
run POSTGRES_PASSWORD=custom-pw-77 POSTGRES_HOST=db.internal DB_POOL_MAX=8 -- config
expect_rc "config with POSTGRES_* parts" 0
expect_line "URL built from the parts, masked" \
	'^DATABASE_URL=postgresql://hyperpage:\*\*\*\*@db\.internal:5432/hyperpage ' "$OUT"
expect_line "POSTGRES_PASSWORD masked, from the environment" '^POSTGRES_PASSWORD=\*\*\*\* +# environment' "$OUT"
expect_line "DB_POOL_MAX from the environment" '^DB_POOL_MAX=8 +# environment$' "$OUT"
expect_absent "parts: password not shown" "custom-pw-77" "$OUT$ERR"

run -- config --json
expect_rc "config --json" 0
expect_line "config --json is an object" '^\{' "$OUT"
expect_line "config --json names DB_POOL_MAX" '"DB_POOL_MAX"' "$OUT"
expect_jq "config --json: values and sources" \
	'.DB_POOL_MAX.value == 20 and .DB_POOL_MAX.source == "default" and .DB_HEALTH_SHARE.value == true and .NODE_ENV.value == null and (.DATABASE_URL.value | contains("****")) and .POSTGRES_PASSWORD.value == "****"' \
	"$OUT"

# ---- .env.local ------------------------------------------------------------

secrets+=("broken-secret-value" "unterminated-secret")
cat >"$work/.env.local" <<'EOF'
# a comment, then a blank line

export DB_POOL_MAX=7
DB_POOL_MIN='2'
DB_IDLE_TIMEOUT="1234"   # a comment after the value
DB_CONNECTION_TIMEOUT=4321
this line is broken-secret-value
DB_QUERY_TIMEOUT="unterminated-secret
LOG_FORMAT=text
EOF
run DB_CONNECTION_TIMEOUT=2500 LOG_FORMAT= -- config
expect_rc "config with .env.local" 0
expect_line ".env.local: export prefix" '^DB_POOL_MAX=7 +# \.env\.local$' "$OUT"
expect_line ".env.local: single quotes" '^DB_POOL_MIN=2 +# \.env\.local$' "$OUT"
expect_line ".env.local: double quotes and a comment" '^DB_IDLE_TIMEOUT=1234 +# \.env\.local$' "$OUT"
expect_line ".env.local: the real environment wins" '^DB_CONNECTION_TIMEOUT=2500 +# environment$' "$OUT"
expect_line ".env.local: an empty real variable still wins" '^LOG_FORMAT=text +# default \(empty in the environment\)$' "$OUT"
expect_line ".env.local: malformed line skipped" '^DB_QUERY_TIMEOUT=30000 +# default$' "$OUT"
expect_line ".env.local: warning names file:line 7" '\.env\.local:7: ' "$ERR"
expect_line ".env.local: warning names file:line 8" '\.env\.local:8: ' "$ERR"
expect_absent ".env.local: malformed value not echoed" "broken-secret-value" "$ERR"
expect_absent ".env.local: unterminated value not echoed" "unterminated-secret" "$ERR"

printf 'DB_POOL_MAX=abc\n' >"$work/.env.local"
run -- config
expect_rc ".env.local with a bad value" 2
expect_line ".env.local with a bad value: named, with the file" 'DB_POOL_MAX.*\.env\.local' "$ERR"

rm -f "$work/.env.local"
mkdir "$work/.env.local"
run -- config
expect_rc "unreadable .env.local" 2
expect_line "unreadable .env.local: named" '^pqpool: .*\.env\.local' "$ERR"
rmdir "$work/.env.local"

# ---- check against the fixture's server -------------------------------------

fixture() { sed -n "s/^$1=//p" "$testenv" | head -n 1; }

if [ -z "$testenv" ]; then
	echo "skip check tests: PQPOOL_TEST_ENV is not set (run under ctest, or see tests/pg_fixture.sh)"
elif [ ! -r "$testenv" ]; then
	fail "fixture env file readable" "cannot read $testenv"
else
	url=$(fixture DATABASE_URL)
	password=$(fixture PQPOOL_TEST_PASSWORD)
	port=$(fixture PQPOOL_TEST_PORT)
	pgdata=$(fixture PQPOOL_TEST_PGDATA)
	secrets+=("$password")

	run "DATABASE_URL=$url" -- config
	expect_rc "config with the fixture's URL" 0
	expect_line "fixture URL masked, from the environment" \
		"^DATABASE_URL=postgresql://hyperpage:\\*\\*\\*\\*@127\\.0\\.0\\.1:$port/hyperpage.* +# environment" "$OUT"

	run "DATABASE_URL=$url" -- check
	expect_rc "check, server up" 0
	expect_line "check, server up: healthy" '"status":"healthy"' "$OUT"
	rt=$(sed -n 's/.*"responseTime":\([-0-9.eE+]*\).*/\1/p' <<<"$OUT")
	expect_eq "check, server up: responseTime > 0" yes "$(awk -v t="${rt:-0}" 'BEGIN { print (t > 0) ? "yes" : "no" }')"
	expect_eq "check, server up: one line on stdout" 1 "$(wc -l <"$tmp/out")"
	expect_jq "check, server up: the JSON of DESIGN §2" \
		'.status == "healthy" and (.data.responseTime > 0) and (.data.connectionCount >= 1) and (.data.lastCheck | type) == "string" and (.data | has("error") | not)' \
		"$OUT"

	run "DATABASE_URL=$url" LOG_LEVEL=debug LOG_FORMAT=json -- check
	expect_rc "check with JSON logs" 0
	expect_line "JSON logs: the masked URL is logged" 'hyperpage:\*\*\*\*@' "$ERR"
	expect_eq "JSON logs: every line an object with ts, level, msg" "" \
		"$(jq -c 'select((has("ts") and has("level") and has("msg")) | not)' <<<"$ERR" 2>&1)"

	printf 'DATABASE_URL=%s\n' "$url" >"$work/.env.local"
	run -- check
	expect_rc "check, DATABASE_URL from .env.local" 0
	expect_line "check, DATABASE_URL from .env.local: healthy" '"status":"healthy"' "$OUT"
	rm -f "$work/.env.local"

	run "DATABASE_URL=postgresql://hyperpage:$password@127.0.0.1:1/hyperpage" DB_CONNECTION_TIMEOUT=2000 -- check
	expect_rc "check, closed port" 1
	expect_line "check, closed port: unhealthy" '"status":"unhealthy"' "$OUT"
	expect_line "check, closed port: an error" '"error":"[^"]+' "$OUT"
	expect_less "check, closed port: within DB_CONNECTION_TIMEOUT (ms)" 4000 "$MS"

	# A server that accepts connections but never answers: the postmaster
	# stopped with SIGSTOP (the kernel still completes TCP handshakes).
	# Only the deadline can end this check.
	pid=$(head -n 1 "$pgdata/postmaster.pid" 2>/dev/null)
	if [ -n "$pid" ] && kill -STOP "$pid" 2>/dev/null; then
		stopped_pid=$pid
		run "DATABASE_URL=$url" DB_CONNECTION_TIMEOUT=2000 -- check
		kill -CONT "$pid"
		stopped_pid=""
		expect_rc "check, server not answering" 1
		expect_line "check, server not answering: unhealthy" '"status":"unhealthy"' "$OUT"
		expect_less "check, server not answering: within DB_CONNECTION_TIMEOUT (ms)" 4000 "$MS"
	else
		echo "skip check against a frozen server: cannot signal the postmaster"
	fi
fi

# ---- no password anywhere ---------------------------------------------------

all=$(cat "$tmp/all")
for i in "${!secrets[@]}"; do
	[ -n "${secrets[$i]}" ] &&
		expect_absent "no output of any run contains secret #$((i + 1))" "${secrets[$i]}" "$all"
done

echo "$checks checks, $fails failed"
[ "$fails" -eq 0 ]
