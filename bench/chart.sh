#!/usr/bin/env bash
# chart.sh — the throughput chart of BENCHMARKS.md: queries/s against client
# count for pqpool (a pool of 20), the same work without a pool, and
# pgbench (as many connections as clients), from `pqpool bench sweep --json`.
#
#   bench/chart.sh [path/to/pqpool] [out.png]      (defaults: build/pqpool,
#                                                   bench/throughput.png)
#   SWEEP_JSON=file bench/chart.sh ...             plot an earlier run instead
#
# Needs a database (DATABASE_URL, or the fixture cluster it starts), gnuplot
# (Debian's gnuplot-nox; installed when missing and root) and jq.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../build/pqpool}
out=${2:-$here/throughput.png}
clients=${CLIENTS:-1,2,4,8,16,32,64}
duration=${DURATION:-5}

chart_name=chart
# shellcheck source=chart_lib.sh
. "$here/chart_lib.sh"
chart_setup

json=${SWEEP_JSON:-}
if [ -z "$json" ]; then
  chart_database
  json="$work/sweep.json"
  "$bin" bench sweep --clients "$clients" --duration "$duration" --json --no-progress >"$json"
fi

# one data file per series: clients, queries/s
for series in "pqpool" "no pool" "pgbench -M extended"; do
  jq -r --arg n "$series" '.results[] | select(.name == $n) | "\(.threads) \(.operations_per_s)"' \
    "$json" >"$work/$(tr ' ' _ <<<"$series").dat"
done
cpus=$(jq -r .cpus "$json")
gnuplot <<GP
set terminal pngcairo size 900,540 font ",11"
set output "$out"
set title "SELECT 1 throughput against client count ($cpus CPUs, PostgreSQL on the same machine)"
set xlabel "client threads (pgbench: connections)"
set ylabel "queries per second (log scale)"
set logscale x 2
set logscale y 10
set key right center
set grid
set yrange [100:200000]
plot "$work/pqpool.dat" using 1:2 with linespoints lw 2 pt 7 title "pqpool (pqpool\\\\_query, pool of 20)", \
     "$work/pgbench_-M_extended.dat" using 1:2 with linespoints lw 2 pt 5 title "pgbench -M extended (-j 2)", \
     "$work/no_pool.dat" using 1:2 with linespoints lw 2 pt 9 title "no pool (a connection per query)"
GP
echo "chart: wrote $out"
