#!/usr/bin/env bash
# http-compare.sh — `pqpool serve` against the spec's Node.js app, side by side, in one run.
#
# Starts both servers on loopback against the same PostgreSQL: bench/node/server.js (Node's
# `http` + a pg Pool, max 20: the reference of issue 3) and `pqpool serve` (DB_POOL_MAX=20,
# DB_POOL_MIN=20, DB_HEALTH_SHARE=false so that every health request runs its own SELECT 1).
# Warms each up, then runs wrk against /api/health/database and /api/metrics/database, the
# servers alternating and the order flipping every round, for R rounds, so that noise on a
# shared machine hits both alike. Reports per route the median requests/s of each server and
# the ratio pqpool/node, the CPU each process used, and the resident memory (VmRSS, VmHWM) of
# each server with its 20 connections open. Prints a Markdown table (or JSON with --json) on
# stdout; progress goes to stderr.
#
#   bench/http-compare.sh [options] [path/to/pqpool]     (default: build/pqpool)
#
#   -d, --duration SECS  length of one wrk run (default 10)
#   -r, --rounds N       rounds; medians are over these (default 3)
#   -w, --warmup SECS    wrk warm-up per server and route before measuring (default 3)
#   -t, --threads N      wrk threads (default 2)
#   -c, --connections N  wrk connections (default 64)
#       --json           JSON on stdout instead of Markdown
#       --node-only      skip pqpool (to try the Node half alone; no comparison)
#   -h, --help
#
# DATABASE_URL: the database to use. When unset, a private throwaway cluster is started with
# tests/pg_fixture.sh and removed on exit. PQPOOL_LOG_LEVEL: pqpool's LOG_LEVEL during the
# run (default warn: the Node server writes no access log either).
# Needs wrk, node, npm and curl (scripts/deps.sh installs wrk and curl); runs `npm ci` in
# bench/node when its node_modules is missing. Everything it starts is stopped on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

say() { echo "http-compare: $*" >&2; }
die() { echo "http-compare: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit "${1:-0}"; }

duration=10 rounds=3 warmup=3 threads=2 conns=64 json=0 node_only=0 bin=""
while [ $# -gt 0 ]; do
	case "$1" in
	-d | --duration) duration=${2:?}; shift ;;
	-r | --rounds) rounds=${2:?}; shift ;;
	-w | --warmup) warmup=${2:?}; shift ;;
	-t | --threads) threads=${2:?}; shift ;;
	-c | --connections) conns=${2:?}; shift ;;
	--json) json=1 ;;
	--node-only) node_only=1 ;;
	-h | --help) usage 0 ;;
	-*) echo "http-compare: unknown option $1" >&2; usage 2 ;;
	*) [ -z "$bin" ] || usage 2; bin=$1 ;;
	esac
	shift
done
for v in duration rounds threads conns; do
	case "${!v}" in '' | *[!0-9]* | 0) die "--$v must be a positive integer: ${!v}" ;; esac
done
case "$warmup" in '' | *[!0-9]*) die "--warmup must be a whole number of seconds: $warmup" ;; esac

for tool in wrk node npm curl; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "$tool is not installed (wrk and curl: scripts/deps.sh or apt-get install wrk curl; node/npm: Node.js 18 or later)"
done
if [ "$node_only" = 0 ]; then
	bin=${bin:-$root/build/pqpool}
	[ -x "$bin" ] || die "$bin is not an executable (build it: make build, or pass the path of pqpool)"
	bin=$(realpath "$bin")
	"$bin" serve --help >/dev/null 2>&1 ||
		die "$bin has no 'serve' command (rebuild it, or pass the path of a pqpool that has one)"
fi

# ---- cleanup: everything started here stops on exit ----------------------------------------
work=$(mktemp -d /tmp/pqpool-http-compare.XXXXXX)
node_pid="" pq_pid="" fixture=""
stop_pid() { # pid: SIGTERM, then SIGKILL after 10 s
	local pid=$1
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -n "$node_pid" ] && stop_pid "$node_pid"
	[ -n "$pq_pid" ] && stop_pid "$pq_pid"
	[ -n "$fixture" ] && { "$root/tests/pg_fixture.sh" stop "$fixture" >/dev/null 2>&1 || true; }
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the database ---------------------------------------------------------------------------
pgdata=""
if [ -z "${DATABASE_URL:-}" ]; then
	say "DATABASE_URL is unset: starting a throwaway PostgreSQL cluster"
	fixture=$work/pg
	"$root/tests/pg_fixture.sh" start "$fixture" >&2
	DATABASE_URL=$(sed -n 's/^DATABASE_URL=//p' "$fixture/env")
	pgdata=$(sed -n 's/^PQPOOL_TEST_PGDATA=//p' "$fixture/env")
else
	say "using DATABASE_URL from the environment"
fi
export DATABASE_URL
# the postmaster, to count PostgreSQL's CPU (only for the cluster started here)
postmaster=""
[ -n "$pgdata" ] && postmaster=$(head -n 1 "$pgdata/postmaster.pid" 2>/dev/null || true)

if command -v psql >/dev/null 2>&1; then have_psql=1; else have_psql=0; fi
sql() { timeout 10 psql -X -q -At -d "$DATABASE_URL" -c "$1" 2>/dev/null; }

# ---- Node dependencies ----------------------------------------------------------------------
if [ ! -d "$here/node/node_modules/pg" ]; then
	say "installing bench/node's dependencies (npm ci)"
	(cd "$here/node" && timeout 300 npm ci --no-audit --no-fund >&2) ||
		die "npm ci failed in $here/node"
fi

# ---- starting the servers -------------------------------------------------------------------
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 30000))
		port_free "$p" && { echo "$p"; return; }
	done
	die "no free loopback port found"
}
# the environment both servers get: nothing else from ours, so that a stray NODE_ENV, SSL_MODE
# or DB_* setting cannot make the two differ; PG* (libpq's and node-postgres's own) pass through.
base_env() {
	local v
	printf '%s\n' "PATH=$PATH" "HOME=${HOME:-/root}" "DATABASE_URL=$DATABASE_URL" HOST=127.0.0.1 \
		DB_POOL_MAX=20 DB_IDLE_TIMEOUT=0
	for v in $(compgen -e | grep '^PG' || true); do printf '%s=%s\n' "$v" "${!v}"; done
}
wait_ready() { # name pid port log
	local name=$1 pid=$2 port=$3 log=$4
	for _ in $(seq 1 300); do
		kill -0 "$pid" 2>/dev/null || { tail -n 20 "$log" >&2; die "$name exited during startup"; }
		curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$port/api/health/database" 2>/dev/null && return 0
		sleep 0.1
	done
	tail -n 20 "$log" >&2
	die "$name did not answer /api/health/database within 30 s"
}

node_port=$(pick_port)
mapfile -t node_env < <(base_env; echo "PORT=$node_port")
(cd "$here/node" && exec env -i "${node_env[@]}" node server.js) >"$work/node.log" 2>&1 &
node_pid=$!
wait_ready node "$node_pid" "$node_port" "$work/node.log"
say "node: $(grep -o 'node v.*' "$work/node.log" | head -n 1) (pid $node_pid)"
servers=(node)

if [ "$node_only" = 0 ]; then
	pq_port=$(pick_port)
	while [ "$pq_port" = "$node_port" ]; do pq_port=$(pick_port); done
	mapfile -t pq_env < <(base_env; printf '%s\n' "PORT=$pq_port" DB_POOL_MIN=20 DB_HEALTH_SHARE=false \
		"LOG_LEVEL=${PQPOOL_LOG_LEVEL:-warn}")
	# its working directory is an empty folder: no .env.local of anyone's
	mkdir -p "$work/pqpool-cwd"
	(cd "$work/pqpool-cwd" && exec env -i "${pq_env[@]}" "$bin" serve) >"$work/pqpool.log" 2>&1 &
	pq_pid=$!
	wait_ready "pqpool serve" "$pq_pid" "$pq_port" "$work/pqpool.log"
	say "pqpool: $("$bin" --version 2>&1 | head -n 1) (pid $pq_pid)"
	servers=(node pqpool)
fi
port_of() { if [ "$1" = node ]; then echo "$node_port"; else echo "$pq_port"; fi; }
pid_of() { if [ "$1" = node ]; then echo "$node_pid"; else echo "$pq_pid"; fi; }
alive() { kill -0 "$(pid_of "$1")" 2>/dev/null || { tail -n 20 "$work/$1.log" >&2; die "$1 died"; }; }

routes=(health metrics)
path_of() { echo "/api/$1/database"; }

# ---- measuring ------------------------------------------------------------------------------
clk=$(getconf CLK_TCK)
proc_ticks() { # utime+stime of a process, all its threads
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	s=${s##*) }
	# shellcheck disable=SC2086
	set -- $s
	echo $((${12} + ${13}))
}
pg_ticks() { # the postmaster and its children (backends, walwriter, ...)
	local t=0 p
	[ -n "$postmaster" ] || { echo 0; return; }
	for p in "$postmaster" $(ps -o pid= --ppid "$postmaster" 2>/dev/null); do
		t=$((t + $(proc_ticks "$p")))
	done
	echo "$t"
}
busy_ticks() { # whole machine: all CPUs, not idle or iowait
	local _c u n s _i _w q sq st
	read -r _c u n s _i _w q sq st _ </proc/stat
	echo $((u + n + s + q + sq + st))
}
pct() { awk -v t="$1" -v s="$2" -v c="$clk" 'BEGIN { printf "%.0f", (s > 0 ? 100 * t / c / s : 0) }'; }

wrk_run() { # server route secs -> wrk's output in $work/wrk.out
	timeout -k 5 $(($3 + 30)) wrk -t"$threads" -c"$conns" -d"$3s" --latency \
		"http://127.0.0.1:$(port_of "$1")$(path_of "$2")" >"$work/wrk.out" 2>&1 ||
		{ cat "$work/wrk.out" >&2; die "wrk failed against $1 $(path_of "$2")"; }
}
wrk_field() { # what: rps | non2xx | errors | p50 | p99 (latencies in ms)
	awk -v what="$1" '
	function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
	/^Requests\/sec:/ && what == "rps" { printf "%.0f", $2 }
	/Non-2xx or 3xx responses:/ { n2 = $NF }
	/Socket errors:/ { gsub(/,/, ""); se = $4 + $6 + $8 + $10 }
	$1 == "50%" && what == "p50" { printf "%.2f", ms($2) }
	$1 == "99%" && what == "p99" { printf "%.2f", ms($2) }
	END { if (what == "non2xx") print n2 + 0; if (what == "errors") print se + 0 }' "$work/wrk.out"
}

metric_total() { # totalConnections reported by a server's metrics route
	curl -fsS -m 5 "http://127.0.0.1:$(port_of "$1")/api/metrics/database" 2>/dev/null |
		sed -n 's/.*"totalConnections" *: *\([0-9]*\).*/\1/p'
}
mem_kb() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status" 2>/dev/null; }

# warm-up: opens every server's 20 connections (pg opens them on demand) and warms Node's JIT
for s in "${servers[@]}"; do
	for r in "${routes[@]}"; do
		if [ "$warmup" -gt 0 ]; then
			say "warm-up: $s $(path_of "$r") for ${warmup}s"
			wrk_run "$s" "$r" "$warmup"
		fi
	done
done

# each server must hold its 20 connections before its memory is read
declare -A conns_seen rss_warm
for s in "${servers[@]}"; do
	n=""
	for _ in $(seq 1 50); do
		n=$(metric_total "$s")
		[ "$n" = 20 ] && break
		sleep 0.2
	done
	conns_seen[$s]=${n:-?}
	[ "$n" = 20 ] || say "warning: $s reports totalConnections=${n:-?}, not 20, before its memory is read"
	rss_warm[$s]=$(mem_kb "$(pid_of "$s")" VmRSS)
done
pg_sessions="n/a"
if [ "$have_psql" = 1 ]; then
	pg_sessions=$(sql "SELECT count(*) FROM pg_stat_activity WHERE usename = current_user AND pid <> pg_backend_pid()" || true)
	pg_sessions=${pg_sessions:-n/a}
	say "pg_stat_activity: $pg_sessions sessions of the benchmark's role (expected $((20 * ${#servers[@]})): 20 per server)"
fi

# the rounds: per route, the servers alternate; the order flips every round
results=$work/results.tsv # round route server rps p50 p99 non2xx errors srv% pg% machine%
: >"$results"
say "$rounds rounds x ${#routes[@]} routes x ${#servers[@]} servers x ${duration}s (wrk -t$threads -c$conns)"
for ((round = 1; round <= rounds; round++)); do
	order=("${servers[@]}")
	if ((round % 2 == 0)) && [ ${#servers[@]} -eq 2 ]; then order=(pqpool node); fi
	for r in "${routes[@]}"; do
		for s in "${order[@]}"; do
			alive "$s"
			pid=$(pid_of "$s")
			t0=$EPOCHREALTIME p0=$(proc_ticks "$pid") g0=$(pg_ticks) m0=$(busy_ticks)
			wrk_run "$s" "$r" "$duration"
			t1=$EPOCHREALTIME p1=$(proc_ticks "$pid") g1=$(pg_ticks) m1=$(busy_ticks)
			secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
			rps=$(wrk_field rps) non2xx=$(wrk_field non2xx) errs=$(wrk_field errors)
			srv=$(pct $((p1 - p0)) "$secs") pgc=$(pct $((g1 - g0)) "$secs") mach=$(pct $((m1 - m0)) "$secs")
			[ -n "$postmaster" ] || pgc=""
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$r" "$s" "$rps" \
				"$(wrk_field p50)" "$(wrk_field p99)" "$non2xx" "$errs" "$srv" "$pgc" "$mach" >>"$results"
			bad="" pgshow="n/a"
			[ -z "$pgc" ] || pgshow="$pgc%"
			[ "$non2xx$errs" = 00 ] ||
				bad="  NON-2XX: $non2xx; $(grep -o 'Socket errors:.*' "$work/wrk.out" || echo 'Socket errors: 0')"
			say "round $round/$rounds  $(printf '%-7s %-22s' "$s" "$(path_of "$r")") $(printf '%7s' "$rps") req/s" \
				" server CPU ${srv}%  postgres CPU ${pgshow}  machine ${mach}%$bad"
		done
	done
done

declare -A rss_end hwm_end
for s in "${servers[@]}"; do
	rss_end[$s]=$(mem_kb "$(pid_of "$s")" VmRSS)
	hwm_end[$s]=$(mem_kb "$(pid_of "$s")" VmHWM)
done

# ---- report ---------------------------------------------------------------------------------
median() { # route server column -> median over the rounds
	awk -F'\t' -v r="$1" -v s="$2" -v c="$3" '$2 == r && $3 == s && $c != "" { v[n++] = $c }
	END {
		if (!n) { print ""; exit }
		for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		m = (n % 2) ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
		print m + 0
	}' "$results"
}
col() { case "$1" in rps) echo 4 ;; p50) echo 5 ;; p99) echo 6 ;; srv) echo 9 ;; pg) echo 10 ;; mach) echo 11 ;; esac; }
bad_runs() { # the runs with non-2xx answers or socket errors, one per line
	awk -F'\t' '$7 + $8 > 0 { printf "- %s in round %s on /api/%s/database: %s non-2xx, %s socket errors\n", $3, $1, $2, $7, $8 }' "$results"
}
round_ratios() { # route -> pqpool/node of each round, in order
	awk -F'\t' -v r="$1" '$2 == r { v[$1, $3] = $4; if ($1 > n) n = $1 }
	END { for (i = 1; i <= n; i++) if (v[i, "node"] > 0) printf "%s%.2f", (i > 1 ? " " : ""), v[i, "pqpool"] / v[i, "node"] }' "$results"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b }'; }
mb() { awk -v k="$1" 'BEGIN { if (k != "") printf "%.1f", k / 1024 }'; }

pg_version=""
[ "$have_psql" = 1 ] && pg_version=$(sql "SHOW server_version" || true)
node_version=$(node --version)
pg_js_version=$(cd "$here/node" && node -p 'require("pg/package.json").version')
pq_version=""
[ "$node_only" = 0 ] && pq_version=$("$bin" --version 2>&1 | head -n 1)
cpu_model=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)
machine="$(nproc) CPUs (${cpu_model:-unknown}), load average $load_start before the run"
label_of() { case "$1" in health) echo "GET /api/health/database (one SELECT 1 each)" ;; *) echo "GET $(path_of "$1")" ;; esac; }
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v != "") printf f, v }'; } # value printf-format

if [ "$json" = 1 ]; then
	jm() { local x; x=$(median "$@"); echo "${x:-null}"; }
	{
		printf '{"wrk":{"threads":%s,"connections":%s,"duration_s":%s,"warmup_s":%s},"rounds":%s,\n' \
			"$threads" "$conns" "$duration" "$warmup" "$rounds"
		printf ' "versions":{"node":"%s","pg":"%s","pqpool":"%s","postgresql":"%s"},"machine":"%s",\n' \
			"$node_version" "$pg_js_version" "$pq_version" "$pg_version" "$machine"
		printf ' "median":{'
		sep=""
		for r in "${routes[@]}"; do
			printf '%s"%s":{' "$sep" "$r"
			sep2=""
			for s in "${servers[@]}"; do
				printf '%s"%s":{"rps":%s,"p50_ms":%s,"p99_ms":%s,"server_cpu_pct":%s,"postgres_cpu_pct":%s,"machine_cpu_pct":%s}' \
					"$sep2" "$s" "$(jm "$r" "$s" 4)" "$(jm "$r" "$s" 5)" "$(jm "$r" "$s" 6)" \
					"$(jm "$r" "$s" 9)" "$(jm "$r" "$s" 10)" "$(jm "$r" "$s" 11)"
				sep2=","
			done
			if [ "$node_only" = 0 ]; then
				x=$(ratio "$(median "$r" pqpool 4)" "$(median "$r" node 4)")
				printf ',"ratio_pqpool_node":%s,"ratio_each_round":[%s]' "${x:-null}" "$(round_ratios "$r" | tr ' ' ,)"
			fi
			printf '}'
			sep=","
		done
		printf '},\n "memory_kb":{'
		sep=""
		for s in "${servers[@]}"; do
			printf '%s"%s":{"connections":%s,"vmrss_after_warmup":%s,"vmrss_after_runs":%s,"vmhwm":%s}' "$sep" "$s" \
				"$(x=${conns_seen[$s]}; [ "$x" = "?" ] && echo null || echo "$x")" \
				"${rss_warm[$s]:-null}" "${rss_end[$s]:-null}" "${hwm_end[$s]:-null}"
			sep=","
		done
		printf '},\n "pg_stat_activity_sessions":%s,\n "runs":[' "$(case "$pg_sessions" in *[!0-9]* | '') echo null ;; *) echo "$pg_sessions" ;; esac)"
		awk -F'\t' 'BEGIN { sep = "" } {
			printf "%s\n  {\"round\":%s,\"route\":\"%s\",\"server\":\"%s\",\"rps\":%s,\"p50_ms\":%s,\"p99_ms\":%s,\"non2xx\":%s,\"socket_errors\":%s,\"server_cpu_pct\":%s,\"postgres_cpu_pct\":%s,\"machine_cpu_pct\":%s}",
				sep, $1, $2, $3, $4, ($5 == "" ? "null" : $5), ($6 == "" ? "null" : $6), $7, $8, $9, ($10 == "" ? "null" : $10), $11
			sep = ","
		}' "$results"
		printf '\n]}\n'
	}
	exit 0
fi

echo "### HTTP: pqpool serve vs. Node.js + pg Pool, side by side"
echo
echo "\`wrk -t$threads -c$conns -d${duration}s\`, median of $rounds rounds (servers alternating, order flipped every round);"
echo "both pools hold 20 connections; pqpool with \`DB_HEALTH_SHARE=false\`."
echo "Node $node_version + pg $pg_js_version${pq_version:+, $pq_version}${pg_version:+, PostgreSQL $pg_version}; $machine."
echo "The database, both servers and wrk share the machine: compare the ratios, not the absolute figures."
echo
if [ "$node_only" = 0 ]; then
	echo "| route | Node.js req/s | pqpool req/s | pqpool / Node | ratio in each round |"
	echo "|---|---:|---:|---:|---|"
	for r in "${routes[@]}"; do
		a=$(median "$r" node 4) b=$(median "$r" pqpool 4)
		echo "| $(label_of "$r") | $(fmt "$a" %.0f) | $(fmt "$b" %.0f) | **$(ratio "$b" "$a")×** | $(round_ratios "$r") |"
	done
else
	echo "| route | Node.js req/s |"
	echo "|---|---:|"
	for r in "${routes[@]}"; do echo "| $(label_of "$r") | $(fmt "$(median "$r" node 4)" %.0f) |"; done
fi
echo
echo "| route | server | p50 ms | p99 ms | server CPU | PostgreSQL CPU | machine CPU |"
echo "|---|---|---:|---:|---:|---:|---:|"
for r in "${routes[@]}"; do
	for s in "${servers[@]}"; do
		g=$(fmt "$(median "$r" "$s" 10)" "%.0f %%")
		echo "| $(path_of "$r") | $s | $(fmt "$(median "$r" "$s" 5)" %.2f) | $(fmt "$(median "$r" "$s" 6)" %.2f)" \
			"| $(fmt "$(median "$r" "$s" 9)" "%.0f %%") | ${g:-n/a} | $(fmt "$(median "$r" "$s" 11)" "%.0f %%") |"
	done
done
echo
echo "CPU in percent of one core (the machine has $(nproc)), medians over the rounds; PostgreSQL's only for a cluster started by this script."
echo
echo "| process | connections open | VmRSS after warm-up | VmRSS after the runs | VmHWM (peak) |"
echo "|---|---:|---:|---:|---:|"
for s in "${servers[@]}"; do
	case "$s" in node) name="node server.js" ;; pqpool) name="pqpool serve" ;; esac
	echo "| $name | ${conns_seen[$s]} | $(mb "${rss_warm[$s]}") MB | $(mb "${rss_end[$s]}") MB | $(mb "${hwm_end[$s]}") MB |"
done
echo
echo "pg_stat_activity sessions of the role during the run: $pg_sessions (20 per server)."
bad=$(bad_runs)
if [ -n "$bad" ]; then
	echo
	echo "Runs with failed requests (a socket error is usually wrk's 2 s timeout; non-2xx answers mean a broken run):"
	echo "$bad"
fi
