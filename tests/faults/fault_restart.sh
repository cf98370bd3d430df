#!/usr/bin/env bash
# fault_restart.sh — PostgreSQL restarted (pg_ctl restart -m fast, then -m
# immediate) under a steady load of health checks through `pqpool serve`:
# the service never exits, failures stay inside the outage (from the restart
# until the server accepts connections again, plus 1 s), the first 200 comes
# within 1 s of the server accepting, and once the load stops no lease or
# waiter is left and the pool is back to its minimum.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/faults_lib.sh"

timeout_ms=2000
pool_min=3
rate=100
serve_start DB_CONNECTION_TIMEOUT=$timeout_ms DB_POOL_MIN=$pool_min DB_POOL_MAX=10 ||
	{ serve_finish; exit 1; }
pid0=$SPID

req /api/health/database
expect_eq "before: healthy" 200 "$CODE"

for mode in fast immediate; do
	load_start /api/health/database $rate 4 30000 5000
	sleep 2 # a baseline of successes first
	old=$(postmaster_pid)
	t_fault=$(now_ms)
	"$cluster" ctl "$pgdata" restart -m $mode -w -t 60 >"$tmp/restart.log" 2>&1 &
	ctl=$!
	pg_wait_accepting "$old" 60000
	wait "$ctl"
	expect_eq "$mode: pg_ctl restart succeeded" 0 "$?"
	if [ -z "$ACCEPT_MS" ]; then
		fail "$mode: the server accepts again within 60 s"
		break
	fi
	sleep 3 # recovery, then a steady state to observe
	load_stop
	load_stats "$ACCEPT_MS"
	outage=$((ACCEPT_MS - t_fault))
	recovery=""
	[ -n "$FIRST_OK_AFTER" ] && recovery=$((FIRST_OK_AFTER - ACCEPT_MS))
	fault_summary "restart-$mode" "sent=$SENT ok=$OK failed=$FAILED outage_ms=$outage" \
		"recovery_ms=${recovery:-none}" \
		"fail_window_ms=$([ -n "$FIRST_FAIL" ] && echo $((LAST_FAIL - FIRST_FAIL)) || echo 0)"

	expect_ne "$mode: the load ran" 0 "$SENT"
	# more than half of a steady 100/s over ~5 s: the generator kept pace
	expect_less "$mode: the load kept its pace (requests)" "$SENT" $((rate * 5 / 2))
	expect_eq "$mode: no failure before the restart" 0 "$(load_count "\$3 != 200 && \$1 < $t_fault")"
	expect_eq "$mode: no failure ending later than 1 s after the server accepts" 0 \
		"$(load_count "\$3 != 200 && \$2 > $((ACCEPT_MS + 1000))")"
	expect_eq "$mode: every failure was an HTTP 503 (the service answered)" 0 \
		"$(load_count "\$3 != 200 && \$3 != 503")"
	if [ -n "$recovery" ]; then
		expect_less "$mode: first 200 within 1 s of the server accepting (ms)" 1000 "$recovery"
	else
		fail "$mode: a 200 after the server accepts again"
	fi
	expect_less "$mode: no request slower than DB_CONNECTION_TIMEOUT + 1 s (ms)" \
		$((timeout_ms + 1000)) "$LONGEST"
	serve_alive
	expect_eq "$mode: the service still runs" 0 "$?"
	expect_eq "$mode: the same process" "$pid0" "$SPID"

	# no leaked lease: nothing active or waiting once the load stopped, and
	# the upkeep (once a second) has refilled the minimum
	if pool_settled 3000; then
		pass "$mode: no lease and no waiter left once the load stopped"
	else
		fail "$mode: no lease and no waiter left once the load stopped" "last: $POOL_JSON"
	fi
	sleep 1.2
	req /api/metrics/database
	expect_jq "$mode: pool back to normal: $pool_min..10 open, all idle" \
		".metrics.totalConnections >= $pool_min and .metrics.totalConnections <= 10 and .metrics.idleConnections == .metrics.totalConnections" \
		"$BODY"
	req /api/health/database
	expect_eq "$mode: healthy (200) afterwards" 200 "$CODE"
done

req /api/metrics/pool
expect_eq "the pool's details answer" 200 "$CODE"
expect_jq "connections found broken were closed and replaced" \
	'.pool.counters.closed.broken >= 1' \
	"$BODY"
serve_stop
serve_finish
