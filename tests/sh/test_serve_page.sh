#!/usr/bin/env bash
# test_serve_page.sh — the status page of GET / in a real headless Chromium:
# its headers and the CSP hashes of its inline script and style, the bytes of
# page.html, no pool call to serve it, the rendered DOM showing the values
# the JSON routes give at the same moment, a bounded number of polls (and
# no database work beyond the health checks they ask for), screenshots that
# are not blank in light and dark mode, and with METRICS_TOKEN: health shown,
# the token form instead of the figures, and no more than one refused round.
#
# PQPOOL_PAGE_SCREENSHOT=<file.png>: also take a screenshot there, of 5
# minutes of polling while wrk loads the health route (docs/status-page.png
# is made that way).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/serve_lib.sh"

for tool in chromium python3; do
	command -v "$tool" >/dev/null 2>&1 || {
		fail "$tool found (scripts/deps.sh installs it)"
		serve_finish
		exit 1
	}
done
page_src=${PQPOOL_SRC:?set PQPOOL_SRC to the source tree}/cmd/pqpool/serve/page.html

# ---- the browser ------------------------------------------------------------------

# Virtual time: timers fire at once and network waits do not count, so the
# page polls as it would over BUDGET_MS in a few real seconds. Chromium gets
# BROWSER_S real seconds at most (slow to start on a loaded machine).
BUDGET_MS=20000
BROWSER_S=60
browser_pid=""
load_pid=""

# Chromium runs in a session of its own: its group (renderers, zygote,
# crash handler) ends with it, by that id.
browser_kill() {
	[ -n "$browser_pid" ] && kill -KILL -- "-$browser_pid" 2>/dev/null
	browser_pid=""
}
page_cleanup() {
	browser_kill
	[ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null
	serve_cleanup
}
trap page_cleanup EXIT

# browse <stdout file> [chromium options]: one headless run against $BASE/
# with a fresh profile (and HOME: it writes an NSS database there), removed
# afterwards. Sets BROWSER_RC and BROWSER_MS.
browse() {
	local out=$1 profile t0
	shift
	profile=$(mktemp -d "$tmp/chromium.XXXXXX")
	t0=$(now_ms)
	HOME="$profile" XDG_CONFIG_HOME="$profile" XDG_CACHE_HOME="$profile" \
		setsid timeout -k 5 "$BROWSER_S" chromium --headless --no-sandbox --disable-gpu \
		--disable-dev-shm-usage --no-first-run --no-default-browser-check \
		--disable-extensions --disable-background-networking --disable-component-update \
		--disable-sync --user-data-dir="$profile" --window-size=1280,900 \
		--hide-scrollbars --virtual-time-budget="$BUDGET_MS" "$@" "$BASE/" \
		>"$out" 2>"$tmp/chromium.log" </dev/null &
	browser_pid=$!
	wait "$browser_pid"
	BROWSER_RC=$?
	BROWSER_MS=$(($(now_ms) - t0))
	browser_kill
	rm -rf "$profile"
	cat "$out" >>"$tmp/all"
	[ "$BROWSER_RC" -eq 0 ] || echo "chromium: $(grep -v dbus "$tmp/chromium.log" | tail -n 5)"
}

# dom_read <dom file>: each element with an id as "<id>.text=<its text>" and
# "<id>.<attribute>=<value>" lines, in $tmp/dom.kv; dom <key> reads one.
dom_read() {
	python3 - "$1" >"$tmp/dom.kv" <<'EOF'
import html.parser, sys

class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.out = [], {}
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.stack.append((tag, a.get("id"), []))
        if a.get("id"):
            for k, v in a.items():
                self.out[a["id"] + "." + k] = "" if v is None else v
    def handle_endtag(self, tag):
        while self.stack:
            t, i, text = self.stack.pop()
            if i:
                self.out[i + ".text"] = " ".join("".join(text).split())
            if self.stack:
                self.stack[-1][2].extend(text)
            if t == tag:
                break
    def handle_data(self, d):
        if self.stack:
            self.stack[-1][2].append(d)

p = P()
p.feed(open(sys.argv[1], encoding="utf-8").read())
for k, v in p.out.items():
    print(k + "=" + v.replace("\n", " "))
EOF
}
dom() { sed -n "s|^$1=||p" "$tmp/dom.kv" | head -n 1; }
# has <key>: the attribute is there (hidden="" reads as empty, as absent does)
has() { grep -q "^$1=" "$tmp/dom.kv"; }

# expect_ge / expect_le <what> <bound> <value> (integers)
expect_ge() {
	if [ "${3:-x}" -ge "$2" ] 2>/dev/null; then pass "$1 ($3 >= $2)"; else fail "$1" "expected at least $2" "actual: $3"; fi
}
expect_le() {
	if [ "${3:-x}" -le "$2" ] 2>/dev/null; then pass "$1 ($3 <= $2)"; else fail "$1" "expected at most $2" "actual: $3"; fi
}

# A figure of /metrics: counter <name{labels}> (0 when absent).
counter() {
	local v
	v=$(curl -s --max-time 10 "$BASE/metrics" | awk -v k="$1" '$1 == k { print $2 }')
	echo "${v:-0}"
}

# png_check <file>: "<width> <height> <distinct colors> <luminance of the
# most common color, 0-255>" of an 8-bit RGB or RGBA PNG, with nothing but
# the standard library.
png_check() {
	python3 - "$1" <<'EOF'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat = 8, b""
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    if kind == b"IHDR":
        w, h, depth, ctype = struct.unpack(">IIBB", data[pos + 8:pos + 18])
    elif kind == b"IDAT":
        idat += data[pos + 8:pos + 8 + n]
    pos += 12 + n
assert depth == 8 and ctype in (2, 6), "expected 8-bit RGB or RGBA"
bpp = 3 if ctype == 2 else 4
raw, stride = zlib.decompress(idat), w * bpp
prev, colors = bytearray(stride), {}
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    if f == 1:
        for i in range(bpp, stride): line[i] = (line[i] + line[i - bpp]) & 255
    elif f == 2:
        line = bytearray((a + b) & 255 for a, b in zip(line, prev))
    elif f == 3:
        for i in range(stride): line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 255
    elif f == 4:
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp):
        k = bytes(line[x:x + 3])
        colors[k] = colors.get(k, 0) + 1
    prev = line
top = max(colors, key=colors.get)
print(w, h, len(colors), (299 * top[0] + 587 * top[1] + 114 * top[2]) // 1000)
EOF
}

# ---- the route over HTTP ----------------------------------------------------------

# unusual pool bounds, so that a value on the page cannot be a placeholder
serve_start DB_POOL_MAX=13 DB_POOL_MIN=3 || {
	serve_finish
	exit 1
}

req /
expect_eq "GET /: 200" 200 "$CODE"
expect_eq "GET /: HTML" "text/html; charset=utf-8" "$CTYPE"
expect_eq "GET /: no-store, as every route" no-store "$(header Cache-Control)"
expect_eq "GET /: nosniff" nosniff "$(header X-Content-Type-Options)"
csp=$(header Content-Security-Policy)
expect_match "GET /: a CSP allowing only its own script and style, and this service" \
	"^default-src 'none'; script-src 'sha256-[A-Za-z0-9+/]{43}='; style-src 'sha256-[A-Za-z0-9+/]{43}='; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'$" \
	"$csp"
curl -s --max-time 20 -o "$tmp/page.html" "$BASE/"
if cmp -s "$tmp/page.html" "$page_src"; then pass "GET /: page.html byte for byte"; else
	fail "GET /: page.html byte for byte" "$(cmp "$tmp/page.html" "$page_src" 2>&1)"
fi
# the hashes a browser computes over the served bytes are the header's
hashes=$(python3 - "$tmp/page.html" <<'EOF'
import base64, hashlib, re, sys
s = open(sys.argv[1], "rb").read()
for tag in (b"script", b"style"):
    m = re.findall(b"<" + tag + b">(.*?)</" + tag + b">", s, re.S)
    assert len(m) == 1, tag
    print("'sha256-" + base64.b64encode(hashlib.sha256(m[0]).digest()).decode() + "'")
EOF
)
expect_eq "CSP: script-src is the inline script's SHA-256" "$(sed -n 1p <<<"$hashes")" \
	"$(sed -n "s/.*script-src \([^;]*\);.*/\1/p" <<<"$csp")"
expect_eq "CSP: style-src is the inline style's SHA-256" "$(sed -n 2p <<<"$hashes")" \
	"$(sed -n "s/.*style-src \([^;]*\);.*/\1/p" <<<"$csp")"
expect_no_match "the page loads nothing from elsewhere" \
	'(src|href)=["'"'"'](https?:)?//|@import|url\(' "$(cat "$tmp/page.html")"
len=$(stat -c %s "$tmp/page.html")
req / -I
expect_eq "HEAD /: 200" 200 "$CODE"
expect_eq "HEAD /: no body" 0 "$SIZE"
expect_eq "HEAD /: the length of GET's body" "$len" "$(header Content-Length)"
req / -X POST -d x=1
expect_eq "POST /: 405" 405 "$CODE"
expect_eq "POST /: Allow" "GET, HEAD" "$(header Allow)"
expect_eq "POST /: a JSON error, as every route" '{"error":"Method not allowed"}' "$BODY"

# serving the page is a static body: the pool sees nothing of 50 views
req /api/metrics/pool
before=$(jq -c '.pool.counters | [.acquires, .queries]' <<<"$BODY")
for _ in $(seq 1 50); do curl -s --max-time 10 -o /dev/null "$BASE/"; done
req /api/metrics/pool
expect_eq "50 views of /: no acquire, no query" "$before" \
	"$(jq -c '.pool.counters | [.acquires, .queries]' <<<"$BODY")"
# 50 views, the GET and the HEAD above
expect_ge "the views are counted as route=\"/\"" 52 \
	"$(counter 'pqpool_http_requests_total{route="/",code="200"}')"

# ---- in the browser ----------------------------------------------------------------

health_key='pqpool_http_requests_total{route="/api/health/database",code="200"}'
metrics_key='pqpool_http_requests_total{route="/api/metrics/database",code="200"}'
h0=$(counter "$health_key")
m0=$(counter "$metrics_key")
req /api/metrics/pool
q0=$(jq '.pool.counters.queries' <<<"$BODY")

browse "$tmp/dom.html" --dump-dom
expect_eq "chromium --dump-dom: exit status" 0 "$BROWSER_RC"
echo "     (chromium took ${BROWSER_MS} ms for ${BUDGET_MS} ms of virtual time)"
h1=$(counter "$health_key")
m1=$(counter "$metrics_key")
# the JSON routes at about the moment the page last polled them (health
# last: its query must not count as the page's)
req /api/metrics/pool
pool_json=$BODY
q1=$(jq '.pool.counters.queries' <<<"$pool_json")
req /api/metrics/database
metrics_json=$BODY
req /api/health/database
health_json=$BODY

dom_read "$tmp/dom.html"
expect_eq "the page read the health route" live "$(dom main.data-health)"
expect_eq "the page read the metrics routes" live "$(dom main.data-metrics)"
expect_eq "the page says it is live" live "$(dom conn.data-state)"
expect_eq "health status as the route gives it" "$(jq -r .status <<<"$health_json")" \
	"$(dom health-status.text)"
expect_eq "health status as a data attribute" "$(jq -r .status <<<"$health_json")" \
	"$(dom health-status.data-status)"
expect_eq "health: connections" "$(jq -r .data.connectionCount <<<"$health_json")" \
	"$(dom health-connections.text)"
expect_match "health: a response time in ms" '^[0-9]+(\.[0-9]+)?$' "$(dom health-response.text)"
expect_match "health: the last check's time" '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z$' \
	"$(dom health-last-check.datetime)"
expect_eq "health: no error shown" "" "$(dom health-error.text)"
expect_eq "pool: total" "$(jq -r .metrics.totalConnections <<<"$metrics_json")" "$(dom pool-total.text)"
expect_eq "pool: the maximum (DB_POOL_MAX=13)" "$(jq -r .pool.max <<<"$pool_json")" "$(dom pool-max.text)"
expect_eq "pool: the minimum (DB_POOL_MIN=3)" "$(jq -r .pool.min <<<"$pool_json")" "$(dom pool-min.text)"
expect_eq "pool: waiting" "$(jq -r .metrics.waitingConnections <<<"$metrics_json")" \
	"$(dom pool-waiting.text)"
active=$(dom pool-active.text) idle=$(dom pool-idle.text)
if [[ $active =~ ^[0-9]+$ && $idle =~ ^[0-9]+$ ]]; then
	expect_eq "pool: active + idle = total" "$(dom pool-total.text)" $((active + idle))
else
	fail "pool: active + idle = total" "active: $active, idle: $idle"
fi
expect_match "pool: the bar says it in words" '^[0-9]+ active and [0-9]+ idle of at most 13 connections; 0 callers waiting$' \
	"$(dom pool-bar-label.text)"
expect_eq "utilization level" "$(jq -r .status.utilization <<<"$metrics_json")" "$(dom util-level.text)"
expect_eq "recommendations: as many as the route gives" \
	"$(jq -r '.status.recommendations | length' <<<"$metrics_json")" \
	"$(dom util-recommendations.data-count)"
expect_eq "healthy (errors below 5 %)" "$(jq -r 'if .status.healthy then "yes" else "no" end' <<<"$metrics_json")" \
	"$(dom util-healthy.text)"
if has auth.hidden; then pass "the token form stays hidden when the metrics are open"; else
	fail "the token form stays hidden when the metrics are open"
fi
for c in chart-throughput chart-latency chart-util; do
	expect_eq "$c: an image with a name and a description" "img" "$(dom $c.role)"
	expect_match "$c: its description is there" '[a-z]' "$(dom "$(dom $c.aria-describedby)".text)"
done
expect_ge "utilization chart: a point per poll" 3 "$(dom chart-util.data-points)"
expect_ge "throughput chart: a point per interval between polls" 2 "$(dom chart-throughput.data-points)"
expect_match "utilization chart: drawn as a line" '<path class="line s3" d="M[0-9.]+,[0-9.]+L' \
	"$(grep -o '<svg id="chart-util".*</svg>' "$tmp/dom.html" | head -c 20000)"

# the poll intervals hold (virtual time: polls at 0, 10, 20 s and 0, 5, ... 20 s)
# and the page costs the database nothing but the health checks it asks for
expect_ge "health polled" 1 $((h1 - h0))
expect_le "health polled every 10 s: at most 3 in ${BUDGET_MS} ms" 3 $((h1 - h0))
expect_ge "metrics polled every 5 s: 3 or more in ${BUDGET_MS} ms" 3 $((m1 - m0))
expect_le "metrics polled every 5 s: at most 5 in ${BUDGET_MS} ms" 5 $((m1 - m0))
expect_le "queries run for the page: no more than its health checks" $((h1 - h0)) $((q1 - q0))

# ---- screenshots --------------------------------------------------------------------

browse "$tmp/shot.out" --screenshot="$tmp/light.png"
expect_eq "chromium --screenshot: exit status" 0 "$BROWSER_RC"
read -r w h ncolors light_bg < <(png_check "$tmp/light.png" 2>/dev/null) || true
expect_eq "screenshot: the window's size" "1280 900" "${w:-?} ${h:-?}"
expect_ge "screenshot: not blank (100 colors or more)" 100 "${ncolors:-0}"
expect_ge "screenshot: a light background by default" 200 "${light_bg:-0}"

browse "$tmp/shot.out" --screenshot="$tmp/dark.png" --force-dark-mode
read -r w h ncolors dark_bg < <(png_check "$tmp/dark.png" 2>/dev/null) || true
expect_ge "dark screenshot: not blank" 100 "${ncolors:-0}"
expect_le "prefers-color-scheme: dark gives a dark background" 55 "${dark_bg:-255}"

if [ -n "${PQPOOL_PAGE_SCREENSHOT:-}" ]; then
	wrk -t1 -c8 -d60s "$BASE/api/health/database" >/dev/null 2>&1 &
	load_pid=$!
	sleep 3
	BUDGET_MS=300000 browse "$tmp/shot.out" --screenshot="$PQPOOL_PAGE_SCREENSHOT"
	kill "$load_pid" 2>/dev/null
	wait "$load_pid" 2>/dev/null
	load_pid=""
	read -r w h ncolors light_bg < <(png_check "$PQPOOL_PAGE_SCREENSHOT" 2>/dev/null) || true
	expect_ge "the screenshot for $PQPOOL_PAGE_SCREENSHOT: not blank" 100 "${ncolors:-0}"
fi

# ---- with METRICS_TOKEN ------------------------------------------------------------

serve_stop
token="page-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
secrets+=("$token")
serve_start DB_POOL_MAX=13 DB_POOL_MIN=3 "METRICS_TOKEN=$token" || {
	serve_finish
	exit 1
}
req /
expect_eq "with a token: the page is open" 200 "$CODE"
browse "$tmp/dom.html" --dump-dom
expect_eq "chromium (token): exit status" 0 "$BROWSER_RC"
dom_read "$tmp/dom.html"
expect_eq "with a token: health is shown" live "$(dom main.data-health)"
expect_eq "with a token: health status" "$(curl -s "$BASE/api/health/database" | jq -r .status)" \
	"$(dom health-status.text)"
expect_eq "with a token: the metrics locked" locked "$(dom main.data-metrics)"
expect_eq "with a token: the page says so" "Metrics need a token" "$(dom conn.text)"
if has auth.hidden; then fail "with a token: the token form is shown"; else pass "with a token: the token form is shown"; fi
expect_eq "with a token: the form's field has a label" "auth-token" "$(dom auth-token.id)"
expect_match "with a token: the page explains where the token is kept" 'sessionStorage only' "$(dom auth.text)"
expect_eq "with a token: no figure shown" "–" "$(dom pool-total.text)"
refused=$(curl -s -H "Authorization: Bearer $token" "$BASE/metrics" |
	awk '$1 == "pqpool_http_requests_total{route=\"/api/metrics/database\",code=\"401\"}" { print $2 }')
expect_eq "with a token: one refused round, then the page stops asking" 1 "${refused:-0}"

serve_stop
serve_finish
