#!/usr/bin/env bash
# test_serve_routes.sh — `pqpool serve` over real HTTP against the fixture's
# database: settings and startup, every route's status, headers and JSON,
# /metrics through promtool, 404/405/HEAD, keep-alive, access logs (text and
# JSON), and no password anywhere.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/serve_lib.sh"

# ---- options and settings --------------------------------------------------

run -- serve --help
expect_eq "serve --help: exit status" 0 "$RC"
expect_match "serve --help: usage" '^usage: pqpool serve \[options\]' "$OUT"
for v in HOST PORT HTTP_THREADS HTTP_DB_THREADS HTTP_MAX_CONNECTIONS HTTP_IDLE_TIMEOUT HTTP_MAX_HEADER_BYTES \
	SHUTDOWN_TIMEOUT LOG_LEVEL LOG_FORMAT; do
	expect_match "serve --help lists $v" "^  (.*, )?$v=" "$OUT"
done
run -- --help
expect_match "pqpool --help lists serve" '^  serve ' "$OUT"
run -- serve extra
expect_eq "serve with an argument: exit status" 2 "$RC"
run -- serve --bogus
expect_eq "serve with an unknown option: exit status" 2 "$RC"

for bad in PORT=x PORT=65536 PORT=-1 HTTP_THREADS=0 HTTP_THREADS=257 HTTP_DB_THREADS=257 \
	HTTP_MAX_CONNECTIONS=0 HTTP_IDLE_TIMEOUT=1s HTTP_MAX_HEADER_BYTES=100 \
	SHUTDOWN_TIMEOUT=abc HOST=no-such-host.invalid; do
	name=${bad%%=*}
	run "$bad" "DATABASE_URL=$url" -- serve
	expect_eq "serve with $bad: exit status" 2 "$RC"
	expect_match "serve with $bad: one line naming $name" "^pqpool: $name=\"" "$ERR"
	expect_eq "serve with $bad: nothing else" 1 "$(wc -l <<<"$ERR")"
	run "$bad" -- config
	expect_eq "config with $bad: exit status" 2 "$RC"
done
run PORT=70000 -- config
expect_match "the message says what is expected" \
	'^pqpool: PORT="70000": expected an integer from 0 to 65535$' "$ERR"

run -- config
ncpu=$(nproc); [ "$ncpu" -lt 2 ] && ncpu=2
for nv in HOST=127.0.0.1 PORT=3000 HTTP_THREADS=$ncpu HTTP_DB_THREADS=1 HTTP_MAX_CONNECTIONS=1024 \
	HTTP_IDLE_TIMEOUT=30 HTTP_MAX_HEADER_BYTES=16384 SHUTDOWN_TIMEOUT=10000; do
	expect_match "config shows the default $nv" "^$nv +# default" "$OUT"
done
run DB_POOL_MAX=8 -- config
expect_match "HTTP_THREADS does not follow DB_POOL_MAX" "^HTTP_THREADS=$ncpu " "$OUT"
expect_match "HTTP_DB_THREADS does not follow DB_POOL_MAX" '^HTTP_DB_THREADS=1 ' "$OUT"
printf 'HTTP_THREADS=3\nPORT=0\n' >"$work/.env.local"
run -- config
expect_match "HTTP_THREADS from .env.local" '^HTTP_THREADS=3 +# \.env\.local' "$OUT"
expect_match "PORT=0 is any free port" '^PORT=0 +# \.env\.local \(any free port\)' "$OUT"
printf 'PORT=http\n' >"$work/.env.local"
run -- config
expect_match "a bad PORT in .env.local names the file" 'PORT="http".*\(set in \.env\.local\)' "$ERR"
rm -f "$work/.env.local"

# ---- startup failures ------------------------------------------------------

run "DATABASE_URL=postgresql://hyperpage:$password@127.0.0.1:1/hyperpage" DB_FAIL_FAST=true \
	DB_CONNECTION_TIMEOUT=2000 PORT=0 -- serve
expect_eq "DB_FAIL_FAST=true, database down: exit status" 1 "$RC"
expect_match "DB_FAIL_FAST=true: says why" 'ERROR .*(connect|refused)' "$ERR"

# ---- the routes ------------------------------------------------------------

serve_start DB_POOL_MAX=10 DB_POOL_MIN=2 || { serve_finish; exit 1; }
log=$(cat "$SLOG")
expect_match "startup line: masked URL and listen address" \
	"INFO  pqpool [0-9.]+ serving postgresql://hyperpage:\\*\\*\\*\\*@127\\.0\\.0\\.1:[0-9]+/hyperpage; listening on http://127\\.0\\.0\\.1:$PORT " "$log"
expect_match "startup line: the threads" " threads=$ncpu db_threads=1 max_connections=1024 " "$log"

# a second service on the same port cannot start
first_port=$PORT
run "DATABASE_URL=$url" "PORT=$first_port" -- serve
expect_eq "port in use: exit status" 1 "$RC"
expect_match "port in use: says so" "http://127\\.0\\.0\\.1:$first_port: cannot listen: Address already in use" "$ERR"

# common to every JSON answer
json_headers() {
	expect_eq "$1: Content-Type" "application/json" "$CTYPE"
	expect_eq "$1: Cache-Control" "no-store" "$(header Cache-Control)"
	expect_eq "$1: X-Content-Type-Options" "nosniff" "$(header X-Content-Type-Options)"
	expect_no_match "$1: keeps the connection" '^[Cc]onnection: close' "$HDRS"
}

req /api/health/database
expect_eq "health: status" 200 "$CODE"
json_headers health
expect_jq "health: the JSON of DESIGN §2" \
	'.status == "healthy" and (.data | keys) == ["connectionCount","lastCheck","responseTime"]' "$BODY"
expect_jq "health: value types, responseTime > 0" \
	'(.data.responseTime | type) == "number" and .data.responseTime > 0 and (.data.connectionCount | type) == "number" and .data.connectionCount >= 1 and (.data.lastCheck | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z$"))' \
	"$BODY"

req /api/metrics/database
expect_eq "metrics: status" 200 "$CODE"
json_headers metrics
expect_jq "metrics: the JSON of DESIGN §2" \
	'(.metrics | has("totalConnections") and has("activeConnections") and has("idleConnections") and has("waitingConnections") and has("poolUtilization") and has("averageResponseTime") and has("errorRate") and has("lastActivity")) and (.status | has("healthy") and has("utilization") and has("recommendations")) and (.timestamp | type) == "string"' \
	"$BODY"
expect_jq "metrics: value types" \
	'([.metrics.totalConnections, .metrics.activeConnections, .metrics.idleConnections, .metrics.waitingConnections, .metrics.poolUtilization, .metrics.averageResponseTime, .metrics.errorRate] | all(type == "number")) and (.status.healthy | type) == "boolean" and (.status.recommendations | type) == "array"' \
	"$BODY"
expect_jq "metrics: total == active + idle" \
	'.metrics.totalConnections == .metrics.activeConnections + .metrics.idleConnections' "$BODY"
expect_jq "metrics: poolUtilization == active / max * 100 (DB_POOL_MAX=10)" \
	'(.metrics.poolUtilization - .metrics.activeConnections / 10 * 100) | fabs < 0.001' "$BODY"
expect_jq "metrics: the pool is warm and live (the health probe was counted)" \
	'.metrics.totalConnections >= 2 and .metrics.averageResponseTime > 0 and .metrics.errorRate == 0 and .status.healthy == true and .status.utilization == "low"' \
	"$BODY"
ts1=$(jq -r .timestamp <<<"$BODY")
sleep 0.01
req /api/metrics/database
expect_ne "metrics: a fresh snapshot per call" "$ts1" "$(jq -r .timestamp <<<"$BODY")"

req /livez
expect_eq "livez: status" 200 "$CODE"
json_headers livez
expect_eq "livez: body" '{"status":"ok"}' "$BODY"
req /readyz
expect_eq "readyz: status" 200 "$CODE"
json_headers readyz
expect_eq "readyz: body" '{"status":"ready"}' "$BODY"

req /metrics
expect_eq "/metrics: status" 200 "$CODE"
expect_eq "/metrics: Content-Type" "text/plain; version=0.0.4; charset=utf-8" "$CTYPE"
expect_eq "/metrics: Cache-Control" "no-store" "$(header Cache-Control)"
expect_match "/metrics: the pool's connections" '^db_client_connections_usage\{state="idle"\} [0-9]+$' "$BODY"
expect_match "/metrics: the pool's wait histogram" '^db_client_connection_wait_time_seconds_bucket\{le="\+Inf"\} [0-9]+$' "$BODY"
expect_match "/metrics: requests by route and code" '^pqpool_http_requests_total\{route="/livez",code="200"\} 1$' "$BODY"
expect_match "/metrics: request durations" '^pqpool_http_request_duration_seconds_count\{route="/api/metrics/database"\} 2$' "$BODY"
expect_match "/metrics: open connections" '^pqpool_http_connections [1-9][0-9]*$' "$BODY"
expect_match "/metrics: this request is in flight" '^pqpool_http_requests_in_flight 1$' "$BODY"
expect_match "/metrics: start time" '^process_start_time_seconds [0-9]+\.[0-9]+$' "$BODY"
if command -v promtool >/dev/null 2>&1; then
	lint=$(promtool check metrics <<<"$BODY" 2>&1)
	expect_eq "/metrics: promtool check metrics exit status" 0 "$?"
	expect_eq "/metrics: promtool has nothing to say" "" "$lint"
	# the linter can fail, or the check proves nothing
	promtool check metrics <<<'x_total{a="b} 1' >/dev/null 2>&1
	expect_ne "promtool rejects a broken exposition" 0 "$?"
else
	fail "promtool is installed (Debian package prometheus; scripts/deps.sh)"
fi

# ---- 404, 405, HEAD, query strings ----------------------------------------------

req /nope
expect_eq "404: status" 404 "$CODE"
json_headers 404
expect_eq "404: body" '{"error":"Not found","path":"/nope"}' "$BODY"
req '/a%22b%5Cc%0A%ff?q=secret-query'
expect_eq "404, odd path: status" 404 "$CODE"
expect_jq "404, odd path: escaped, valid JSON, no query string" '.path == "/a\"b\\c\n?"' "$BODY"
req "/$(head -c 3000 /dev/zero | tr '\0' x)"
expect_jq "404, long path: capped" '.path | length == 203 and endswith("...")' "$BODY"

for m in POST PUT DELETE PATCH OPTIONS; do
	req /livez -X "$m"
	expect_eq "$m /livez: status" 405 "$CODE"
	expect_eq "$m /livez: Allow" "GET, HEAD" "$(header Allow)"
	expect_eq "$m /livez: body" '{"error":"Method not allowed"}' "$BODY"
done
json_headers 405
req /api/health/database -X POST --data 'a=b'
expect_eq "POST with a body: status" 405 "$CODE"
expect_eq "POST with a body: Allow" "GET, HEAD" "$(header Allow)"
req /nope -X POST
expect_eq "POST to an unknown path: 404" 404 "$CODE"
req /livez -X POST -H 'Content-Type: application/octet-stream' --data-binary @<(head -c 200000 /dev/zero)
expect_eq "POST with a 200 KB body: status" 413 "$CODE"
expect_eq "POST with a 200 KB body: the connection closes" close "$(header Connection)"

for p in /api/health/database /api/metrics/database /metrics /livez /readyz /nope; do
	req "$p"
	get_code=$CODE
	req "$p" --head
	expect_eq "HEAD $p: the status of GET" "$get_code" "$CODE"
	expect_eq "HEAD $p: no body" 0 "$SIZE"
	expect_match "HEAD $p: Content-Length of the GET body" '^[Cc]ontent-[Ll]ength: [1-9][0-9]*$' "$HDRS"
	expect_match "HEAD $p: Content-Type" '^(application/json|text/plain; version=0\.0\.4; charset=utf-8)$' "$CTYPE"
done
# no stray bytes after the headers, seen on the wire
raw=$( (exec 3<>"/dev/tcp/127.0.0.1/$PORT" && printf 'HEAD /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' >&3 && timeout 5 cat <&3) | od -An -c | tr -d ' \n')
expect_match "HEAD on the wire: the answer ends with the headers" '\\r\\n\\r\\n$' "$raw"
expect_match "HEAD on the wire: Content-Length 15" 'Content-Length:15\\r' "$raw"
req '/livez?x=1&y'
expect_eq "query string ignored: /livez?x=1 status" 200 "$CODE"
expect_eq "query string ignored: /livez?x=1 body" '{"status":"ok"}' "$BODY"
req '/api/health/database?verbose=true'
expect_eq "query string ignored: health" 200 "$CODE"

# ---- keep-alive --------------------------------------------------------------------

trace=$(curl -sv --max-time 10 "$BASE/livez" "$BASE/api/health/database" "$BASE/metrics" -o /dev/null -o /dev/null -o /dev/null 2>&1)
echo "$trace" >>"$tmp/all"
expect_eq "keep-alive: one TCP connection for three requests" 1 "$(grep -c '^\* Connected to' <<<"$trace")"
expect_eq "keep-alive: reused twice" 2 "$(grep -c 'Re-using existing connection' <<<"$trace")"
expect_no_match "keep-alive: no Connection: close" '^< [Cc]onnection: close' "$trace"

# ---- the access log ------------------------------------------------------------------

serve_stop
log=$(cat "$SLOG")
expect_match "access log: text line" \
	'^[0-9T:.-]+Z INFO  request method=GET path=/livez status=200 duration_ms=[0-9.]+$' "$log"
expect_match "access log: 405" ' request method=PUT path=/livez status=405 ' "$log"
expect_match "access log: escaped path, no query string" \
	' request method=GET path="/a\\"b\\\\c\\n\?" status=404 ' "$log"
expect_no_match "access log: no query string" 'secret-query' "$log"
expect_match "access log: HEAD" ' request method=HEAD path=/metrics status=200 ' "$log"
expect_eq "access log: one line per request" \
	"$(grep -c ' request method=' <<<"$log")" \
	"$(grep -c ' request method=.* status=[0-9]' <<<"$log")"
expect_match "shutdown: signal line" 'INFO  received SIGTERM: no new connections, draining' "$log"
expect_match "shutdown: drain line" 'INFO  drained [0-9]+ request\(s\) in [0-9]+ ms' "$log"
expect_match "shutdown: pool closed" 'INFO  pool closed; exiting' "$log"
expect_no_match "no warnings or errors in a normal run" ' (WARN|ERROR) ' "$log"

# ---- LOG_FORMAT=json ----------------------------------------------------------------------

serve_start LOG_FORMAT=json || { serve_finish; exit 1; }
req /livez
req /nope
req /livez -X DELETE
serve_stop
log=$(cat "$SLOG")
n_lines=$(grep -c '' <<<"$log")
n_objects=$(jq -c 'select(type == "object" and (.ts | type) == "string" and (.level | type) == "string" and (.msg | type) == "string")' <<<"$log" 2>/dev/null | grep -c '')
expect_eq "JSON logs: every line one JSON object with ts, level, msg" "$n_lines" "$n_objects"
expect_jq "JSON logs: startup line fields" \
	'select(.listen != null) | (.listen | startswith("http://127.0.0.1:")) and (.database | contains(":****@")) and .threads == '"$ncpu"' and .db_threads == 1' \
	"$(grep '"listen"' <<<"$log")"
expect_jq "JSON logs: access line" \
	'select(.msg == "request" and .path == "/livez" and .method == "GET") | .status == 200 and (.duration_ms | type) == "number"' \
	"$(grep '"msg":"request"' <<<"$log" | head -n 1)"
expect_eq "JSON logs: three access lines" 3 "$(jq -c 'select(.msg == "request")' <<<"$log" | grep -c '')"

# ---- LOG_LEVEL=warn: no access log ---------------------------------------------------------

serve_start LOG_LEVEL=warn || { serve_finish; exit 1; }
req /livez
serve_stop
expect_eq "LOG_LEVEL=warn: nothing logged in a normal run" "" "$(cat "$SLOG")"

# ---- probes on the event threads --------------------------------------------------------

serve_start HTTP_DB_THREADS=0 HTTP_THREADS=2 || { serve_finish; exit 1; }
expect_match "HTTP_DB_THREADS=0: no database threads" ' threads=2 db_threads=0 ' "$(cat "$SLOG")"
req /api/health/database
expect_eq "HTTP_DB_THREADS=0: health 200" 200 "$CODE"
expect_jq "HTTP_DB_THREADS=0: healthy" '.status == "healthy"' "$BODY"
req /readyz
expect_eq "HTTP_DB_THREADS=0: readyz 200" 200 "$CODE"
serve_stop

# ---- other addresses -----------------------------------------------------------------------

serve_start HOST=localhost || { serve_finish; exit 1; }
expect_match "HOST=localhost: a loopback address" 'listening on http://(127\.0\.0\.1|\[::1\]):' "$(cat "$SLOG")"
serve_stop
if grep -q '00000000000000000000000000000001' /proc/net/if_inet6 2>/dev/null; then
	serve_start HOST=::1 || { serve_finish; exit 1; }
	expect_match "HOST=::1: listens on IPv6" "listening on http://\\[::1\\]:$PORT " "$(cat "$SLOG")"
	code=$(curl -s -g --max-time 10 -o /dev/null -w '%{http_code}' "http://[::1]:$PORT/livez")
	expect_eq "HOST=::1: answers on ::1" 200 "$code"
	code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/livez")
	expect_eq "HOST=::1: not on 127.0.0.1" 000 "$code"
	serve_stop
else
	echo "skip IPv6: no ::1 on this machine"
fi

serve_finish
