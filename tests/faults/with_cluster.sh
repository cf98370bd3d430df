#!/usr/bin/env bash
# with_cluster.sh <program> [args]: runs a C fault test against a throwaway
# cluster of its own (PQPOOL_TEST_ENV points at its env file), then removes
# the cluster.
set -u
here=$(cd "$(dirname "$0")" && pwd)
state=$(mktemp -d /tmp/pqpool-faults-c.XXXXXX)
trap '"$here/../pg_fixture.sh" stop "$state/pg" >/dev/null 2>&1; rm -rf "$state"' EXIT
"$here/../pg_fixture.sh" start "$state/pg" >"$state/fixture.log" 2>&1 || {
	echo "FAIL could not start a cluster: $(tail -n 5 "$state/fixture.log")"
	exit 1
}
PQPOOL_TEST_ENV="$state/pg/env" "$@"
