#!/usr/bin/env bash
# fault_startdown.sh — the database is down when `pqpool serve` starts: it
# starts anyway, answers 503 on /api/health/database and 200 on /livez, and
# once the database accepts connections it becomes healthy by itself, under
# a steady load of health checks; afterwards the pool holds its minimum.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/faults_lib.sh"

timeout_ms=1000
pool_min=3
pg_stop
expect_eq "the cluster is stopped" 1 "$cluster_stopped"
pg_accepting && fail "nothing accepts on the cluster's port"

serve_start DB_CONNECTION_TIMEOUT=$timeout_ms DB_POOL_MIN=$pool_min DB_POOL_MAX=10 ||
	{ serve_finish; exit 1; }
pid0=$SPID
expect_match "it says it opened without connections" 'pool open without connections' "$(cat "$SLOG")"

req /livez
expect_eq "down: /livez 200" 200 "$CODE"
expect_less "down: /livez at once (ms)" 1000 "$TIME_MS"
req /api/health/database
expect_eq "down: health 503" 503 "$CODE"
expect_jq "down: unhealthy, with the connect error" \
	'.status == "unhealthy" and (.data.error | test("connect")) and .data.connectionCount == 0' "$BODY"
expect_less "down: answered within DB_CONNECTION_TIMEOUT + 1 s (ms)" $((timeout_ms + 1000)) "$TIME_MS"
req /readyz
expect_eq "down: /readyz 503" 503 "$CODE"

load_start /api/health/database 100 4 30000 5000
sleep 2
t_start=$(now_ms)
pg_start &
starter=$!
pg_wait_accepting "" 60000
wait "$starter"
expect_eq "the cluster started" 0 "$?"
cluster_stopped=0
sleep 3
load_stop
if [ -z "$ACCEPT_MS" ]; then
	fail "the server accepts within 60 s"
	serve_finish
	exit 1
fi
load_stats "$ACCEPT_MS"
recovery=""
[ -n "$FIRST_OK_AFTER" ] && recovery=$((FIRST_OK_AFTER - ACCEPT_MS))
fault_summary "start-db-down" "sent=$SENT ok=$OK failed=$FAILED" \
	"outage_ms=$((ACCEPT_MS - LOAD_T0)) recovery_ms=${recovery:-none} pg_start_ms=$((ACCEPT_MS - t_start))"

expect_less "the load ran (requests)" "$SENT" 200
expect_eq "every failure was an HTTP 503 (the service answered)" 0 "$(load_count '$3 != 200 && $3 != 503')"
expect_eq "no failure ending later than 1 s after the server accepts" 0 \
	"$(load_count "\$3 != 200 && \$2 > $((ACCEPT_MS + 1000))")"
if [ -n "$recovery" ]; then
	expect_less "first 200 within 1 s of the server accepting (ms)" 1000 "$recovery"
else
	fail "a 200 once the server accepts"
fi
expect_less "no request slower than DB_CONNECTION_TIMEOUT + 1 s (ms)" $((timeout_ms + 1000)) "$LONGEST"

if pool_settled 3000; then
	pass "no lease and no waiter left once the load stopped"
else
	fail "no lease and no waiter left once the load stopped" "last: $POOL_JSON"
fi
sleep 1.2 # one upkeep round
req /api/metrics/database
expect_jq "the upkeep refilled the minimum ($pool_min)" ".metrics.totalConnections >= $pool_min" "$BODY"
req /readyz
expect_eq "up: /readyz 200" 200 "$CODE"
expect_eq "up: the same process" "$pid0" "$SPID"
expect_match "up: the upkeep says the database answers again" 'pool upkeep: the database answers again' \
	"$(cat "$SLOG")"
serve_stop
serve_finish
