#!/usr/bin/env bash
# test_replica.sh — scripts/replica.sh, the replication test rig, through one
# failover in sync mode:
#  - bad arguments are refused with a message naming the bad one, and `stop`
#    removes nothing that is not a rig;
#  - `start ... sync`: a is the primary, b its synchronous standby, streaming;
#    a row committed on a is read on b; rig.env is mode 600; the password
#    shows nowhere; the URL of `url` reaches the primary with
#    target_session_attrs=read-write;
#  - with b halted a commit on a waits (synchronous_commit = on in the rig's
#    settings, no SET needed) and completes once b is up again;
#  - crash a, promote b: b is the primary and commits alone; `rebuild a b`:
#    a is b's synchronous standby and receives b's rows; the URL now reaches b;
#  - `start ... async`: the standby streams asynchronously, a commit on the
#    primary does not wait for a halted standby;
#  - `stop` removes the rig and its servers.
# Bounded: every step shares one minute. Ports: two free random loopback pairs,
# or PQPOOL_TEST_REPLICA_PORT and the three ports after it.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=${PQPOOL_SRC:-$(cd "$here/../.." && pwd)}
# shellcheck source=assert.sh
. "$src/tests/sh/assert.sh"
replica="$src/scripts/replica.sh"

tmp=$(mktemp -d /tmp/pqpool-replica.XXXXXX)
chmod 755 "$tmp" # the postgres OS user enters it to reach the nodes
rig="$tmp/rig"
rig2="$tmp/rig2"
bg=""
cleanup() {
	# timeout leads a process group of its own (the commit left waiting)
	[ -n "$bg" ] && kill -TERM -- "-$bg" 2>/dev/null
	"$replica" stop "$rig" >/dev/null 2>&1
	"$replica" stop "$rig2" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

started=$SECONDS
deadline=$((SECONDS + 60))
# r <args...>: replica.sh, killed at the deadline; past it, not run at all.
# An interrupt ends it too: timeout leads a process group of its own, which
# Ctrl-C does not reach, and a foreground command would be waited for to its
# end before a trap runs; `wait` returns at once. The trap is set here, in
# the shell that waits, a command substitution's too (it inherits none).
# Its stdin is /dev/null (a background command's).
r() {
	local left=$((deadline - SECONDS)) pid rc
	[ "$left" -gt 0 ] || { echo "out of time: replica.sh $*" >&2; return 124; }
	timeout "$left" "$replica" "$@" &
	pid=$!
	trap 'kill -TERM -- "-$pid" 2>/dev/null; exit 130' INT TERM
	wait "$pid"
	rc=$?
	trap 'exit 130' INT TERM
	return "$rc"
}
# q <dir> <node> <sql>: one value from the node's database hyperpage
q() { r psql "$1" "$2" -d hyperpage -XAtq -v ON_ERROR_STOP=1 -c "$3" 2>&1; }
# eventually <what> <expected> <dir> <node> <sql>: the value within 5 s
eventually() {
	local got="" i
	for i in $(seq 1 25); do
		got=$(q "$3" "$4" "$5")
		[ "$got" = "$2" ] && break
		[ "$i" -lt 25 ] && sleep 0.2
	done
	expect_eq "$1" "$2" "$got"
}
finish() {
	expect_less "the whole test within 60 s" 61 $((SECONDS - started))
	echo "$checks checks, $fails failed"
	[ "$fails" -eq 0 ] && exit 0
	exit 1
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
base=${PQPOOL_TEST_REPLICA_PORT:-}
if [ -z "$base" ]; then
	for _ in $(seq 1 20); do
		p=$((20000 + RANDOM % 30000))
		port_free "$p" && port_free $((p + 1)) && port_free $((p + 2)) && port_free $((p + 3)) && { base=$p; break; }
	done
fi
[ -n "$base" ] || { fail "four free loopback ports"; finish; }
pa=$base pb=$((base + 1))

# ---- arguments ----------------------------------------------------------------
out=$(r start "$rig" 55x "$pb" pw sync 2>&1)
rc=$?
expect_ne "start with a port that is no number fails" 0 "$rc"
expect_match "and names it" "port_a must be a port number.*55x" "$out"
out=$(r start "$rig" "$pa" "$pb" pw semi 2>&1)
expect_match "start with an unknown mode names the two" "mode is sync or async, not 'semi'" "$out"
out=$(r start "$rig" "$pa" "$pa" pw 2>&1)
expect_match "start with one port twice is refused" "two ports" "$out"
expect_eq "no rig was made by the refusals" no "$([ -e "$rig" ] && echo yes || echo no)"
out=$(r role "$rig" c 2>&1)
expect_match "a node that is not a or b is refused" "a node is a or b, not 'c'" "$out"
mkdir "$tmp/notarig" && touch "$tmp/notarig/keep"
out=$(r start "$tmp/notarig" "$pa" "$pb" pw 2>&1)
expect_match "start in a folder that is not empty is refused" "not an empty folder" "$out"
out=$(r stop "$tmp/notarig" 2>&1)
rc=$?
expect_ne "stop of a folder without rig.env fails" 0 "$rc"
expect_eq "and removes nothing" yes "$([ -f "$tmp/notarig/keep" ] && echo yes || echo no)"

# ---- a synchronous pair -----------------------------------------------------------
# a password that must be percent-encoded in a URL
pw="r@p:l/i%c a$RANDOM"
t0=$(now_ms)
out=$(r start "$rig" "$pa" "$pb" "$pw" sync 2>&1)
rc=$?
expect_eq "start sync: exit status" 0 "$rc"
[ "$rc" -eq 0 ] || { echo "$out"; finish; }
pass "start sync took $(($(now_ms) - t0)) ms"
expect_absent "start says nothing with the password" "$pw" "$out"
expect_eq "rig.env is mode 600" 600 "$(stat -c %a "$rig/rig.env")"
expect_eq "rig.env records the mode and the ports" "MODE=sync PORT_a=$pa PORT_b=$pb" \
	"$(grep -E '^(MODE|PORT_a|PORT_b)=' "$rig/rig.env" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "role a" primary "$(r role "$rig" a)"
expect_eq "role b" standby "$(r role "$rig" b)"
expect_eq "a's pg_stat_replication: b streaming, synchronous" "b|streaming|sync" \
	"$(r psql "$rig" a -XAtc "SELECT application_name, state, sync_state FROM pg_stat_replication")"
expect_eq "synchronous_commit is on on a and b" "on on" \
	"$(r psql "$rig" a -XAtc 'SHOW synchronous_commit') $(r psql "$rig" b -XAtc 'SHOW synchronous_commit')"
expect_eq "b listens on its own port" "$pb" "$(r psql "$rig" b -XAtc 'SHOW port')"

expect_eq "a table and a row on a" "" "$(q "$rig" a "CREATE TABLE rig (n int, node text); INSERT INTO rig VALUES (1, 'a')")"
eventually "the row is read on b" "1" "$rig" b "SELECT string_agg(n::text, ',' ORDER BY n) FROM rig"

url=$(r url "$rig")
expect_match "url: both hosts, in node order" "^postgresql://hyperpage:[^@]+@127\.0\.0\.1:$pa,127\.0\.0\.1:$pb/hyperpage$" "$url"
expect_absent "url: the password is percent-encoded" "$pw" "$url"
expect_eq "url with target_session_attrs=read-write reaches the primary a" "$pa" \
	"$(PGCONNECT_TIMEOUT=5 timeout 10 psql "$url?target_session_attrs=read-write" -XAtc 'SELECT inet_server_port()' 2>&1)"

# ---- a commit waits for the synchronous standby -----------------------------------------
r halt "$rig" b
expect_eq "halt b: role b" down "$(r role "$rig" b)"
timeout 20 "$replica" psql "$rig" a -d hyperpage -XAtq -c "INSERT INTO rig VALUES (2, 'a')" >"$tmp/wait.out" 2>&1 &
bg=$!
sleep 3
if kill -0 "$bg" 2>/dev/null; then pass "with b halted, a commit on a waits (3 s)"; else
	fail "with b halted, a commit on a waits (3 s)" "it returned: $(cat "$tmp/wait.out")"
fi
expect_eq "it waits for the synchronous standby" SyncRep \
	"$(r psql "$rig" a -XAtc "SELECT wait_event FROM pg_stat_activity WHERE query LIKE 'INSERT INTO rig%'")"
t0=$(now_ms)
r up "$rig" b
wait "$bg"
rc=$?
bg=""
expect_eq "b up again: the commit completes" 0 "$rc"
expect_less "within 10 s of b's start (ms)" 10000 $(($(now_ms) - t0))
eventually "and b has the row" "1,2" "$rig" b "SELECT string_agg(n::text, ',' ORDER BY n) FROM rig"

# ---- failover -------------------------------------------------------------------------------
r crash "$rig" a
expect_eq "crash a: role a" down "$(r role "$rig" a)"
r promote "$rig" b
expect_eq "promote b: role b" primary "$(r role "$rig" b)"
t0=$(now_ms)
expect_eq "b commits alone (no standby yet)" "" "$(q "$rig" b "INSERT INTO rig VALUES (3, 'b')")"
expect_less "without waiting (ms)" 5000 $(($(now_ms) - t0))
r rebuild "$rig" a b
expect_eq "rebuild a from b: role a" standby "$(r role "$rig" a)"
expect_eq "b's pg_stat_replication: a streaming, synchronous" "a|streaming|sync" \
	"$(r psql "$rig" b -XAtc "SELECT application_name, state, sync_state FROM pg_stat_replication")"
expect_eq "a listens on its own port again" "$pa" "$(r psql "$rig" a -XAtc 'SHOW port')"
expect_eq "a row on b" "" "$(q "$rig" b "INSERT INTO rig VALUES (4, 'b')")"
eventually "a has every row" "1,2,3,4" "$rig" a "SELECT string_agg(n::text, ',' ORDER BY n) FROM rig"
expect_eq "url with target_session_attrs=read-write now reaches b" "$pb" \
	"$(PGCONNECT_TIMEOUT=5 timeout 10 psql "$url?target_session_attrs=read-write" -XAtc 'SELECT inet_server_port()' 2>&1)"

r stop "$rig"
expect_eq "stop: the rig's folder is gone" no "$([ -e "$rig" ] && echo yes || echo no)"
if port_free "$pa" && port_free "$pb"; then pass "stop: nothing listens on its ports"; else
	fail "stop: nothing listens on its ports"
fi

# ---- an asynchronous pair --------------------------------------------------------------------
pa2=$((base + 2)) pb2=$((base + 3))
out=$(r start "$rig2" "$pa2" "$pb2" "$pw" 2>&1)
rc=$?
expect_eq "start (async, the default): exit status" 0 "$rc"
[ "$rc" -eq 0 ] || echo "$out"
expect_eq "a's pg_stat_replication: b streaming, asynchronous" "b|streaming|async" \
	"$(r psql "$rig2" a -XAtc "SELECT application_name, state, sync_state FROM pg_stat_replication")"
r halt "$rig2" b
t0=$(now_ms)
expect_eq "with b halted a commits" "" "$(q "$rig2" a "CREATE TABLE rig (n int)")"
expect_less "without waiting (ms)" 5000 $(($(now_ms) - t0))
r stop "$rig2"
expect_eq "stop: the second rig's folder is gone" no "$([ -e "$rig2" ] && echo yes || echo no)"

finish
