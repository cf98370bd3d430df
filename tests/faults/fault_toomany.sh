#!/usr/bin/env bash
# fault_toomany.sh — the server allows fewer connections than the pool
# wants (max_connections=6, 3 of them reserved for superusers; the pool's
# minimum is 5 and its maximum 10), under a load of health checks that needs
# more connections than it may have. Every refused connection costs the
# server a process start: callers must back off instead of storming it.
# The attempts are counted where they land, in the server's log
# (log_connections), over a fixed window, and must stay bounded.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/faults_lib.sh"

fault_pg_settings max_connections=6 superuser_reserved_connections=3 log_connections=on
expect_eq "the server allows 6 connections" 6 "$(admin_sql 'SHOW max_connections')"
serverlog="$pgdata/server.log"
attempts() { grep -c 'connection received: host=127\.0\.0\.1' "$serverlog" 2>/dev/null; }

# Each check holds its connection 50 ms and checks are not shared: 100/s
# need about 5 connections at once, and the server gives 3.
serve_start DB_CONNECTION_TIMEOUT=1000 DB_POOL_MIN=5 DB_POOL_MAX=10 DB_HEALTH_SHARE=false \
	"DB_HEALTH_QUERY=SELECT pg_sleep(0.05)" || { serve_finish; exit 1; }
sleep 1.5 # the pool opens what it may; the upkeep tries for the rest
req /api/metrics/database
expect_jq "the pool holds the 3 connections the server allows" '.metrics.totalConnections == 3' "$BODY"

window_ms=8000
rate=100
load_start /api/health/database $rate 8 $window_ms 5000
sleep 1 # steady state
a0=$(attempts)
t0=$(now_ms)
req /api/metrics/pool
f0=$(jq '.pool.counters.connectFailures' <<<"$BODY")
load_wait
a1=$(attempts)
t1=$(now_ms)
req /api/metrics/pool
f1=$(jq '.pool.counters.connectFailures' <<<"$BODY")
load_stats
n=$((a1 - a0))
span=$((t1 - t0))
per_s=$((n * 1000 / (span > 0 ? span : 1)))
fault_summary "too-many-connections" "sent=$SENT ok=$OK failed=$FAILED outage_ms=0 recovery_ms=0" \
	"connect_attempts=$n over_ms=$span attempts_per_s=$per_s pool_connect_failures=$((f1 - f0))"

expect_less "the load ran (requests)" "$SENT" $((rate * window_ms / 1000 / 4))
expect_eq "every failure was an HTTP 503 (the service answered)" 0 "$(load_count '$3 != 200 && $3 != 503')"
expect_less "no request slower than DB_CONNECTION_TIMEOUT + 1 s (ms)" 2000 "$LONGEST"
# the pool's upkeep asks once a second for what it lacks (2 connections):
# a few attempts a second is backing off; one per failed request is not
expect_less "connection attempts the server saw per second" 10 "$per_s"
expect_less "the pool tried no more than the server saw" $((n + 3)) "$((f1 - f0))"
expect_match "the log names the refusal" 'too many clients|connection slots are reserved' "$(cat "$SLOG")"

if pool_settled 3000; then
	pass "no lease and no waiter left once the load stopped"
else
	fail "no lease and no waiter left once the load stopped" "last: $POOL_JSON"
fi
serve_alive
expect_eq "the service still runs" 0 "$?"
serve_stop
serve_finish
