#!/usr/bin/env bash
# pg_fixture.sh — the CTest fixture around integration tests: a throwaway
# PostgreSQL cluster on a free loopback port with a random password.
#   pg_fixture.sh start <statedir>   writes <statedir>/env (KEY=VALUE lines)
#   pg_fixture.sh stop  <statedir>   stops the cluster and removes everything
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cluster="$here/../scripts/pgcluster.sh"
cmd=${1:?start|stop}; state=${2:?statedir}

stop() {
  if [ -f "$state/env" ]; then
    datadir=$(sed -n 's/^PQPOOL_TEST_PGDATA=//p' "$state/env")
    [ -n "$datadir" ] && "$cluster" destroy "$datadir" || true
  fi
  rm -rf "$state"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

case "$cmd" in
start)
  stop   # a cluster left over from an interrupted run
  mkdir -p "$state"
  password="pw-$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')"
  datadir=$(mktemp -d /tmp/pqpool-test.XXXXXX)
  rmdir "$datadir"
  # a free port now may be taken by the time the server binds it (other
  # test runs start clusters too): try a few
  started=0
  for _ in 1 2 3 4 5; do
    for _ in $(seq 1 50); do
      port=$(( 20000 + RANDOM % 30000 ))
      port_free "$port" && break
    done
    if "$cluster" start "$datadir" "$port" "$password"; then
      started=1
      break
    fi
    "$cluster" destroy "$datadir" || true
  done
  [ "$started" = 1 ] || { echo "pg_fixture: could not start a cluster" >&2; exit 1; }
  cat >"$state/env" <<ENV
DATABASE_URL=postgresql://hyperpage:$password@127.0.0.1:$port/hyperpage
PQPOOL_TEST_PASSWORD=$password
PQPOOL_TEST_PORT=$port
PQPOOL_TEST_PGDATA=$datadir
PQPOOL_TEST_CLUSTER=$cluster
PQPOOL_TEST_ADMIN=host=$datadir port=$port user=postgres dbname=hyperpage
ENV
  chmod 600 "$state/env"
  echo "pg_fixture: cluster on 127.0.0.1:$port ($datadir)"
  ;;
stop)
  stop
  ;;
*) echo "usage: pg_fixture.sh start|stop <statedir>" >&2; exit 2 ;;
esac
