#!/usr/bin/env bash
# fault_halfopen.sh — a half-open network: the service's packets to and from
# PostgreSQL silently dropped (nothing refused, no reset), as when a link or
# a firewall in between dies. The service runs in a network namespace of
# its own and reaches the cluster over a veth pair; taking the host's end
# down drops everything on the wire. Asserted: health turns 503 within the
# configured deadlines, /livez answers at once throughout (no thread hangs),
# health comes back by itself when packets flow again, and SIGTERM while the
# network is still cut ends the service cleanly within its bounds.
# Needs root (network namespaces): skipped otherwise, exit 77.
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null 2>&1; then
	echo "SKIP half-open: needs root for network namespaces"
	exit 77
fi
ns=pqpf$$
vh=pqfh$$ # the host's end of the veth pair
vn=pqfn$$ # the namespace's end
if ! ip netns add "$ns" 2>/dev/null; then
	echo "SKIP half-open: needs root for network namespaces (ip netns add failed)"
	exit 77
fi
net_cleanup() {
	ip link del "$vh" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
}
# an unlikely /30, not one this machine already uses
for _ in $(seq 1 20); do
	sub="10.231.$((RANDOM % 250 + 1))"
	ip -4 addr | grep -q " $sub\." || break
done
hostip=$sub.1
nsip=$sub.2
if ! { ip link add "$vh" type veth peer name "$vn" netns "$ns" &&
	ip addr add "$hostip/30" dev "$vh" && ip link set "$vh" up &&
	ip netns exec "$ns" ip addr add "$nsip/30" dev "$vn" &&
	ip netns exec "$ns" ip link set "$vn" up &&
	ip netns exec "$ns" ip link set lo up; } 2>/dev/null; then
	net_cleanup
	echo "SKIP half-open: needs root for network namespaces (veth setup failed)"
	exit 77
fi

here=$(cd "$(dirname "$0")" && pwd)
. "$here/faults_lib.sh"
trap 'cluster_stopped=0; ip link set "$vh" up 2>/dev/null; load_stop; [ -n "${lz:-}" ] && kill "$lz" 2>/dev/null; serve_cleanup; fault_cleanup; net_cleanup' EXIT

# the cluster listens on the host's end of the veth too
echo "host all all $sub.0/30 scram-sha-256" >>"$pgdata/pg_hba.conf"
fault_pg_settings "listen_addresses=127.0.0.1,$hostip"
pg_accepting "$hostip" || { fail "the cluster listens on $hostip"; serve_finish; exit 1; }

# Everything the service does, and every request to it, happens inside the
# namespace; `ip netns exec` execs, so $SPID is the service itself.
ipbin=$(command -v ip)
realbin=$bin
bin="$tmp/in-netns"
printf '#!/bin/sh\nexec %s netns exec %s %s "$@"\n' "$ipbin" "$ns" "$realbin" >"$bin"
chmod +x "$bin"
curlbin=$(command -v curl)
curl() { "$ipbin" netns exec "$ns" "$curlbin" "$@"; }
LOADGEN_PREFIX=("$ipbin" netns exec "$ns")

timeout_ms=2000
shutdown_ms=3000
nsurl="postgresql://hyperpage:$password@$hostip:$pgport/hyperpage?tcp_user_timeout=3000&keepalives_idle=2&keepalives_interval=1&keepalives_count=2"
serve_start "DATABASE_URL=$nsurl" DB_CONNECTION_TIMEOUT=$timeout_ms DB_QUERY_TIMEOUT=$timeout_ms \
	DB_POOL_MIN=2 DB_POOL_MAX=5 SHUTDOWN_TIMEOUT=$shutdown_ms || { serve_finish; exit 1; }
BASE="http://127.0.0.1:$PORT"
req /api/health/database
expect_eq "before: healthy over the veth" 200 "$CODE"

# /livez alongside, with a short request timeout: any stall shows
"${LOADGEN_PREFIX[@]}" "$loadgen" -p "$PORT" -P /livez -r 50 -c 2 -d 40000 -t 1000 \
	-o "$tmp/livez" >"$tmp/livez.summary" 2>&1 &
lz=$!
load_start /api/health/database 50 8 40000 10000
sleep 1

# ---- cut: every packet dropped --------------------------------------------
t_cut=$(now_ms)
ip link set "$vh" down
unhealthy=""
while [ $(($(now_ms) - t_cut)) -lt 15000 ]; do
	req /api/health/database
	if [ "$CODE" = 503 ]; then
		unhealthy=$(($(now_ms) - t_cut))
		break
	fi
	sleep 0.1
done
cut_body=$BODY
req /livez
expect_eq "cut: /livez 200" 200 "$CODE"
expect_less "cut: /livez at once (ms)" 500 "$TIME_MS"
sleep 3 # a while cut, under load

# ---- restore ----------------------------------------------------------------
t_restore=$(now_ms)
ip link set "$vh" up
healthy=""
while [ $(($(now_ms) - t_restore)) -lt 15000 ]; do
	req /api/health/database
	if [ "$CODE" = 200 ]; then
		healthy=$(($(now_ms) - t_restore))
		break
	fi
	sleep 0.1
done
sleep 2
load_stop
kill -TERM "$lz" 2>/dev/null
wait "$lz" 2>/dev/null
lz=""
load_stats "$t_restore"
read -r lsent lok llong < <(awk '{ n++; if ($3 == 200) ok++; d = $2 - $1; if (d > m) m = d }
	END { print n + 0, ok + 0, m + 0 }' "$tmp/livez")
fault_summary "half-open" "sent=$SENT ok=$OK failed=$FAILED outage_ms=$((t_restore - t_cut))" \
	"recovery_ms=${healthy:-none} unhealthy_after_ms=${unhealthy:-none} longest_ms=$LONGEST" \
	"livez_sent=$lsent livez_ok=$lok livez_longest_ms=$llong"

if [ -n "$unhealthy" ]; then
	# a check is answered within DB_CONNECTION_TIMEOUT of its arrival,
	# however long it waited for a connection held by stuck probes
	expect_less "cut: health 503 within DB_CONNECTION_TIMEOUT + 1 s (ms)" \
		$((timeout_ms + 1000)) "$unhealthy"
else
	fail "cut: health turns 503 within 15 s"
fi
expect_jq "cut: unhealthy, saying it timed out" \
	'.status == "unhealthy" and (.data.error | test("timed out"))' "$cut_body"
expect_less "the load ran (requests)" "$SENT" 100
expect_eq "no failure before the cut" 0 "$(load_count "\$3 != 200 && \$1 < $t_cut")"
expect_eq "every failure was an HTTP 503 (no request hung or was dropped)" 0 \
	"$(load_count '$3 != 200 && $3 != 503')"
expect_less "no health request outlived DB_CONNECTION_TIMEOUT + 1 s (ms)" \
	$((timeout_ms + 1000)) "$LONGEST"
if [ -n "$healthy" ]; then
	pass "restored: health 200 after $healthy ms"
	expect_less "restored: healthy within DB_CONNECTION_TIMEOUT + 3 s (ms)" $((timeout_ms + 3000)) "$healthy"
	expect_eq "restored: no failure ending later than 1 s after the first 200" 0 \
		"$(load_count "\$3 != 200 && \$2 > $((t_restore + healthy + 1000))")"
else
	fail "restored: health 200 within 15 s"
fi
expect_less "/livez: requests sent" "$lsent" 200
expect_eq "/livez: every request answered 200" "$lsent" "$lok"
expect_less "/livez: the slowest answer (ms)" 500 "$llong"
if pool_settled 3000; then
	pass "no lease and no waiter left once the load stopped"
else
	fail "no lease and no waiter left once the load stopped" "last: $POOL_JSON"
fi

# ---- SIGTERM while the network is cut, with checks in flight ----------------
ip link set "$vh" down
load_start /api/health/database 50 8 20000 10000
sleep 1
serve_signal TERM
serve_wait $((shutdown_ms + timeout_ms + 5000))
load_stop
expect_eq "cut + SIGTERM: exit status 0" 0 "$RC"
# the drain (SHUTDOWN_TIMEOUT), then a probe still running ends by its deadline
expect_less "cut + SIGTERM: exits within SHUTDOWN_TIMEOUT + DB_CONNECTION_TIMEOUT + 1 s (ms)" \
	$((shutdown_ms + timeout_ms + 1000)) "$EXIT_MS"
fault_summary "half-open-sigterm" "exit_ms=$EXIT_MS rc=$RC"
ip link set "$vh" up
serve_finish
