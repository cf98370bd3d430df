#!/usr/bin/env bash
# fault_terminate.sh — every connection of the service's pool terminated by
# the server (pg_terminate_backend), again and again, under a steady load of
# health checks: the database never stops answering, so no health check may
# fail. A probe whose connection dies under it must be run again on another.
# (The library's side, pqpool_query/pqpool_run with retry, is
# test_fault_terminate.c.)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/faults_lib.sh"

app=pqpool-fault-svc
rate=100
rounds=30
serve_start "DATABASE_URL=$url?application_name=$app" DB_CONNECTION_TIMEOUT=2000 \
	DB_POOL_MIN=3 DB_POOL_MAX=10 || { serve_finish; exit 1; }

req /api/health/database
expect_eq "before: healthy" 200 "$CODE"

load_start /api/health/database $rate 4 30000 5000
sleep 1
killed=0
t_first=$(now_ms)
for _ in $(seq 1 $rounds); do
	n=$(admin_sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '$app'")
	case "$n" in '' | *[!0-9]*) n=0 ;; esac
	killed=$((killed + n))
	sleep 0.2
done
t_last=$(now_ms)
sleep 1
load_stop
load_stats "$t_first"
fault_summary "terminate-health" "sent=$SENT ok=$OK failed=$FAILED outage_ms=0" \
	"recovery_ms=0 terminated=$killed rounds=$rounds over_ms=$((t_last - t_first))"

expect_less "the load ran (requests)" "$SENT" 100
expect_less "backends were terminated again and again (count)" "$killed" $rounds
expect_eq "no health check failed while its connections were killed" 0 "$FAILED"
if [ "$FAILED" != 0 ]; then
	echo "       statuses: $(awk '$3 != 200 { print $3 }' "$LFILE" | sort | uniq -c | tr '\n' ' ')"
	grep -m 3 'status=503' "$SLOG" | sed 's/^/       /'
fi
expect_less "no request slower than 2 s (ms)" 2000 "$LONGEST"
if pool_settled 3000; then
	pass "no lease and no waiter left once the load stopped"
else
	fail "no lease and no waiter left once the load stopped" "last: $POOL_JSON"
fi
req /api/metrics/pool
expect_jq "the pool saw its connections break and replaced them" \
	'.pool.counters.closed.broken >= 1 and .pool.counters.opened > 3' "$BODY"
serve_alive
expect_eq "the service still runs" 0 "$?"
serve_stop
serve_finish
