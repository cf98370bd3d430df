#!/usr/bin/env bash
# test_serve_outage.sh — the database stops while `pqpool serve` runs: health
# answers 503 with an error within DB_CONNECTION_TIMEOUT, /livez stays 200,
# /readyz says 503; the database starts again: 200 within seconds, same process.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/serve_lib.sh"

timeout_ms=2000
serve_start DB_CONNECTION_TIMEOUT=$timeout_ms DB_POOL_MIN=2 || { serve_finish; exit 1; }
pid0=$SPID

req /api/health/database
expect_eq "before: healthy" 200 "$CODE"
req /readyz
expect_eq "before: ready" 200 "$CODE"

pg_stop
expect_eq "the cluster stopped" 1 "$cluster_stopped"

# The first probe may meet a connection the server just closed, later ones
# a refused connect: both must be 503 with an error, in time.
for i in 1 2 3; do
	req /api/health/database
	expect_eq "down, probe $i: 503" 503 "$CODE"
	expect_jq "down, probe $i: unhealthy with an error text" \
		'.status == "unhealthy" and (.data.error | type) == "string" and (.data.error | length) > 0 and .data.responseTime > 0' \
		"$BODY"
	expect_less "down, probe $i: within DB_CONNECTION_TIMEOUT + 1 s (ms)" $((timeout_ms + 1000)) "$TIME_MS"
	expect_eq "down, probe $i: still JSON" "application/json" "$CTYPE"
done
req /livez
expect_eq "down: /livez stays 200" 200 "$CODE"
expect_less "down: /livez answers at once (ms)" 1000 "$TIME_MS"
req /readyz
expect_eq "down: /readyz 503" 503 "$CODE"
expect_jq "down: /readyz says why" '.status == "not ready" and (.error | length) > 0' "$BODY"
req /api/metrics/database
expect_eq "down: metrics still answer" 200 "$CODE"
expect_jq "down: metrics count the failures" '.metrics.errorRate > 0' "$BODY"
req /metrics
expect_eq "down: /metrics still answers" 200 "$CODE"

# the upkeep loop tries to refill meanwhile, and says so once
sleep 1.5
expect_match "down: the upkeep failure is logged" 'WARN  pool upkeep: .*retrying every second' "$(cat "$SLOG")"
expect_eq "down: logged once, not every second" 1 "$(grep -c 'pool upkeep: .*retrying' "$SLOG")"

pg_start
expect_eq "the cluster started again" 0 "$cluster_stopped"
t0=$(now_ms)
back=""
while [ $(($(now_ms) - t0)) -lt 10000 ]; do
	req /api/health/database
	if [ "$CODE" = 200 ]; then
		back=$(($(now_ms) - t0))
		break
	fi
	sleep 0.2
done
if [ -n "$back" ]; then
	pass "up again: health 200 after $back ms"
	expect_less "up again: within 5 s (ms)" 5000 "$back"
else
	fail "up again: health 200 within 10 s" "last: $CODE $BODY"
fi
expect_jq "up again: healthy or degraded (recent errors)" '.status == "healthy" or .status == "degraded"' "$BODY"
req /readyz
expect_eq "up again: ready" 200 "$CODE"
expect_eq "up again: the same process" "$pid0" "$SPID"
serve_alive
expect_eq "up again: it never stopped" 0 "$?"
sleep 1.5
expect_match "up again: the upkeep says so" 'INFO  pool upkeep: the database answers again' "$(cat "$SLOG")"

serve_stop

# A database that accepts connections and never answers: only the deadline
# ends the probe. No connection is open yet (DB_POOL_MIN=0), so the probe
# must connect; /livez is answered meanwhile by another worker.
serve_start DB_CONNECTION_TIMEOUT=$timeout_ms DB_POOL_MIN=0 || { serve_finish; exit 1; }
if pg_freeze; then
	(curl -s --max-time 20 -o "$tmp/hung.body" -w '%{http_code} %{time_total}' \
		"$BASE/api/health/database" >"$tmp/hung.out" 2>/dev/null) &
	hung=$!
	sleep 0.3
	req /livez
	expect_eq "hanging database: /livez answers meanwhile" 200 "$CODE"
	expect_less "hanging database: /livez at once (ms)" 1000 "$TIME_MS"
	wait "$hung"
	read -r code secs <"$tmp/hung.out"
	ms=$(awk -v t="$secs" 'BEGIN { printf "%d", t * 1000 }')
	pg_thaw
	cat "$tmp/hung.body" >>"$tmp/all"
	expect_eq "hanging database: health 503" 503 "$code"
	expect_jq "hanging database: unhealthy with an error" \
		'.status == "unhealthy" and (.data.error | length) > 0' "$(cat "$tmp/hung.body")"
	expect_less "hanging database: answered by DB_CONNECTION_TIMEOUT + 1 s (ms)" \
		$((timeout_ms + 1000)) "$ms"
	expect_less "hanging database: it did wait for the deadline (ms)" "$ms" $((timeout_ms - 300))
	req /api/health/database
	expect_eq "thawed: healthy again" 200 "$CODE"
else
	echo "skip the hanging database: cannot signal the postmaster"
fi
serve_stop
serve_finish
