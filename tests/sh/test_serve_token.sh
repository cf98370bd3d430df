#!/usr/bin/env bash
# test_serve_token.sh — METRICS_TOKEN over real HTTP: validation at startup,
# `pqpool config` masking, 401 with a Bearer challenge on the metrics routes
# (GET and HEAD, missing, wrong and lowercase-scheme tokens), open probes,
# 401s counted in /metrics, and the token in no output.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/serve_lib.sh"

token="t0k-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
secrets+=("$token")

# ---- validation and config -----------------------------------------------------

# "pqpool: METRICS_TOKEN: ..." and nothing else; the message never has the value
for bad in short-token "with a space-0123456789" "0123456789=abcdef" \
	"$token"$'\t' "é0123456789abcdef"; do
	secrets+=("$bad")
	run "METRICS_TOKEN=$bad" "DATABASE_URL=$url" PORT=0 -- serve
	expect_eq "serve with a bad METRICS_TOKEN (${#bad} bytes): exit status" 2 "$RC"
	expect_match "bad METRICS_TOKEN: one line naming the variable and the rule" \
		'^pqpool: METRICS_TOKEN: (expected 16 to 1024 characters, got [0-9]+|character [0-9]+ is not allowed: expected letters, digits)' \
		"$ERR"
	expect_eq "bad METRICS_TOKEN: nothing else" 1 "$(wc -l <<<"$ERR")"
	run "METRICS_TOKEN=$bad" -- config
	expect_eq "config with a bad METRICS_TOKEN: exit status" 2 "$RC"
done
run METRICS_TOKEN=abc -- config
expect_eq "a short token: the message" \
	'pqpool: METRICS_TOKEN: expected 16 to 1024 characters, got 3 (generate one with: openssl rand -hex 32)' \
	"$ERR"

run "METRICS_TOKEN=$token" -- config
expect_eq "config with a token: exit status" 0 "$RC"
expect_match "config: the token masked, from the environment" '^METRICS_TOKEN=\*\*\*\* +# environment$' "$OUT"
run "METRICS_TOKEN=$token" -- config --json
expect_jq "config --json: the token masked" '.METRICS_TOKEN.value == "****"' "$OUT"
run -- config
expect_match "config without a token: open" '^METRICS_TOKEN= +# default \(unset: the metrics routes are open\)$' "$OUT"
printf 'METRICS_TOKEN=%s\n' "$token" >"$work/.env.local"
run -- config
expect_match "config: the token from .env.local, masked" '^METRICS_TOKEN=\*\*\*\* +# \.env\.local$' "$OUT"
rm -f "$work/.env.local"
run -- serve --help
expect_match "serve --help lists METRICS_TOKEN" '^  METRICS_TOKEN=' "$OUT"

# ---- the routes with a token ---------------------------------------------------

serve_start "METRICS_TOKEN=$token" || { serve_finish; exit 1; }
expect_match "startup line: metrics_auth=bearer" ' metrics_auth=bearer$' "$(cat "$SLOG")"

n401=0
for p in /metrics /api/metrics/database /api/metrics/pool; do
	req "$p"
	n401=$((n401 + 1))
	expect_eq "$p without a token: 401" 401 "$CODE"
	expect_eq "$p without a token: the challenge" 'Bearer realm="pqpool"' "$(header WWW-Authenticate)"
	expect_eq "$p without a token: JSON" application/json "$CTYPE"
	expect_eq "$p without a token: the body" '{"error":"Unauthorized"}' "$BODY"
	expect_no_match "$p without a token: keeps the connection" '^[Cc]onnection: close' "$HDRS"

	req "$p" -H 'Authorization: Bearer wrong-token-0123456789'
	n401=$((n401 + 1))
	expect_eq "$p with a wrong token: 401" 401 "$CODE"
	expect_eq "$p with a wrong token: invalid_token" \
		'Bearer realm="pqpool", error="invalid_token"' "$(header WWW-Authenticate)"
	expect_eq "$p with a wrong token: the body" '{"error":"Unauthorized"}' "$BODY"

	# the token as a prefix, and the token with one more byte
	req "$p" -H "Authorization: Bearer ${token%?}"
	expect_eq "$p with the token less its last byte: 401" 401 "$CODE"
	req "$p" -H "Authorization: Bearer ${token}0"
	expect_eq "$p with the token and one byte more: 401" 401 "$CODE"
	n401=$((n401 + 2))

	req "$p" -u "user:$token"
	n401=$((n401 + 1))
	expect_eq "$p with Basic credentials: 401" 401 "$CODE"
	expect_eq "$p with Basic credentials: no error code" 'Bearer realm="pqpool"' "$(header WWW-Authenticate)"

	req "$p" -H "Authorization: Bearer $token"
	expect_eq "$p with the token: 200" 200 "$CODE"
	expect_eq "$p with the token: no challenge" "" "$(header WWW-Authenticate)"
	req "$p" -H "Authorization: bearer $token"
	expect_eq "$p with a lowercase scheme: 200 (RFC 7235: schemes ignore case)" 200 "$CODE"
	req "$p" --oauth2-bearer "$token"
	expect_eq "$p with curl --oauth2-bearer: 200" 200 "$CODE"

	req "$p" --head
	n401=$((n401 + 1))
	expect_eq "HEAD $p without a token: 401" 401 "$CODE"
	expect_eq "HEAD $p without a token: no body" 0 "$SIZE"
	expect_eq "HEAD $p without a token: the challenge" 'Bearer realm="pqpool"' "$(header WWW-Authenticate)"
	req "$p" --head -H "Authorization: Bearer $token"
	expect_eq "HEAD $p with the token: 200" 200 "$CODE"
done
req /metrics -X POST
expect_eq "POST /metrics without a token: still 405" 405 "$CODE"
req /nope
expect_eq "an unknown path without a token: still 404" 404 "$CODE"

for p in /api/health/database /livez /readyz; do
	req "$p"
	expect_eq "$p without a token: open (200)" 200 "$CODE"
	req "$p" -H 'Authorization: Bearer wrong-token-0123456789'
	expect_eq "$p with a wrong token: open (200)" 200 "$CODE"
done

req /metrics -H "Authorization: Bearer $token"
expect_match "the 401s on /metrics are counted" \
	"^pqpool_http_requests_total\\{route=\"/metrics\",code=\"401\"\\} $((n401 / 3))\$" "$BODY"
expect_match "so are those on /api/metrics/pool" \
	"^pqpool_http_requests_total\\{route=\"/api/metrics/pool\",code=\"401\"\\} $((n401 / 3))\$" "$BODY"
serve_stop
log=$(cat "$SLOG")
expect_match "access log: the 401s" ' request method=GET path=/metrics status=401 ' "$log"
expect_no_match "no warnings or errors" ' (WARN|ERROR) ' "$log"

# ---- without a token: open, and said so ---------------------------------------

serve_start || { serve_finish; exit 1; }
expect_match "startup line: metrics_auth=none" ' metrics_auth=none$' "$(cat "$SLOG")"
req /metrics
expect_eq "/metrics without METRICS_TOKEN: open" 200 "$CODE"
req /api/metrics/pool -H 'Authorization: Bearer anything-0123456789'
expect_eq "a token sent to an open service is ignored" 200 "$CODE"
serve_stop

# the token from .env.local guards too
printf 'METRICS_TOKEN=%s\n' "$token" >"$work/.env.local"
serve_start LOG_FORMAT=json || { serve_finish; exit 1; }
req /api/metrics/database
expect_eq "a token from .env.local: 401 without it" 401 "$CODE"
req /api/metrics/database -H "Authorization: Bearer $token"
expect_eq "a token from .env.local: 200 with it" 200 "$CODE"
serve_stop
expect_jq "JSON startup line: metrics_auth" 'select(.listen != null) | .metrics_auth == "bearer"' \
	"$(grep '"listen"' "$SLOG")"
rm -f "$work/.env.local"

serve_finish
