#!/usr/bin/env bash
# test_bench.sh — `pqpool bench` against the fixture's database, in short
# runs: blocking callers and event loops (--loops) each complete queries
# without errors and report what they measured; --loops is validated and
# capped at the pool size; compare runs pgbench beside the event loops and
# reports no fairness for them; the run says whether the kernel groups CPU
# time by session (autogroup). Figures are not judged here (BENCHMARKS.md).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/serve_lib.sh"

bench() { run "DATABASE_URL=$url" -- bench --no-progress --json -d 1 "$@"; }

bench throughput -t 4 -p 2
expect_eq "throughput: exit status" 0 "$RC"
expect_jq "throughput: blocking callers, queries done, no errors" \
	'.results[0] | .name == "pqpool" and .threads == 4 and .operations > 0 and .errors == 0' "$OUT"
expect_jq "throughput: latency and client CPU reported" \
	'.results[0] | .latency_ms.count == .operations and .client_cpu_us_per_op > 0' "$OUT"
# the kernel's session autogroups move the figures; the run says how they were
ag=$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo none)
case "$ag" in
0) want=false ;; none) want=null ;; *) want=true ;;
esac
expect_jq "throughput: autogroup as the kernel has it ($ag)" ".autogroup == $want" "$OUT"

bench throughput --loops 2 -p 4
expect_eq "throughput --loops 2: exit status" 0 "$RC"
expect_jq "throughput --loops 2: two event loops, queries done, no errors" \
	'.options.loops == 2 and (.results[0] | .name == "pqpool_submit" and .threads == 2 and .connections == 4 and .operations > 0 and .errors == 0)' "$OUT"
expect_jq "throughput --loops 2: latency per query, the pool's wait, one in flight per connection" \
	'.results[0] | .latency_ms.count == .operations and .latency_ms.p50 > 0 and (has("wait_ms") | not) and .pool_wait_ms.count > 0 and .outstanding == 4' "$OUT"

bench throughput --loops 2 -p 4 --outstanding 32
expect_jq "throughput --outstanding 32: as many in flight, no errors" \
	'.options.outstanding == 32 and (.results[0] | .outstanding == 32 and .operations > 0 and .errors == 0)' "$OUT"
bench throughput --outstanding 32
expect_eq "--outstanding without --loops: usage error" 2 "$RC"
expect_match "--outstanding without --loops: says so" 'outstanding needs --loops' "$ERR"

bench throughput --loops 2 -p 2 --prepared
expect_jq "throughput --loops --prepared: cached statements, no errors" \
	'.results[0] | .name == "pqpool_submit prepared" and .prepared and .operations > 0 and .errors == 0' "$OUT"

bench throughput --loops 8 -p 3
expect_jq "more loops than connections: one loop per connection" \
	'.results[0] | .threads == 3 and .operations > 0 and .errors == 0' "$OUT"

for bad in -1 x 1025 ""; do
	bench throughput --loops="$bad"
	expect_eq "--loops=\"$bad\": usage error" 2 "$RC"
	expect_match "--loops=\"$bad\": says what is expected" \
		'^pqpool: --loops="[^"]*": expected an integer from 0 to 1024$' "$ERR"
done

if command -v pgbench >/dev/null 2>&1; then
	bench compare --loops 1 -p 2
	expect_eq "compare --loops 1: exit status" 0 "$RC"
	expect_jq "compare --loops 1: pgbench, event loop, pgbench" \
		'[.results[].name] == ["pgbench -M extended", "pqpool_submit", "pgbench -M extended"]' "$OUT"
	expect_jq "compare --loops 1: ratios, and no fairness for event loops" \
		'.ratios.throughput_over_pgbench > 0 and .ratios.client_cpu_over_pgbench > 0 and .ratios.slowest_query_ms > 0 and (.ratios | has("wait_p99_over_median") | not)' "$OUT"
	bench compare --loops 1 -p 2 --outstanding 8
	expect_jq "compare --outstanding 8: pgbench unpipelined and pipelined (2 x 4) around pqpool" \
		'[.results[].name] == ["pgbench -M extended", "pgbench -M extended, pipelined", "pqpool_submit", "pgbench -M extended", "pgbench -M extended, pipelined"] and ([.results[] | select(.name | test("pipelined")) | .outstanding] == [8, 8])' "$OUT"
	expect_jq "compare --outstanding 8: the pipelined ratios" \
		'.ratios.throughput_over_pgbench_pipelined > 0 and .ratios.client_cpu_over_pgbench_pipelined > 0' "$OUT"
else
	echo "SKIP compare: pgbench not found (Debian package postgresql-client)"
fi

serve_finish
