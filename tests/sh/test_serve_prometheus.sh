#!/usr/bin/env bash
# test_serve_prometheus.sh — deploy/'s Grafana dashboard and alerting rules
# against a real Prometheus (Debian's) scraping two real `pqpool serve`s: every
# query of the dashboard and every rule returns data, the rules load and
# evaluate with health "ok", and the alerts a failing health query should
# raise are pending for that service and not for the healthy one.
#
# Two services on the fixture's database, so that every metric has samples:
#   A, healthy: a 20 ms health query, no sharing, DB_POOL_MAX=4 and a 1 s idle
#     timeout, so that bursts of 8 health requests wait for connections and
#     open new ones that are reaped between bursts (wait, connect and close
#     figures move, not only queries);
#   B, unhealthy: DB_HEALTH_QUERY fails (division by zero), so health answers
#     503 and errors by SQLSTATE class exist.
# Prometheus scrapes both every second and evaluates the rules every second.
#
# What "returns data" means: the instant query has at least one sample whose
# value is a number (not NaN: a panel of NaN shows nothing, a condition on NaN
# never holds). The queries come from the files themselves: the dashboard's
# through jq (every "expr" anywhere in it), the rules' through Prometheus's
# own /api/v1/rules (the rules file as Prometheus parsed it; their number is
# checked against promtool's count).
#
# Conditions are normally empty (`x > 0.05` has no sample while all is well),
# so before querying, every comparison with a number literal (`> 0.05`,
# `== 0`, `> bool 1`) is replaced by `>= -Inf`: that keeps every sample whose
# value is a number, whatever the threshold, and drops NaN; the expression then
# returns the series its condition looks at, and `a == 0 and on (...) b > 0`
# returns data only if both sides have some. The rules file keeps to that
# shape (thresholds are number literals on the right of a comparison; see its
# header). Grafana's variables are replaced by what Grafana would send:
# $job = pqpool, $instance = both targets as a regex alternation (a multi
# selection), $__rate_interval = 1m (the whole run), $__interval = 15s; a `$`
# left over fails the query.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/serve_lib.sh"

src=${PQPOOL_SRC:-$here/../..}
rules="$src/deploy/prometheus/pqpool-rules.yml"
dashboard="$src/deploy/grafana/pqpool-dashboard.json"
for tool in prometheus promtool; do
	command -v "$tool" >/dev/null 2>&1 || {
		fail "$tool is installed (Debian package prometheus; scripts/deps.sh)"
		serve_finish
		exit 1
	}
done

prom="$tmp/prometheus" # its config, data folder and log; removed with $tmp
mkdir -p "$prom"
PROM_PID="" PROM="" LOAD_PID="" A_PID=""

prom_stop() {
	[ -n "$PROM_PID" ] || return 0
	kill -TERM "$PROM_PID" 2>/dev/null
	local deadline=$(($(now_ms) + 10000))
	while kill -0 "$PROM_PID" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.05; done
	kill -KILL "$PROM_PID" 2>/dev/null
	wait "$PROM_PID" 2>/dev/null
	PROM_PID=""
}
load_stop() {
	[ -n "$LOAD_PID" ] || return 0
	kill "$LOAD_PID" 2>/dev/null
	wait "$LOAD_PID" 2>/dev/null
	LOAD_PID=""
}
cleanup() {
	load_stop
	prom_stop
	[ -n "$A_PID" ] && kill -KILL "$A_PID" 2>/dev/null
	serve_cleanup # the current service, the cluster, and $tmp with Prometheus' folder
}
trap cleanup EXIT

# ---- the two services ------------------------------------------------------

serve_start LOG_LEVEL=warn DB_HEALTH_SHARE=false "DB_HEALTH_QUERY=SELECT pg_sleep(0.02)" \
	DB_POOL_MIN=1 DB_POOL_MAX=4 DB_IDLE_TIMEOUT=1000 || {
	serve_finish
	exit 1
}
A_PID=$SPID A_SLOG=$SLOG A_RUN=$runs A="127.0.0.1:$PORT"
serve_start LOG_LEVEL=warn "DB_HEALTH_QUERY=SELECT 1/0" || {
	serve_finish
	exit 1
}
B="127.0.0.1:$PORT"

# ---- Prometheus on a free loopback port --------------------------------------

cat >"$prom/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $rules
scrape_configs:
  - job_name: pqpool
    static_configs:
      - targets: ['$A', '$B']
EOF
out=$(promtool check config "$prom/prometheus.yml" 2>&1)
expect_eq "promtool check config (with the rules): exit status" 0 "$?"
nrules=$(sed -n 's/.*SUCCESS: \([0-9][0-9]*\) rules found.*/\1/p' <<<"$out" | head -n 1)
expect_match "promtool counts the rules" '^[1-9][0-9]*$' "$nrules"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# A free port may be taken before Prometheus binds it (other runs start
# servers too): a few tries. `timeout` bounds Prometheus should this script be
# killed before its trap runs.
for _ in 1 2 3 4 5; do
	for _ in $(seq 1 50); do
		pport=$((20000 + RANDOM % 30000))
		port_free "$pport" && break
	done
	(cd "$prom" && exec timeout -s KILL 280 prometheus --config.file=prometheus.yml \
		--storage.tsdb.path=data --web.listen-address="127.0.0.1:$pport") \
		>"$prom/log" 2>&1 </dev/null &
	PROM_PID=$!
	PROM="http://127.0.0.1:$pport"
	deadline=$(($(now_ms) + 30000))
	ready=""
	while kill -0 "$PROM_PID" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do
		ready=$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "$PROM/-/ready" 2>/dev/null)
		[ "$ready" = 200 ] && break
		sleep 0.1
	done
	[ "$ready" = 200 ] && break
	prom_stop
done
if [ "$ready" != 200 ]; then
	fail "Prometheus starts" "log: $(tail -c 2000 "$prom/log")"
	serve_finish
	exit 1
fi
pass "Prometheus is ready on 127.0.0.1:$pport"

# ---- load: bounded bursts of health requests ---------------------------------------

health_urls=()
for _ in 1 2 3 4 5 6 7 8; do health_urls+=("http://$A/api/health/database"); done
health_urls+=("http://$B/api/health/database" "http://$B/api/health/database")
(
	for _ in $(seq 1 60); do # 60 bursts, 1.5 s apart: 90 s at most
		curl -s --max-time 5 -Z "${health_urls[@]}" >/dev/null 2>&1
		sleep 1.5
	done
) &
LOAD_PID=$!

# pq <query>: one instant query; sets QR to the response (empty without one)
pq() {
	QR=$(curl -s --max-time 10 -G --data-urlencode "query=$1" "$PROM/api/v1/query" 2>/dev/null)
}
# has_data <response>: a successful result with a sample that is a number
has_data() {
	jq -e '.status == "success" and (
	         if .data.resultType == "scalar" then .data.result[1] != "NaN"
	         else [.data.result[] | (.value // .values[-1])[1] | select(. != "NaN")] | length > 0
	         end)' >/dev/null 2>&1 <<<"$1"
}

# Enough history for rates over 1m windows and every rule evaluated: 12 scrapes
# of each target (about 4 bursts) and no rule left unevaluated.
deadline=$(($(now_ms) + 60000))
while [ "$(now_ms)" -lt "$deadline" ]; do
	pq 'min(count_over_time(up{job="pqpool"}[1m])) >= 12 and count(up{job="pqpool"} == 1) == 2'
	scraped=$QR
	rules_json=$(curl -s --max-time 10 "$PROM/api/v1/rules" 2>/dev/null)
	if has_data "$scraped" && jq -e '[.data.groups[].rules[]] | length > 0 and
	       all(.health != "unknown")' >/dev/null 2>&1 <<<"$rules_json"; then
		break
	fi
	sleep 0.5
done
expect_jq "both services scraped 12 times and up" '.data.result | length == 1' "$scraped"

# ---- the rules as Prometheus loaded them ----------------------------------------------

expect_jq "/api/v1/rules: the group pqpool is loaded from the rules file" \
	".data.groups | map(select(.name == \"pqpool\" and .file == \"$rules\")) | length == 1" "$rules_json"
expect_eq "/api/v1/rules: as many rules as promtool counts" "$nrules" \
	"$(jq '[.data.groups[].rules[]] | length' <<<"$rules_json")"
expect_jq "/api/v1/rules: every rule evaluated with health ok, no error" \
	'[.data.groups[].rules[]] | all(.health == "ok" and (.lastError // "") == "")' "$rules_json"
expect_jq "every alert has a for:, a severity of warning or critical, a summary and a description" \
	'[.data.groups[].rules[] | select(.type == "alerting")] | length > 0 and
	 all(.duration > 0 and (.labels.severity | IN("warning", "critical")) and
	     (.annotations.summary // "") != "" and (.annotations.description // "") != "")' "$rules_json"

# ---- every query returns data ---------------------------------------------------------

instances="$A|$B"
# concrete <expr>: Grafana's variables replaced, on one line
# shellcheck disable=SC2016 # the patterns are the variables' literal names
concrete() {
	local e=${1//$'\n'/ }
	e=${e//'${__rate_interval}'/1m}
	e=${e//'$__rate_interval'/1m}
	e=${e//'${__interval}'/15s}
	e=${e//'$__interval'/15s}
	e=${e//'${job}'/pqpool}
	e=${e//'$job'/pqpool}
	e=${e//'${instance}'/$instances}
	e=${e//'$instance'/$instances}
	printf '%s' "$e"
}
# unfiltered <expr>: every comparison with a number made to keep every number
unfiltered() {
	sed -E 's/(==|!=|>=|<=|>|<)[[:space:]]*(bool[[:space:]]+)?[-+]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?|[Ii]nf|NaN)/>= -Inf/g' <<<"$1"
}
# expect_data <what> <expr>: the query returns data, retried for up to 20 s
# (a series a burst has not touched yet)
expect_data() {
	local q deadline
	q=$(unfiltered "$(concrete "$2")")
	if [[ "$q" == *'$'* ]]; then
		fail "$1: no template variable left" "query: $q"
		return
	fi
	deadline=$(($(now_ms) + 20000))
	while :; do
		pq "$q"
		has_data "$QR" && break
		[ "$(now_ms)" -ge "$deadline" ] && break
		sleep 1
	done
	if has_data "$QR"; then pass "$1 returns data"; else
		fail "$1 returns data" "query: $q" "answer: $(head -c 600 <<<"$QR")"
	fi
}

# the checker can fail: a metric that does not exist, and a result of NaN only
expect_no_data() {
	pq "$2"
	if has_data "$QR"; then fail "$1" "answer: $(head -c 600 <<<"$QR")"; else pass "$1"; fi
}
expect_no_data "a metric that does not exist has no data" 'db_client_no_such_metric{job="pqpool"}'
expect_no_data "a result of NaN only is no data" '0 * up{job="pqpool"} / 0'
expect_eq "the comparison is replaced by one that keeps every number" \
	'sum(x) >= -Inf and on (a) y >= -Inf or z >= -Inf' \
	"$(unfiltered 'sum(x) == 0 and on (a) y > bool 1e-3 or z <= -Inf')"
expect_eq "label matchers are left alone" 'x{a!="1", le="0.5"} >= -Inf' \
	"$(unfiltered 'x{a!="1", le="0.5"} > 0.5')"

ndash=0
while IFS= read -r line; do
	ndash=$((ndash + 1))
	expect_data "dashboard: $(jq -r '.[0]' <<<"$line") #$ndash" "$(jq -r '.[1]' <<<"$line")"
done < <(jq -c 'paths(type == "object" and has("expr")) as $p |
	[(getpath($p[:-2]).title // "?"), getpath($p).expr]' "$dashboard")
expect_jq "the dashboard has queries" ". > 10" "$ndash"

while IFS= read -r line; do
	expect_data "rule $(jq -r '.[0]' <<<"$line")" "$(jq -r '.[1]' <<<"$line")"
done < <(jq -c '.data.groups[].rules[] | [.name, .query]' <<<"$rules_json")

# The dashboard's variables: label_values(<series>, <label>) as Grafana asks it.
while IFS= read -r line; do
	name=$(jq -r '.[0]' <<<"$line")
	def=$(jq -r '.[1]' <<<"$line")
	series=$(sed -nE 's/^label_values\((.*),[[:space:]]*([a-zA-Z_][a-zA-Z0-9_]*)\)$/\1/p' <<<"$def")
	label=$(sed -nE 's/^label_values\((.*),[[:space:]]*([a-zA-Z_][a-zA-Z0-9_]*)\)$/\2/p' <<<"$def")
	if [ -z "$series" ]; then
		fail "variable $name: a label_values(series, label) query" "query: $def"
		continue
	fi
	got=$(curl -s --max-time 10 -G --data-urlencode "match[]=$(concrete "$series")" \
		"$PROM/api/v1/series" | jq -r --arg l "$label" '[.data[][$l]] | unique | join(" ")')
	case $name in
	job) expect_eq "variable job: label_values finds the job" "pqpool" "$got" ;;
	instance) expect_eq "variable instance: label_values finds both services" \
		"$(printf '%s\n' "$A" "$B" | sort | tr '\n' ' ' | sed 's/ $//')" "$got" ;;
	*) expect_ne "variable $name: label_values finds values" "" "$got" ;;
	esac
done < <(jq -c '.templating.list[] | select(.type == "query") |
	[.name, (if (.query | type) == "object" then .query.query else .query end)]' "$dashboard")

# ---- the alerts the unhealthy service should raise ----------------------------------

alerts=$(curl -s --max-time 10 "$PROM/api/v1/alerts")
for name in PqpoolDatabaseUnhealthy PqpoolQueryErrorRateHigh; do
	expect_jq "$name is pending or firing for the unhealthy service" \
		"[.data.alerts[] | select(.labels.alertname == \"$name\" and .labels.instance == \"$B\")] | length == 1" \
		"$alerts"
	expect_jq "$name is not raised for the healthy service" \
		"[.data.alerts[] | select(.labels.alertname == \"$name\" and .labels.instance == \"$A\")] | length == 0" \
		"$alerts"
done
expect_jq "PqpoolTargetDown is not raised" \
	'[.data.alerts[] | select(.labels.alertname == "PqpoolTargetDown")] | length == 0' "$alerts"

# ---- the end ---------------------------------------------------------------------------

load_stop
prom_stop
serve_stop
SPID=$A_PID SLOG=$A_SLOG runs=$A_RUN
A_PID=""
serve_stop
serve_finish
