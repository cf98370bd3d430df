#!/usr/bin/env bash
# pgbouncer.sh — a private PgBouncer (Debian's pgbouncer) in transaction mode
# in front of a cluster of scripts/pgcluster.sh, for tests and benchmarks.
#
#   pgbouncer.sh start <dir> <port> <pg_port> <password>   config in <dir>, listens
#                                                          on 127.0.0.1:<port>
#   pgbouncer.sh stop  <dir>                                stops it, removes <dir>
#
# It serves the database "hyperpage" of the cluster on 127.0.0.1:<pg_port> to
# the role hyperpage (SCRAM on both sides), 20 server connections per pool.
# The password goes into <dir>/userlist.txt (mode 600), never a command line.
# PgBouncer refuses to run as root: as root it runs as the "postgres" OS user
# (as the cluster does), so <dir> must be a folder that user can reach (under
# /tmp). Extra settings for the [pgbouncer] section: PGBOUNCER_EXTRA (lines).
set -euo pipefail

die() { echo "pgbouncer: $*" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && exec runuser -u postgres -- "$@")
  else
    (cd / && exec "$@")
  fi
}

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: pgbouncer.sh start|stop <dir> ..."
dir=$(realpath -m "$dir")
bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)

stop() {
  if [ -f "$dir/pgbouncer.pid" ]; then
    pid=$(cat "$dir/pgbouncer.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  case "$dir" in /|/tmp|/var/tmp|"$HOME") die "refusing to remove $dir" ;; esac
  rm -rf "$dir"
}

case "$cmd" in
start)
  port=${3:?port}; pg_port=${4:?pg_port}; password=${5:?password}
  for n in "$port" "$pg_port"; do
    case "$n" in ''|*[!0-9]*) die "ports are numbers: $n" ;; esac
  done
  [ -x "$bin" ] || die "no pgbouncer (install Debian's pgbouncer: scripts/deps.sh)"
  mkdir -p "$dir"
  chmod 700 "$dir"
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
hyperpage = host=127.0.0.1 port=$pg_port dbname=hyperpage

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 1000
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
${PGBOUNCER_EXTRA:-}
INI
  # a double quote in the password is written twice, as PgBouncer reads it
  printf '"hyperpage" "%s"\n' "${password//\"/\"\"}" >"$dir/userlist.txt"
  chmod 600 "$dir/userlist.txt"
  [ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir"
  as_owner "$bin" -d -q "$dir/pgbouncer.ini" || { cat "$dir/pgbouncer.log" >&2 2>/dev/null; die "did not start"; }
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && exit 0
    sleep 0.1
  done
  tail -n 20 "$dir/pgbouncer.log" >&2 || true
  stop
  die "not listening on 127.0.0.1:$port"
  ;;
stop)
  stop
  ;;
*)
  die "unknown command $cmd"
  ;;
esac
