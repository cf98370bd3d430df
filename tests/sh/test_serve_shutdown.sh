#!/usr/bin/env bash
# test_serve_shutdown.sh — SIGTERM and SIGINT: a slow request in flight
# completes, new connections are refused at once, the pool closes and the
# process exits 0 within SHUTDOWN_TIMEOUT; a drain that times out still
# exits; a second signal exits at once with status 1.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/serve_lib.sh"

slow=(DB_HEALTH_QUERY='SELECT pg_sleep(2)' DB_HEALTH_SLOW=10000 DB_POOL_MIN=1)

# slow_request: a health request in the background; its status and time
# land in $tmp/slow.out. Waits until the service counts it in flight.
slow_request() {
	(curl -s --max-time 30 -o "$tmp/slow.body" -w '%{http_code} %{time_total}' \
		"$BASE/api/health/database" >"$tmp/slow.out" 2>/dev/null) &
	slow_pid=$!
	local deadline=$(($(now_ms) + 5000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		# this request is in flight too: 2 means the slow one has begun
		req /metrics
		grep -q '^pqpool_http_requests_in_flight 2$' <<<"$BODY" && return 0
		sleep 0.05
	done
	fail "the slow request is in flight" "$(grep in_flight <<<"$BODY")"
}

# ---- SIGTERM during a slow request ----------------------------------------------

serve_start "${slow[@]}" SHUTDOWN_TIMEOUT=10000 || { serve_finish; exit 1; }
port=$PORT
slow_request
serve_signal TERM
sleep 0.3
# the listening socket is shut: a newcomer is refused, not left hanging
t0=$(now_ms)
code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/livez")
rc=$?
expect_eq "draining: a new connection gets no answer" 000 "$code"
expect_eq "draining: refused (curl exit 7), not timed out" 7 "$rc"
expect_less "draining: refused at once (ms)" 1000 $(($(now_ms) - t0))
wait "$slow_pid"
read -r code secs <"$tmp/slow.out"
cat "$tmp/slow.body" >>"$tmp/all"
expect_eq "the slow request completes with 200" 200 "$code"
expect_jq "the slow request: its health JSON" '.status == "healthy" and .data.responseTime >= 1900' \
	"$(cat "$tmp/slow.body")"
serve_wait 15000
expect_eq "SIGTERM: exit status" 0 "$RC"
expect_less "SIGTERM: exit within SHUTDOWN_TIMEOUT (ms)" 10000 "$EXIT_MS"
expect_less "SIGTERM: it waited for the request (ms)" "$EXIT_MS" 1000
log=$(cat "$SLOG")
expect_match "SIGTERM: logged, with the request in flight" \
	'INFO  received SIGTERM: no new connections, draining 1 request\(s\) in flight \(SHUTDOWN_TIMEOUT=10000 ms\)' "$log"
expect_match "SIGTERM: the slow request logged" ' request method=GET path=/api/health/database status=200 ' "$log"
expect_match "SIGTERM: drained" 'INFO  drained 1 request\(s\) in [0-9]+ ms' "$log"
expect_match "SIGTERM: pool closed" 'INFO  pool closed; exiting$' "$log"
# order: the request's access line before the drain line
expect_match "SIGTERM: the access line comes before 'drained'" 'path=/api/health/database status=200' \
	"$(sed -n '/received SIGTERM/,/drained/p' <<<"$log")"

# ---- SIGINT, nothing in flight ------------------------------------------------------

serve_start || { serve_finish; exit 1; }
req /livez
serve_signal INT
serve_wait 10000
expect_eq "SIGINT: exit status" 0 "$RC"
expect_less "SIGINT, nothing in flight: exit at once (ms)" 1500 "$EXIT_MS"
expect_match "SIGINT: logged" 'received SIGINT: no new connections, draining 0 request' "$(cat "$SLOG")"

# ---- keep-alive clients are told to go during the drain --------------------------------

serve_start "${slow[@]}" SHUTDOWN_TIMEOUT=10000 || { serve_finish; exit 1; }
# a keep-alive connection, open before the signal
exec 5<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET /livez HTTP/1.1\r\nHost: t\r\n\r\n' >&5
first=""
while IFS= read -r -t 5 line <&5; do
	first+="$line"$'\n'
	[ "$line" = $'\r' ] && break
done
IFS= read -r -t 5 -N 15 body <&5
expect_match "keep-alive: the first answer" '^HTTP/1\.1 200 ' "$first"
expect_eq "keep-alive: its body" '{"status":"ok"}' "$body"
slow_request
serve_signal TERM
sleep 0.3
# the same connection, during the drain: answered, then closed
printf 'GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n' >&5
second=$(timeout 5 cat <&5 | tr -d '\r')
exec 5<&-
echo "$second" >>"$tmp/all"
expect_match "draining, keep-alive: answered 503" '^HTTP/1\.1 503 ' "$second"
expect_match "draining, keep-alive: Connection: close" '^Connection: close$' "$second"
expect_match "draining, keep-alive: /readyz says shutting down" \
	'^\{"status":"not ready","error":"shutting down"\}$' "$second"
wait "$slow_pid"
serve_wait 15000
expect_eq "drain with keep-alive: exit status" 0 "$RC"

# ---- a drain that times out ---------------------------------------------------------

serve_start DB_HEALTH_QUERY='SELECT pg_sleep(3)' DB_HEALTH_SLOW=10000 DB_POOL_MIN=1 \
	DB_CONNECTION_TIMEOUT=5000 SHUTDOWN_TIMEOUT=500 || { serve_finish; exit 1; }
slow_request
serve_signal TERM
serve_wait 15000
wait "$slow_pid"
expect_eq "drain timeout: exit status" 0 "$RC"
# the request still in the probe holds its thread until the probe ends (3 s),
# within DB_CONNECTION_TIMEOUT: the documented bound
expect_less "drain timeout: exit within SHUTDOWN_TIMEOUT + DB_CONNECTION_TIMEOUT (ms)" 5500 "$EXIT_MS"
expect_match "drain timeout: logged" \
	'WARN  drain timeout: 1 request\(s\) still in flight after [0-9]+ ms; stopping anyway' "$(cat "$SLOG")"

# ---- a second signal --------------------------------------------------------------------

serve_start "${slow[@]}" SHUTDOWN_TIMEOUT=10000 || { serve_finish; exit 1; }
slow_request
serve_signal TERM
sleep 0.3
kill -INT "$SPID"
serve_wait 10000
wait "$slow_pid"
expect_eq "second signal: exit status 1" 1 "$RC"
expect_less "second signal: at once, without waiting for the request (ms)" 1500 "$EXIT_MS"
expect_match "second signal: logged" 'WARN  second signal during the drain: exiting now, 1 request\(s\) cut off' \
	"$(cat "$SLOG")"

serve_finish
