#!/usr/bin/env bash
# pgcluster.sh — a private PostgreSQL cluster for development and tests.
#
#   pgcluster.sh start <datadir> <port> <password>   init if needed, start, create
#                                                     role and database "hyperpage"
#   pgcluster.sh stop  <datadir>                      stop (fast) if running
#   pgcluster.sh destroy <datadir>                    stop (immediate) and remove
#   pgcluster.sh ctl <datadir> <pg_ctl args...>       e.g. restart -m fast
#   pgcluster.sh psql <datadir> <psql args...>        as the superuser, over the socket
#
# ctl and psql run in "/" as the cluster's OS user: paths among their
# arguments must be absolute and readable by that user (give SQL on stdin).
#
# PostgreSQL refuses to run as root: as root the cluster runs as the
# unprivileged "postgres" OS user (created by Debian's postgresql package);
# otherwise as the calling user. It listens on 127.0.0.1:<port> only, and on a
# Unix socket inside <datadir>.
set -euo pipefail

die() { echo "pgcluster: $*" >&2; exit 1; }

bindir=""
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  [ -x "$d/initdb" ] && { bindir=$d; break; }
done
[ -n "$bindir" ] || die "no PostgreSQL server binaries under /usr/lib/postgresql (install the postgresql package: scripts/deps.sh)"

# as_owner <command...>: runs it as the cluster's OS user, from "/". The
# caller's working directory may be one that user cannot enter (a checkout
# in /root or in a mktemp -d folder, mode 0700): PostgreSQL's programs then
# warn "could not change directory to ...: Permission denied" on stderr
# (psql, pg_ctl and initdb all look up their own location and change back).
# Every path given here is absolute (the data directory is made so below).
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && exec runuser -u postgres -- "$@")
  else
    (cd / && exec "$@")
  fi
}

cmd=${1:-}; datadir=${2:-}
[ -n "$cmd" ] && [ -n "$datadir" ] || die "usage: pgcluster.sh start|stop|destroy|ctl|psql <datadir> ..."
datadir=$(realpath -m "$datadir")

running() { [ -f "$datadir/postmaster.pid" ] && as_owner "$bindir/pg_ctl" -D "$datadir" status >/dev/null 2>&1; }
port_of() { sed -n 's/^port *= *\([0-9]*\).*/\1/p' "$datadir/postgresql.auto.conf" "$datadir/postgresql.conf" 2>/dev/null | tail -n 1; }

case "$cmd" in
start)
  port=${3:?port}; password=${4:?password}
  case "$port" in ''|*[!0-9]*) die "port must be a number: $port" ;; esac
  if [ ! -f "$datadir/PG_VERSION" ]; then
    mkdir -p "$datadir"
    chmod 700 "$datadir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$datadir"
    as_owner test -w "$datadir" || die "$datadir is not writable by the cluster's OS user (postgres cannot reach it; use a folder under /tmp)"
    as_owner "$bindir/initdb" -D "$datadir" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$datadir.initdb.log" 2>&1 \
      || { cat "$datadir.initdb.log" >&2; die "initdb failed"; }
    rm -f "$datadir.initdb.log"
    as_owner tee -a "$datadir/postgresql.conf" >/dev/null <<CONF
# pqpool private cluster
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$datadir'
max_connections = 200
shared_buffers = 64MB
fsync = off
synchronous_commit = off
full_page_writes = off
shared_preload_libraries = 'pg_stat_statements'
log_min_messages = warning
CONF
    as_owner tee "$datadir/pg_hba.conf" >/dev/null <<HBA
local all postgres trust
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
HBA
    fresh=1
  else
    fresh=0
    [ "$(port_of)" = "$port" ] || as_owner sed -i "s/^port = .*/port = $port/" "$datadir/postgresql.conf"
  fi
  if ! running; then
    as_owner "$bindir/pg_ctl" -D "$datadir" -l "$datadir/server.log" -w -t 60 start >/dev/null \
      || { tail -n 20 "$datadir/server.log" >&2 || true; die "server did not start (port $port in use?)"; }
  fi
  if [ "$fresh" = 1 ]; then
    # the password reaches psql through its environment (\getenv, psql 15+),
    # not its command line, where ps would show it
    PQPOOL_CLUSTER_PW="$password" as_owner "$bindir/psql" -X -q -h "$datadir" -p "$port" \
      -U postgres -d postgres -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
\getenv pw PQPOOL_CLUSTER_PW
SET password_encryption = 'scram-sha-256';
CREATE ROLE hyperpage LOGIN PASSWORD :'pw';
CREATE DATABASE hyperpage OWNER hyperpage;
\c hyperpage
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SQL
  fi
  ;;
stop)
  running && as_owner "$bindir/pg_ctl" -D "$datadir" -m fast -w stop >/dev/null
  exit 0
  ;;
destroy)
  if running; then as_owner "$bindir/pg_ctl" -D "$datadir" -m immediate -w stop >/dev/null || true; fi
  case "$datadir" in /|/tmp|/var/tmp|"$HOME") die "refusing to remove $datadir" ;; esac
  rm -rf "$datadir"
  ;;
ctl)
  shift 2
  as_owner "$bindir/pg_ctl" -D "$datadir" -l "$datadir/server.log" "$@"
  ;;
psql)
  shift 2
  as_owner "$bindir/psql" -X -h "$datadir" -p "$(port_of)" -U postgres "$@"
  ;;
*)
  die "unknown command $cmd"
  ;;
esac
