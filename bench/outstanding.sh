#!/usr/bin/env bash
# outstanding.sh — the pipelining chart of BENCHMARKS.md: queries/s against
# the number of statements in flight (1 ... 512) for pqpool pipelined
# (`--loops 2 --outstanding M`), pqpool with DB_PIPELINE=off, pgbench
# unpipelined and pgbench pipelined (-c P, pipelines of M/P), where P, the
# connections of everyone, is min(M, 20). Each point's pgbench runs are the
# ones `pqpool bench compare` makes right before and after pqpool (means).
#
#   bench/outstanding.sh [path/to/pqpool] [out.png]   (defaults: build/pqpool,
#                                                      bench/outstanding.png)
#   OUTSTANDING_JSON=file bench/outstanding.sh ...    plot an earlier run
#   POINTS="1 4 16 64" DURATION=3 PROTOCOL=extended   fewer points, unnamed
#
# Needs a database (DATABASE_URL, or the fixture cluster it starts), gnuplot
# (Debian's gnuplot-nox; installed when missing and root), jq and pgbench.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../build/pqpool}
out=${2:-$here/outstanding.png}
points=${POINTS:-1 2 4 8 16 32 64 128 256 512}
duration=${DURATION:-3}
protocol=${PROTOCOL:-prepared}

chart_name=outstanding
# shellcheck source=chart_lib.sh
. "$here/chart_lib.sh"
chart_setup

case "$protocol" in
prepared) pflag=(--prepared) ;;
extended) pflag=() ;;
*) echo "outstanding: PROTOCOL is prepared or extended" >&2; exit 2 ;;
esac

json=${OUTSTANDING_JSON:-}
if [ -z "$json" ]; then
  chart_database
  json="$here/outstanding.json"
  : >"$work/rows"
  for m in $points; do
    p=$(( m < 20 ? m : 20 ))
    echo "outstanding: $m in flight on $p connections" >&2
    "$bin" bench compare --loops 2 --outstanding "$m" -p "$p" -d "$duration" \
      "${pflag[@]}" --json --no-progress >"$work/c.json"
    DB_PIPELINE=off "$bin" bench throughput --loops 2 --outstanding "$m" -p "$p" \
      -d "$duration" "${pflag[@]}" --json --no-progress >"$work/o.json"
    jq -c --argjson m "$m" '
      [.results[] | select(.name | test("pipelined"))] as $pp
      | [.results[] | select((.name | test("^pgbench")) and (.name | test("pipelined") | not))] as $pg
      | {outstanding: $m, cpus: .cpus,
         pqpool: (.results[] | select(.name | test("^pqpool_submit")) | .operations_per_s),
         pgbench: (($pg | map(.operations_per_s) | add) / ($pg | length)),
         pgbench_pipelined: (($pp | map(.operations_per_s) | add) / ($pp | length)),
         ratios: .ratios}' "$work/c.json" >"$work/c.row"
    jq -c --slurpfile c "$work/c.row" \
      '$c[0] + {pqpool_no_pipeline: .results[0].operations_per_s}' "$work/o.json" >>"$work/rows"
  done
  jq -s --arg protocol "$protocol" --argjson d "$duration" \
    '{protocol: $protocol, duration_s: $d, points: .}' "$work/rows" >"$json"
  echo "outstanding: wrote $json" >&2
fi

for series in pqpool pqpool_no_pipeline pgbench pgbench_pipelined; do
  jq -r --arg s "$series" '.points[] | "\(.outstanding) \(.[$s])"' "$json" >"$work/$series.dat"
done
cpus=$(jq -r '.points[0].cpus' "$json")
proto=$(jq -r .protocol "$json")
gnuplot <<GP
set terminal pngcairo size 900,540 font ",11"
set output "$out"
set title "SELECT 1 ($proto) against statements in flight ($cpus CPUs, PostgreSQL on the same machine)"
set xlabel "statements in flight (connections: min(M, 20))"
set ylabel "queries per second"
set logscale x 2
set key left top
set grid
plot "$work/pqpool.dat" using 1:2 with linespoints lw 2 pt 7 title "pqpool pipelined (pqpool\\\\_submit, 2 loops)", \
     "$work/pgbench_pipelined.dat" using 1:2 with linespoints lw 2 pt 5 title "pgbench pipelined (-c P, pipelines of M/P)", \
     "$work/pqpool_no_pipeline.dat" using 1:2 with linespoints lw 2 pt 9 title "pqpool, DB\\\\_PIPELINE=off", \
     "$work/pgbench.dat" using 1:2 with linespoints lw 2 pt 11 title "pgbench unpipelined (-c P)"
GP
echo "outstanding: wrote $out"
