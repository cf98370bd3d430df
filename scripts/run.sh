#!/usr/bin/env bash
# run.sh — what `make run` does: runs `pqpool serve` against DATABASE_URL when it is set
# in the environment, otherwise against a private PostgreSQL cluster that it
# starts (the spec's defaults: role and database hyperpage, password
# "password") and stops again on exit.
#
#   scripts/run.sh <path-to-pqpool-binary>
#   scripts/run.sh --replicated <path-to-pqpool-binary>
#
# PQPOOL_DEV_PORT  the private cluster's port (default 55432)
# The private cluster's data stays in .pgdata (git-ignored) or, when the
# postgres OS user cannot reach the repository, in /var/tmp/pqpool-dev-pgdata.
#
# --replicated (`make run-replicated`): against the replica rig of
# scripts/replica.sh instead, a primary "a" and its streaming standby "b",
# with DATABASE_URL naming both hosts and target_session_attrs=read-write
# (libpq tries them in order and keeps the one that accepts writes);
# DATABASE_URL from the environment is not used. The rig lives in .pgrig
# (git-ignored) or /var/tmp/pqpool-dev-rig, and is removed on exit: a
# throwaway.
# PQPOOL_DEV_PORT    node a's port (default 55432)
# PQPOOL_DEV_PORT_B  node b's port (default 55433)
# PQPOOL_DEV_REPLICATION  async (the default) or sync: in sync mode a commit
#                    on the primary waits for the standby
set -euo pipefail

say() { echo "run: $*"; }
die() { echo "run: $*" >&2; exit 1; }

replicated=0
if [ "${1:-}" = --replicated ]; then
	replicated=1
	shift
fi
[ $# -eq 1 ] || die "usage: scripts/run.sh [--replicated] <path-to-pqpool-binary>"
[ -x "$1" ] || die "$1 is not an executable (build it first: make build)"
bin=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cluster="$here/pgcluster.sh"
replica="$here/replica.sh"

# private_dir <name in the repository> <elsewhere>: where the servers' data
# goes. As root the servers run as the postgres OS user (pgcluster.sh), which
# must be able to enter the repository to use a folder in it (a clone in
# /root or in a mktemp -d folder, mode 0700, it cannot). Asked from "/": it
# may not be able to enter the working directory either.
private_dir() {
	if [ "$(id -u)" -ne 0 ] || (cd / && runuser -u postgres -- test -x "$repo") 2>/dev/null; then
		echo "$repo/$1"
	else
		echo "$2"
	fi
}
note_env_local() {
	if [ -f .env.local ] &&
		grep -Eq '^[[:space:]]*(export[[:space:]]+)?DATABASE_URL[[:space:]]*=[[:space:]]*[^[:space:]#]' .env.local; then
		say "note: .env.local sets DATABASE_URL, but the $1's URL wins;" \
			"export DATABASE_URL to use another server"
	fi
}

if [ "$replicated" = 1 ]; then
	port_a=${PQPOOL_DEV_PORT:-55432}
	port_b=${PQPOOL_DEV_PORT_B:-55433}
	mode=${PQPOOL_DEV_REPLICATION:-async}
	case "$port_a" in '' | *[!0-9]*) die "PQPOOL_DEV_PORT must be a port number: $port_a" ;; esac
	case "$port_b" in '' | *[!0-9]*) die "PQPOOL_DEV_PORT_B must be a port number: $port_b" ;; esac
	case "$mode" in sync | async) ;; *) die "PQPOOL_DEV_REPLICATION is sync or async, not '$mode'" ;; esac
	rig=$(private_dir .pgrig /var/tmp/pqpool-dev-rig)
	[ -z "${DATABASE_URL:-}" ] || say "note: DATABASE_URL from the environment is not used: the replica rig's URL wins"
	note_env_local "replica rig"

	stop_rig() {
		"$replica" stop "$rig" || true
		say "stopped the replica rig (removed $rig)"
	}
	# a rig left by a run that was killed: it is a throwaway
	if [ -f "$rig/rig.env" ]; then
		"$replica" stop "$rig"
		say "removed the replica rig an earlier run left in $rig"
	fi
	trap stop_rig EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	say "starting a replica rig ($mode) in $rig: primary a on 127.0.0.1:$port_a, standby b on 127.0.0.1:$port_b"
	"$replica" start "$rig" "$port_a" "$port_b" password "$mode"
	DATABASE_URL="$("$replica" url "$rig")?target_session_attrs=read-write"
	export DATABASE_URL
	say "DATABASE_URL=postgresql://hyperpage:****@127.0.0.1:$port_a,127.0.0.1:$port_b/hyperpage?target_session_attrs=read-write"
	say "fail over: $replica crash $rig a && $replica promote $rig b"
	say "  (then $replica rebuild $rig a b; role, halt, up, psql: see its header)"
elif [ -n "${DATABASE_URL:-}" ]; then
	# shown the way pqpool shows it: masked
	shown=$("$bin" config 2>/dev/null | sed -n 's/^DATABASE_URL=\([^ ]*\).*/\1/p')
	say "using DATABASE_URL from the environment: ${shown:-(see pqpool config)}"
else
	port=${PQPOOL_DEV_PORT:-55432}
	case "$port" in '' | *[!0-9]*) die "PQPOOL_DEV_PORT must be a port number: $port" ;; esac
	datadir=$(private_dir .pgdata /var/tmp/pqpool-dev-pgdata)
	note_env_local "private cluster"

	stop_cluster() {
		"$cluster" stop "$datadir" || true
		say "stopped the private cluster (its data stays in $datadir)"
	}
	trap stop_cluster EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	say "starting a private PostgreSQL cluster in $datadir on 127.0.0.1:$port"
	"$cluster" start "$datadir" "$port" password
	export DATABASE_URL="postgresql://hyperpage:password@127.0.0.1:$port/hyperpage"
	say "DATABASE_URL=postgresql://hyperpage:****@127.0.0.1:$port/hyperpage"
fi

# ---- the main job -----------------------------------------------------------
# The service in the foreground. Ctrl-C reaches it (same process group): it
# drains, closes its pool and exits 0; then the EXIT trap above stops the
# private cluster. HOST and PORT may come from the environment or
# .env.local: ask `pqpool config`, which reads both as serve does.
setting() { "$bin" config 2>/dev/null | sed -n "s/^$1=\([^ ]*\).*/\1/p"; }
svc_host=$(setting HOST)
svc_port=$(setting PORT)
case "$svc_host" in *:*) svc_host="[$svc_host]" ;; esac # IPv6
where="http://${svc_host:-127.0.0.1}:${svc_port:-3000}"
say "starting pqpool serve; point a browser or curl at:"
[ "${svc_port:-3000}" = 0 ] && say "(PORT=0: the kernel picks the port; the 'listening on' line shows it)"
say "  $where/  (the status page)"
say "  $where/api/health/database"
say "  $where/api/metrics/database"
say "  $where/metrics  (Prometheus)   $where/livez   $where/readyz"
say "Ctrl-C stops it"
# Not ignored (an ignored SIGINT would be ignored by the service too): a
# no-op, so that this script outlives the service and reports its status.
trap ':' INT
status=0
"$bin" serve || status=$?
case "$status" in
0) say "pqpool serve stopped cleanly" ;;
2) say "pqpool serve: bad setting or option, exit status 2" ;;
*) say "pqpool serve: exit status $status" ;;
esac
exit "$status"
