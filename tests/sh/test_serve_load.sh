#!/usr/bin/env bash
# test_serve_load.sh — 200 concurrent health requests: with DB_HEALTH_SHARE
# (the default) the database sees far fewer probes than requests; with
# DB_HEALTH_SHARE=false exactly one per request. Counted by the server
# itself, in pg_stat_statements.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/serve_lib.sh"

n=200
# A distinctive query to count, slow enough (100 ms) that requests overlap.
probe="SELECT pg_sleep(0.1) AS probe_count_test"

probes() {
	admin_sql "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE '%probe_count_test%' AND query NOT LIKE '%pg_stat_statements%'"
}

# burst: n requests at once, each on its own connection; prints one status
# code per line.
burst() {
	local cfg="$tmp/burst.cfg" i
	: >"$cfg"
	for ((i = 0; i < n; i++)); do
		printf 'url = "%s/api/health/database"\noutput = "%s/burst.%d"\n' "$BASE" "$tmp" "$i" >>"$cfg"
	done
	curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max "$n" \
		--max-time 60 -w '%{http_code}\n' -K "$cfg" 2>/dev/null
	# the bodies join what serve_finish searches for secrets
	cat "$tmp"/burst.* >>"$tmp/all" 2>/dev/null
	rm -f "$tmp"/burst.*
}

if ! admin_sql "SELECT pg_stat_statements_reset()" >/dev/null; then
	fail "pg_stat_statements is usable in database hyperpage" "psql's error is in the lines above"
	serve_finish
	exit 1
fi

for share in true false; do
	serve_start "DB_HEALTH_QUERY=$probe" DB_HEALTH_SLOW=10000 "DB_HEALTH_SHARE=$share" \
		LOG_LEVEL=warn || { serve_finish; exit 1; }
	admin_sql "SELECT pg_stat_statements_reset()" >/dev/null
	t0=$(now_ms)
	codes=$(burst)
	ms=$(($(now_ms) - t0))
	count=$(probes)
	echo "     DB_HEALTH_SHARE=$share: $n requests in $ms ms, $count probe(s) in pg_stat_statements"
	expect_eq "share=$share: every request answered 200" "$n" "$(grep -c '^200$' <<<"$codes")"
	if [ "$share" = true ]; then
		# 20 workers: about one probe per wave of 20, never one per request
		expect_less "share=true: far fewer probes than requests" $((n / 4)) "$count"
		expect_less "share=true: at least one probe ran" "$count" 0
	else
		expect_eq "share=false: one probe per request" "$n" "$count"
		# 200 probes of 100 ms on 20 connections: 1 s when concurrency
		# reaches the pool size, whatever thread accepted each connection
		expect_less "share=false: the probes ran 20 at a time (ms)" 3000 "$ms"
	fi
	req /metrics
	expect_match "share=$share: /metrics counted the burst" \
		"^pqpool_http_requests_total\\{route=\"/api/health/database\",code=\"200\"\\} $n\$" "$BODY"
	serve_stop
done

serve_finish
