#!/usr/bin/env bash
# test_serve_abuse.sh — clients that misbehave: malformed request lines,
# oversized headers and bodies, one byte per second, silent connections, too
# many connections. The service answers them with 4xx or hangs up, and keeps
# answering everyone else promptly.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/serve_lib.sh"

# raw <bytes (printf %b)>: sends them on a new connection and prints the
# first line of the answer ("" when it hangs up without one).
raw() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 0
		printf '%b' "$1" >&3
		timeout 5 head -n 1 <&3 | tr -d '\r'
	) 2>/dev/null
}

# still_fine <what>: the service still answers /livez promptly.
still_fine() {
	req /livez
	expect_eq "$1: /livez still 200" 200 "$CODE"
	expect_less "$1: /livez still prompt (ms)" 1000 "$TIME_MS"
}

# One event thread: a slow client must not stall it (epoll, not a blocked
# thread), and neither must a health probe (its own threads).
serve_start HTTP_THREADS=1 HTTP_IDLE_TIMEOUT=3 HTTP_MAX_CONNECTIONS=40 || { serve_finish; exit 1; }

# ---- malformed requests --------------------------------------------------------

declare -A bad=(
	[garbage]='GARBAGE\r\n\r\n'
	[no-target]='GET\r\n\r\n'
	[bad-version]='GET /livez HTTP/9.9\r\nHost: t\r\n\r\n'
	[binary]='\x00\x01\x02\xff / HTTP/1.1\r\nHost: t\r\n\r\n'
	[no-colon]='GET /livez HTTP/1.1\r\nHost t\r\n\r\n'
	[bad-length]='GET /livez HTTP/1.1\r\nHost: t\r\nContent-Length: nope\r\n\r\n'
	[space-in-target]='GET /li vez HTTP/1.1\r\nHost: t\r\n\r\n'
)
for name in "${!bad[@]}"; do
	first=$(raw "${bad[$name]}")
	echo "$first" >>"$tmp/all"
	# a 4xx/5xx status line, or a hang-up; never a 2xx for garbage, never a crash
	expect_match "malformed ($name): an error status or a hang-up" '^(HTTP/1\.1 [45][0-9][0-9] .*)?$' "$first"
	still_fine "malformed ($name)"
done
first=$(raw 'GET /livez HTTP/1.1\r\nHost: t\r\n\r\n')
expect_eq "a well-formed raw request works (the helper can pass)" "HTTP/1.1 200 OK" "$first"

# ---- oversized headers and bodies ------------------------------------------------

big=$(head -c 100000 /dev/zero | tr '\0' a)
req /livez -H "X-Big: $big"
expect_match "100 KB header: 4xx" '^4[0-9][0-9]$' "$CODE"
still_fine "100 KB header"
many=()
for i in $(seq 1 400); do many+=(-H "X-H$i: $(head -c 60 /dev/zero | tr '\0' b)"); done
req /livez "${many[@]}"
expect_match "400 headers of 60 bytes: 4xx" '^4[0-9][0-9]$' "$CODE"
still_fine "400 headers"
req "/$(head -c 100000 /dev/zero | tr '\0' x)"
expect_match "100 KB request target: 4xx" '^4[0-9][0-9]$' "$CODE"
still_fine "100 KB target"
req /livez -X POST --data-binary @<(head -c 1000000 /dev/zero) -H 'Content-Type: application/octet-stream'
expect_eq "1 MB body: 413" 413 "$CODE"
expect_eq "1 MB body: JSON" '{"error":"Payload too large"}' "$BODY"
req /livez -X POST --data-binary @<(head -c 1000000 /dev/zero) -H 'Transfer-Encoding: chunked'
expect_eq "1 MB chunked body: no answer, the connection is dropped" 000 "$CODE"
still_fine "1 MB chunked body"
# a body whose end cannot be found: answered at once, not waited for
req /livez -X POST --data-binary abc -H 'Transfer-Encoding: gzip'
expect_eq "unknown Transfer-Encoding: 400" 400 "$CODE"
still_fine "unknown Transfer-Encoding"

# ---- one byte per second -----------------------------------------------------------

slow_client() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 0
		local msg=$'GET /livez HTTP/1.1\r\nHost: t\r\n\r\n' i
		for ((i = 0; i < ${#msg}; i++)); do
			printf '%s' "${msg:i:1}" >&3 2>/dev/null || exit 0
			sleep 1
		done
	) >/dev/null 2>&1 &
	slow_pids+=($!)
}
slow_pids=()
for i in 1 2 3 4 5; do slow_client; done
sleep 1.5
times=()
for i in $(seq 1 20); do
	req /livez
	[ "$CODE" = 200 ] || fail "during slow clients: request $i answered" "status $CODE"
	times+=("$TIME_MS")
	req /api/metrics/database
	[ "$CODE" = 200 ] || fail "during slow clients: metrics $i answered" "status $CODE"
	times+=("$TIME_MS")
	sleep 0.1
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(sed -n '20p' <<<"$sorted")
worst=$(tail -n 1 <<<"$sorted")
echo "     40 requests beside 5 one-byte-per-second clients: median $median ms, slowest $worst ms"
# A thread blocked by a slow client would hold the others for seconds; the
# bounds leave room for a busy machine (tests run beside benchmarks).
expect_less "one byte per second (5 clients, 1 event thread): median answer (ms)" 50 "$median"
expect_less "one byte per second: slowest answer (ms)" 1000 "$worst"
req /api/health/database
expect_eq "during slow clients: health 200" 200 "$CODE"
for p in "${slow_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done

# ---- a health probe does not hold up the event thread -------------------------------

serve_stop
serve_start HTTP_THREADS=1 DB_HEALTH_QUERY='SELECT pg_sleep(2)' DB_HEALTH_SLOW=10000 || { serve_finish; exit 1; }
(curl -s --max-time 10 -o /dev/null "$BASE/api/health/database" >/dev/null 2>&1) &
probe_pid=$!
sleep 0.3
# were the probe on the event thread, these would wait for it (1.7 s)
req /livez
expect_eq "beside a 2 s probe: /livez 200" 200 "$CODE"
expect_less "beside a 2 s probe, 1 event thread: /livez prompt (ms)" 1000 "$TIME_MS"
req /api/metrics/database
expect_less "beside a 2 s probe: metrics prompt (ms)" 1000 "$TIME_MS"
wait "$probe_pid"
serve_stop

# ---- silent connections --------------------------------------------------------------

serve_start HTTP_IDLE_TIMEOUT=2 || { serve_finish; exit 1; }
t0=$(now_ms)
(
	exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
	timeout 10 cat <&3 >/dev/null # returns when the server closes
)
closed_ms=$(($(now_ms) - t0))
expect_less "silent connection: closed by HTTP_IDLE_TIMEOUT=2 (ms)" 4000 "$closed_ms"
expect_less "silent connection: not before it (ms)" "$closed_ms" 1500
# a keep-alive connection idle between requests too
t0=$(now_ms)
(
	exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
	printf 'GET /livez HTTP/1.1\r\nHost: t\r\n\r\n' >&3
	timeout 10 cat <&3 >/dev/null
)
closed_ms=$(($(now_ms) - t0))
expect_less "idle keep-alive connection: closed by HTTP_IDLE_TIMEOUT (ms)" 4000 "$closed_ms"
still_fine "after idle timeouts"
serve_stop

# ---- too many connections ---------------------------------------------------------------

# HTTP_MAX_CONNECTIONS=4 allows 2 per client address: hold 2 open, the
# third is turned away, and once they close everyone is served again.
serve_start HTTP_MAX_CONNECTIONS=4 HTTP_THREADS=2 || { serve_finish; exit 1; }
exec 6<>"/dev/tcp/127.0.0.1/$PORT" 7<>"/dev/tcp/127.0.0.1/$PORT"
sleep 0.3
req /livez
expect_eq "past the per-address limit: turned away" 000 "$CODE"
expect_less "past the per-address limit: at once (ms)" 1000 "$TIME_MS"
exec 6<&- 7<&-
sleep 0.3
still_fine "after the connection limit"
expect_match "the limit is logged" 'WARN  http: ' "$(cat "$SLOG")"
serve_stop

serve_finish
