#!/usr/bin/env bash
# run.sh — what `make run` does: runs `pqpool serve` against DATABASE_URL when it is set
# in the environment, otherwise against a private PostgreSQL cluster that it
# starts (the spec's defaults: role and database hyperpage, password
# "password") and stops again on exit.
#
#   scripts/run.sh <path-to-pqpool-binary>
#
# PQPOOL_DEV_PORT  the private cluster's port (default 55432)
# The private cluster's data stays in .pgdata (git-ignored) or, when the
# postgres OS user cannot reach the repository, in /var/tmp/pqpool-dev-pgdata.
set -euo pipefail

say() { echo "run: $*"; }
die() { echo "run: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: scripts/run.sh <path-to-pqpool-binary>"
[ -x "$1" ] || die "$1 is not an executable (build it first: make build)"
bin=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cluster="$here/pgcluster.sh"

if [ -n "${DATABASE_URL:-}" ]; then
	# shown the way pqpool shows it: masked
	shown=$("$bin" config 2>/dev/null | sed -n 's/^DATABASE_URL=\([^ ]*\).*/\1/p')
	say "using DATABASE_URL from the environment: ${shown:-(see pqpool config)}"
else
	port=${PQPOOL_DEV_PORT:-55432}
	case "$port" in '' | *[!0-9]*) die "PQPOOL_DEV_PORT must be a port number: $port" ;; esac
	# As root the cluster runs as the postgres OS user (pgcluster.sh), which
	# must be able to enter the repository to use .pgdata in it (a clone in
	# /root or in a mktemp -d folder, mode 0700, it cannot). Asked from "/":
	# it may not be able to enter the working directory either.
	if [ "$(id -u)" -ne 0 ] || (cd / && runuser -u postgres -- test -x "$repo") 2>/dev/null; then
		datadir="$repo/.pgdata"
	else
		datadir=/var/tmp/pqpool-dev-pgdata
	fi
	if [ -f .env.local ] &&
		grep -Eq '^[[:space:]]*(export[[:space:]]+)?DATABASE_URL[[:space:]]*=[[:space:]]*[^[:space:]#]' .env.local; then
		say "note: .env.local sets DATABASE_URL, but the private cluster's URL wins;" \
			"export DATABASE_URL to use another server"
	fi

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
