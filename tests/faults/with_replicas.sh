#!/usr/bin/env bash
# with_replicas.sh <program> [args]: runs a C failover test with what it
# needs to make its own primary + standby rigs (scripts/replica.sh): an env
# file (PQPOOL_TEST_ENV) naming the rig's folder, two free loopback ports
# and a random password; whatever rig is left is removed on exit.
set -u
here=$(cd "$(dirname "$0")" && pwd)
rig="$here/../../scripts/replica.sh"
state=$(mktemp -d /tmp/pqpool-failover.XXXXXX)
chmod 755 "$state" # the postgres OS user runs the nodes in it
trap '"$rig" stop "$state/rig" >/dev/null 2>&1; rm -rf "$state"' EXIT
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 30000))
		port_free "$p" && [ "$p" != "${1:-}" ] && { echo "$p"; return; }
	done
	echo "with_replicas: no free port" >&2
	exit 1
}
a=$(pick)
b=$(pick "$a")
password="pw-$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')"
cat >"$state/env" <<ENV
DATABASE_URL=postgresql://hyperpage:$password@127.0.0.1:$a,127.0.0.1:$b/hyperpage
PQPOOL_TEST_PASSWORD=$password
PQPOOL_TEST_RIG=$state/rig
PQPOOL_TEST_RIG_SCRIPT=$rig
PQPOOL_TEST_PORT_A=$a
PQPOOL_TEST_PORT_B=$b
ENV
chmod 600 "$state/env"
PQPOOL_TEST_ENV="$state/env" "$@"
