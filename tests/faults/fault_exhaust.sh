#!/usr/bin/env bash
# fault_exhaust.sh — the pool exhausted by slow queries: two connections,
# each health check holding one for 300 ms, and far more checks than they
# can serve. Checks that cannot get a connection in time end as clean 503s
# that say they timed out, none later than the deadline allows, and /livez
# keeps answering at once throughout. (The library's side, acquire and
# pqpool_query timing out with PQPOOL_ETIMEDOUT, is test_fault_exhaust.c.)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/faults_lib.sh"

timeout_ms=1000
serve_start DB_CONNECTION_TIMEOUT=$timeout_ms DB_POOL_MIN=2 DB_POOL_MAX=2 DB_HEALTH_SHARE=false \
	"DB_HEALTH_QUERY=SELECT pg_sleep(0.3)" HTTP_DB_THREADS=4 || { serve_finish; exit 1; }

req /api/health/database
expect_eq "before: one check alone is fine (slow, so degraded, but 200)" 200 "$CODE"

duration=6000
# /livez alongside, on its own connections, with a short request timeout
"$loadgen" -p "$PORT" -P /livez -r 100 -c 2 -d $duration -t 1000 -o "$tmp/livez" \
	>"$tmp/livez.summary" 2>&1 &
lz=$!
load_start /api/health/database 40 32 $duration 5000
sleep 2
# a few answers in full while it is exhausted, for their bodies
for _ in $(seq 1 10); do
	req /api/health/database
	[ "$CODE" = 503 ] && break
done
exhausted_body=$BODY
exhausted_code=$CODE
load_wait
wait "$lz"
load_stats
read -r lsent lok llong < <(awk '{ n++; if ($3 == 200) ok++; d = $2 - $1; if (d > m) m = d }
	END { print n + 0, ok + 0, m + 0 }' "$tmp/livez")
fault_summary "pool-exhausted" "sent=$SENT ok=$OK failed=$FAILED outage_ms=0 recovery_ms=0" \
	"longest_ms=$LONGEST livez_sent=$lsent livez_ok=$lok livez_longest_ms=$llong"

expect_less "the load ran (requests)" "$SENT" 60
expect_less "the pool was exhausted: some checks failed" "$FAILED" 1
expect_eq "every failure was an HTTP 503 (no dropped or hung request)" 0 \
	"$(load_count '$3 != 200 && $3 != 503')"
# waiting in line, for a connection and for the query share one bound,
# counted from the request's arrival
expect_less "no check outlived DB_CONNECTION_TIMEOUT + 0.25 s (ms)" $((timeout_ms + 250)) "$LONGEST"
expect_eq "exhausted: health 503" 503 "$exhausted_code"
expect_jq "exhausted: the error says it timed out waiting" \
	'.status == "unhealthy" and (.data.error | test("timed out"))' "$exhausted_body"
expect_less "/livez: requests sent" "$lsent" 300
expect_eq "/livez: every request answered 200" "$lsent" "$lok"
expect_less "/livez: the slowest answer (ms)" 250 "$llong"

if pool_settled 3000; then
	pass "no lease and no waiter left once the load stopped"
else
	fail "no lease and no waiter left once the load stopped" "last: $POOL_JSON"
fi
req /api/health/database
expect_eq "afterwards: a check alone is fine again" 200 "$CODE"
serve_alive
expect_eq "the service still runs" 0 "$?"
serve_stop
serve_finish
