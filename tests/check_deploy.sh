#!/usr/bin/env bash
# check_deploy.sh — deploy/ without a server: the alerting rules through
# `promtool check rules` and their unit tests (`promtool test rules`), the unit
# tests shown to catch a moved threshold, and the Grafana dashboard's shape
# (importable: the data source a variable, every query following $job and
# $instance). tests/sh/test_serve_prometheus.sh runs both against a live
# Prometheus.
# shellcheck disable=SC2016,SC2013 # jq filters name Grafana variables; alert names are words
set -u
src=${PQPOOL_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
. "$src/tests/sh/assert.sh"
rules="$src/deploy/prometheus/pqpool-rules.yml"
tests="$src/deploy/prometheus/pqpool-rules.test.yml"
dashboard="$src/deploy/grafana/pqpool-dashboard.json"

for tool in promtool jq; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "FAIL $tool not found: run scripts/deps.sh"
		exit 1
	}
done
tmp=$(mktemp -d /tmp/pqpool-deploy-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# ---- the rules ------------------------------------------------------------------

out=$(promtool check rules "$rules" 2>&1)
expect_eq "promtool check rules: exit status" 0 "$?"
expect_match "promtool check rules: rules found" 'SUCCESS: [1-9][0-9]* rules found' "$out"
out=$(cd "$(dirname "$tests")" && promtool test rules "$(basename "$tests")" 2>&1)
expect_eq "promtool test rules: exit status" 0 "$?"
expect_match "promtool test rules: success" '^  SUCCESS$' "$out"

# every alert has its unit tests: a case expecting it, and one expecting nothing
cases=$(awk '/alertname:/ { a = $NF } /exp_alerts: *\[\] *$/ { q[a]++ }
	/exp_alerts: *$/ { f[a]++ } END { for (a in f) print a, f[a] + 0, q[a] + 0
	for (a in q) if (!(a in f)) print a, 0, q[a] }' "$tests")
for alert in $(sed -n 's/^ *- alert: *\([A-Za-z0-9_]*\).*/\1/p' "$rules"); do
	read -r firing quiet < <(awk -v a="$alert" '$1 == a { print $2, $3 }' <<<"$cases")
	if [ "${firing:-0}" -ge 1 ] && [ "${quiet:-0}" -ge 1 ]; then
		pass "$alert: unit tests firing ($firing) and not firing ($quiet)"
	else
		fail "$alert: unit tests firing and not firing" "firing: ${firing:-0}, not firing: ${quiet:-0}"
	fi
done

# the unit tests catch a threshold moved: the error rate's 5 % made 50 %
mkdir -p "$tmp/moved"
sed 's/ > 0\.05$/ > 0.5/' "$rules" >"$tmp/moved/pqpool-rules.yml"
cp "$tests" "$tmp/moved/"
expect_ne "the copy has a moved threshold" "" "$(diff "$rules" "$tmp/moved/pqpool-rules.yml")"
(cd "$tmp/moved" && promtool test rules pqpool-rules.test.yml >/dev/null 2>&1)
expect_ne "promtool test rules fails on a moved threshold" 0 "$?"

# ---- the dashboard ------------------------------------------------------------------

d=$(cat "$dashboard")
expect_jq "dashboard: valid JSON with a uid and a title" '(.uid | length > 0) and (.title | length > 0)' "$d"
expect_jq "dashboard: the data source is the variable DS_PROMETHEUS (type datasource, prometheus)" \
	'[.templating.list[] | select(.name == "DS_PROMETHEUS" and .type == "datasource" and
	  .query == "prometheus")] | length == 1' "$d"
expect_jq "dashboard: query variables job and instance, on \${DS_PROMETHEUS}" \
	'[.templating.list[] | select(.type == "query" and .datasource.uid == "${DS_PROMETHEUS}") | .name]
	 | sort == ["instance", "job"]' "$d"
expect_jq "dashboard: every panel and query uses \${DS_PROMETHEUS}, no data source of its own" \
	'[.. | objects | select(has("datasource")) | .datasource | select(.type != "grafana")]
	 | all(. == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"})' "$d"
expect_jq "dashboard: panel ids unique" '[.. | objects | select(has("gridPos")) | .id] |
	length == (unique | length)' "$d"
expect_jq "dashboard: panels fit the 24-column grid" \
	'[.. | objects | select(has("gridPos")) | .gridPos] | all(.x >= 0 and .w > 0 and .x + .w <= 24 and .h > 0)' "$d"
expect_jq "dashboard: every panel but rows has a query" \
	'[.. | objects | select(has("gridPos") and .type != "row")] |
	 all((.targets // []) | length > 0 and all(.expr | length > 0))' "$d"
expect_jq "dashboard: every query follows \$job and \$instance" \
	'[.. | objects | select(has("expr")) | .expr] | length > 10 and
	 all(contains("job=~\"$job\"") and contains("instance=~\"$instance\""))' "$d"
expect_jq "dashboard: every metric selector of a query is filtered by \$instance" \
	'[.. | objects | select(has("expr")) | .expr | [scan("[a-z_:]+\\{[^}]*\\}")] | .[]]
	 | all(contains("instance=~\"$instance\""))' "$d"
expect_jq "dashboard: refIds unique within each panel" \
	'[.. | objects | select(has("targets")) | [.targets[].refId] | length == (unique | length)] | all' "$d"

echo "$checks checks, $fails failed"
[ "$fails" -eq 0 ]
