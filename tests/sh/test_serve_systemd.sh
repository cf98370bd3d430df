#!/usr/bin/env bash
# test_serve_systemd.sh — `pqpool serve` as a Type=notify service: against a
# datagram socket of its own (a path, then an abstract name), READY=1 comes
# once the port accepts connections, WATCHDOG=1 at half of WATCHDOG_USEC,
# STOPPING=1 on SIGTERM, in that order; bad NOTIFY_SOCKET, WATCHDOG_USEC and
# WATCHDOG_PID values are warnings and the service runs on. Then the unit
# file as installed: systemd-analyze verify, its security exposure, and the
# example environment file accepted as configuration.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/serve_lib.sh"

command -v python3 >/dev/null 2>&1 || {
	echo "FAIL python3 not found: run scripts/deps.sh"
	exit 1
}

# The service manager's end: binds the address (argv[1]: a path, or @name
# for the abstract namespace) and writes "<monotonic ms> <datagram>" a line,
# its newlines as '|'. When READY=1's STATUS names the URL, connects to it at
# once and writes "CONNECT ok" or "CONNECT fail <why>": READY=1 must not come
# before the port is bound. Ends by itself after argv[3] seconds.
cat >"$tmp/recv.py" <<'EOF'
import os, socket, sys, time
addr, out, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
ms = lambda: int(time.monotonic() * 1000)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
if not addr.startswith("@") and os.path.exists(addr):
    os.unlink(addr)  # an earlier receiver's
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
s.settimeout(0.1)
f = open(out, "a", buffering=1)
f.write("%d BOUND\n" % ms())
end = time.monotonic() + limit
while time.monotonic() < end:
    try:
        data = s.recv(4096)
    except socket.timeout:
        continue
    text = data.decode("utf-8", "replace")
    f.write("%d %s\n" % (ms(), text.replace("\n", "|")))
    for line in text.split("\n"):
        if line.startswith("STATUS=listening on http://"):
            host, port = line[len("STATUS=listening on http://"):].rsplit(":", 1)
            try:
                socket.create_connection((host.strip("[]"), int(port)), timeout=1).close()
                f.write("%d CONNECT ok %s\n" % (ms(), port))
            except OSError as e:
                f.write("%d CONNECT fail %s\n" % (ms(), e))
EOF

RPID="" # the receiver
ROUT="" # what it received

# recv_start <address>: starts a receiver and waits until it is bound.
recv_start() {
	recv_stop
	ROUT="$tmp/recv.$runs.$RANDOM"
	: >"$ROUT"
	timeout -s KILL 120 python3 "$tmp/recv.py" "$1" "$ROUT" 100 &
	RPID=$!
	wait_line ' BOUND$' 5000 || fail "the receiver binds $1" "$(cat "$ROUT")"
}
recv_stop() {
	[ -n "$RPID" ] || return 0
	kill "$RPID" 2>/dev/null
	wait "$RPID" 2>/dev/null
	RPID=""
}
# wait_line <regex> <timeout_ms>: until a line received matches.
wait_line() {
	local deadline=$(($(now_ms) + $2))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		grep -Eq -- "$1" "$ROUT" && return 0
		sleep 0.02
	done
	return 1
}
# kinds: what arrived, one word a datagram (READY, WATCHDOG, STOPPING, ...)
kinds() { awk '$2 != "BOUND" && $2 != "CONNECT" { sub(/=.*/, "", $2); print $2 }' "$ROUT"; }
count() { grep -c -- "$1" "$ROUT"; }
# watchdog_gaps: milliseconds between consecutive WATCHDOG=1
watchdog_gaps() { awk '$2 == "WATCHDOG=1" { if (t) print $1 - t; t = $1 }' "$ROUT"; }

cleanup_systemd() {
	recv_stop
	serve_cleanup
}
trap cleanup_systemd EXIT

# ---- a path; the watchdog every 200 ms -----------------------------------------------

sock="$tmp/notify.sock"
recv_start "$sock"
serve_start "NOTIFY_SOCKET=$sock" WATCHDOG_USEC=400000 || { serve_finish; exit 1; }
wait_line ' READY=1' 5000
ready=$(grep ' READY=1' "$ROUT" | head -n 1)
expect_match "path: READY=1 arrives, with the URL in STATUS" \
	"^[0-9]+ READY=1\|STATUS=listening on http://127\.0\.0\.1:$PORT$" "$ready"
wait_line ' CONNECT ' 3000
expect_match "path: the port accepts a connection as soon as READY=1 arrives" \
	"^[0-9]+ CONNECT ok $PORT$" "$(grep ' CONNECT ' "$ROUT" | head -n 1)"
sleep 1.6
gaps=$(watchdog_gaps)
n=$(count ' WATCHDOG=1$')
expect_less "path: at least 6 WATCHDOG=1 in 1.6 s at one per 200 ms" "$n" 5
expect_less "path: at most 12 WATCHDOG=1 in 1.6 s" 13 "$n"
expect_less "path: the shortest gap between WATCHDOG=1 is about 200 ms, above 150" \
	"$(sort -n <<<"$gaps" | head -n 1)" 150
expect_less "path: the longest gap between WATCHDOG=1 is below WATCHDOG_USEC (ms)" \
	400 "$(sort -n <<<"$gaps" | tail -n 1)"
expect_match "path: a watchdog below twice DB_CONNECTION_TIMEOUT is warned about" \
	'WARN  WATCHDOG_USEC=400000 is not above twice DB_CONNECTION_TIMEOUT=5000 ms' "$(cat "$SLOG")"
req /livez
expect_eq "path: the service answers" 200 "$CODE"
serve_signal TERM
wait_line ' STOPPING=1' 5000
serve_wait 15000
expect_eq "path: exit status after SIGTERM" 0 "$RC"
expect_match "path: STOPPING=1 on SIGTERM, with the drain in STATUS" \
	'^[0-9]+ STOPPING=1\|STATUS=draining 0 request\(s\) in flight$' "$(grep ' STOPPING=1' "$ROUT")"
sleep 0.3 # anything sent later would be in by now
expect_match "path: READY, then WATCHDOG only, then STOPPING last" \
	'^READY (WATCHDOG )+STOPPING $' "$(kinds | tr '\n' ' ')"
expect_eq "path: each message once (READY, STOPPING)" "1 1" \
	"$(count ' READY=1') $(count ' STOPPING=1')"
expect_no_match "path: nothing logged about notifying" 'NOTIFY_SOCKET' "$(cat "$SLOG")"

# ---- an abstract name; a watchdog of 20 s -----------------------------------------------

name="@pqpool-test-$$-$RANDOM"
recv_start "$name"
serve_start "NOTIFY_SOCKET=$name" WATCHDOG_USEC=20000000 || { serve_finish; exit 1; }
wait_line ' READY=1' 5000
wait_line ' CONNECT ' 3000
expect_match "abstract: READY=1, and the port accepts at once" "^[0-9]+ CONNECT ok $PORT$" \
	"$(grep ' CONNECT ' "$ROUT" | head -n 1)"
sleep 0.5
expect_eq "abstract: one WATCHDOG=1 at once, the next 10 s later" 1 "$(count ' WATCHDOG=1$')"
expect_no_match "abstract: a 20 s watchdog draws no warning" 'WARN' "$(cat "$SLOG")"
serve_stop
wait_line ' STOPPING=1' 3000
expect_match "abstract: READY, WATCHDOG, STOPPING" '^READY WATCHDOG STOPPING $' "$(kinds | tr '\n' ' ')"

# ---- the watchdog is another process's ----------------------------------------------------

recv_start "$sock"
serve_start "NOTIFY_SOCKET=$sock" WATCHDOG_USEC=400000 "WATCHDOG_PID=$$" ||
	{ serve_finish; exit 1; }
wait_line ' READY=1' 5000
sleep 0.5
expect_eq "WATCHDOG_PID of another process: READY=1, no WATCHDOG=1" "READY " "$(kinds | tr '\n' ' ')"
expect_match "WATCHDOG_PID of another process: said at info" \
	"INFO  WATCHDOG_PID=$$ is not this process \([0-9]+\): no watchdog pings" "$(cat "$SLOG")"
serve_stop

# ---- bad values: a warning, and the service runs on -------------------------------------------

for bad in abc 0 -1 ' 400000' 1e6 18446744073709551616 9223372036854776; do
	recv_start "$sock"
	serve_start "NOTIFY_SOCKET=$sock" "WATCHDOG_USEC=$bad" || { serve_finish; exit 1; }
	wait_line ' READY=1' 5000
	sleep 0.3
	expect_match "WATCHDOG_USEC=\"$bad\": a warning naming it" \
		"WARN  WATCHDOG_USEC=\"$bad\": expected an integer from 1 to 9223372036854775 \(microseconds\); no watchdog pings" \
		"$(cat "$SLOG")"
	expect_eq "WATCHDOG_USEC=\"$bad\": READY=1 all the same, no WATCHDOG=1" "READY " \
		"$(kinds | tr '\n' ' ')"
	req /livez
	expect_eq "WATCHDOG_USEC=\"$bad\": the service answers" 200 "$CODE"
	serve_stop
done
recv_start "$sock"
serve_start "NOTIFY_SOCKET=$sock" WATCHDOG_USEC=400000 WATCHDOG_PID=12x || { serve_finish; exit 1; }
wait_line ' READY=1' 5000
sleep 0.3
expect_match "WATCHDOG_PID=\"12x\": a warning" \
	'WARN  WATCHDOG_PID="12x": expected a process id, an integer from 1 to [0-9]+; no watchdog pings' \
	"$(cat "$SLOG")"
expect_eq "WATCHDOG_PID=\"12x\": READY=1, no WATCHDOG=1" "READY " "$(kinds | tr '\n' ' ')"
serve_stop
recv_stop

long="/$(printf 'x%.0s' {1..107})" # 108 bytes: one past sun_path's room with its NUL
for bad in relative/notify.sock @ "$long" "vsock:2:1234"; do
	serve_start "NOTIFY_SOCKET=$bad" WATCHDOG_USEC=400000 || { serve_finish; exit 1; }
	req /livez
	expect_eq "NOTIFY_SOCKET of ${#bad} bytes (${bad:0:20}): the service answers" 200 "$CODE"
	serve_stop
	log=$(cat "$SLOG")
	expect_match "NOTIFY_SOCKET=\"${bad:0:20}\": a warning naming it and the rule" \
		'WARN  NOTIFY_SOCKET=".*": expected an absolute path of at most 107 bytes, or @ and an abstract socket name of 1 to 107 bytes; not notifying the service manager' \
		"$log"
	expect_no_match "NOTIFY_SOCKET=\"${bad:0:20}\": no watchdog warning without a socket" \
		'WATCHDOG_USEC' "$log"
done

# nobody listening there: one warning, not one per ping
serve_start "NOTIFY_SOCKET=$tmp/nobody.sock" WATCHDOG_USEC=200000 || { serve_finish; exit 1; }
sleep 1
req /livez
expect_eq "NOTIFY_SOCKET with nobody bound: the service answers" 200 "$CODE"
serve_stop
expect_eq "NOTIFY_SOCKET with nobody bound: warned once" 1 \
	"$(grep -c "WARN  NOTIFY_SOCKET=$tmp/nobody.sock: cannot notify the service manager: No such file or directory (further failures are not logged)" "$SLOG")"

# a path with a line break is a path: shown with '?', it forges no log line
serve_start $'NOTIFY_SOCKET=/tmp/a\nWARN  forged' || { serve_finish; exit 1; }
serve_stop
expect_match "NOTIFY_SOCKET with a line break: shown on one line" \
	'WARN  NOTIFY_SOCKET=/tmp/a\?WARN  forged: cannot notify' "$(cat "$SLOG")"
expect_no_match "NOTIFY_SOCKET with a line break: no forged line" '^WARN  forged' "$(cat "$SLOG")"

# not under a service manager: a WATCHDOG_USEC alone is nobody's business
serve_start WATCHDOG_USEC=400000 || { serve_finish; exit 1; }
serve_stop
expect_no_match "no NOTIFY_SOCKET: nothing said about notifying" 'NOTIFY|WATCHDOG' "$(cat "$SLOG")"

# ---- the unit file and the example environment file, as installed ----------------------------

prefix="$tmp/prefix"
if cmake --install "${PQPOOL_BUILD:?}" --prefix "$prefix" >"$tmp/install.log" 2>&1; then
	pass "cmake --install into $prefix"
else
	fail "cmake --install into $prefix" "$(tail -n 5 "$tmp/install.log")"
fi
unit="$prefix/lib/systemd/system/pqpool.service"
envex="$prefix/share/doc/pqpool/pqpool.env.example"
expect_eq "the unit's ExecStart names the installed binary" "ExecStart=$prefix/bin/pqpool serve" \
	"$(grep '^ExecStart=' "$unit" 2>&1)"
expect_match "the unit: Type=notify with a watchdog" '^WatchdogSec=' "$(grep -E '^(Type|WatchdogSec)=' "$unit")"
expect_no_match "the unit: no ExecReload (serve does not reload)" '^ExecReload=' "$(cat "$unit")"
if command -v systemd-analyze >/dev/null 2>&1; then
	out=$(systemd-analyze verify --man=no "$unit" 2>&1)
	rc=$?
	expect_eq "systemd-analyze verify: no complaint (exit status)" 0 "$rc"
	expect_eq "systemd-analyze verify: nothing printed" "" "$out"
	out=$(systemd-analyze security --offline=true --threshold=20 "$unit" 2>&1)
	rc=$?
	expect_eq "systemd-analyze security: exposure at most 2.0 ($(tail -n 1 <<<"$out"))" 0 "$rc"
else
	echo "skip systemd-analyze verify/security: systemd-analyze not installed (scripts/deps.sh installs systemd)"
fi
cp "$envex" "$work/.env.local"
run -- config
rm -f "$work/.env.local"
expect_eq "the example env file is a valid configuration (pqpool config)" 0 "$RC"
expect_match "the example env file: its DATABASE_URL, password masked" \
	'^DATABASE_URL=postgresql://hyperpage:\*\*\*\*@127\.0\.0\.1:5432/hyperpage +# \.env\.local' "$OUT"
expect_no_match "the example env file: its placeholder password not shown" 'CHANGE-ME' "$OUT$ERR"

serve_finish
