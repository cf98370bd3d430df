#!/usr/bin/env bash
# replica.sh — a replication test rig: a primary and a streaming standby of
# PostgreSQL on loopback ports, for failover tests and `make run-replicated`.
#
#   replica.sh start <dir> <port_a> <port_b> <password> [sync|async]
#                         node "a" (data in <dir>/a, made by pgcluster.sh: role
#                         and database hyperpage) becomes the primary on
#                         127.0.0.1:<port_a>; node "b" (<dir>/b) a streaming
#                         standby of it on <port_b> (pg_basebackup -R over a's
#                         socket). sync: a's commits wait for b. Returns when b
#                         streams (and, in sync mode, is a's synchronous standby)
#   replica.sh stop <dir>                   stops (immediate) every node, removes <dir>
#   replica.sh crash <dir> <node>           pg_ctl stop -m immediate of that node
#   replica.sh halt <dir> <node>            pg_ctl stop -m fast (a clean shutdown)
#   replica.sh up <dir> <node>              starts it again, as whatever it is (a
#                                           standby: returns when it accepts reads)
#   replica.sh promote <dir> <node>         promotes a standby; returns when
#                                           pg_is_in_recovery() is false
#   replica.sh rebuild <dir> <node> <from>  throws <node>'s data away and makes it a
#                                           fresh streaming standby of the primary
#                                           <from>, on the same port; returns when
#                                           it streams (sync: <from> waits for it)
#   replica.sh role <dir> <node>            prints primary, standby or down
#   replica.sh psql <dir> <node> <psql args...>   as the superuser, over the socket
#   replica.sh url <dir>                    prints postgresql://hyperpage:<password>@
#                                           127.0.0.1:<port_a>,127.0.0.1:<port_b>/hyperpage
#
# <node> is a or b. The URL that `url` prints CONTAINS THE PASSWORD (percent-
# encoded): capture it, never log it. The password is kept in <dir>/rig.env
# (mode 600, with MODE, PORT_a and PORT_b: KEY=VALUE lines), where the other
# commands read it. It is an argument of `start`, and start hands it on to
# pgcluster.sh start, which gives it to psql as a variable (-v): on those
# command lines while `start` runs; nothing else here puts it on one.
#
# Every node listens on 127.0.0.1:<its port> and on a Unix socket inside its
# data directory; node X's settings of its own (cluster_name = X, which the
# walreceiver sends as its application_name, and synchronous_standby_names)
# are in <dir>/X/node.conf. In sync mode the primary's
# synchronous_standby_names names its standby; a standby's is empty, so a
# promoted standby commits alone until `rebuild` gives it a standby again.
# Both nodes run with synchronous_commit = on (pgcluster.sh turns it off):
# an acknowledged commit survives a crash of the server (`crash`; fsync stays
# off as pgcluster.sh sets it, so not a crash of the machine). Replication
# connections are trusted for the postgres role over the Unix socket only.
#
# As root the servers run as the "postgres" OS user (PostgreSQL refuses to run
# as root; pgcluster.sh does the same), so <dir>'s parent must be a folder that
# user can enter (under /tmp). psql runs in "/": paths among its arguments must
# be absolute (give SQL on stdin). REPLICA_WAIT: the seconds to wait for
# streaming or a promotion (default 30).
set -euo pipefail

die() { echo "replica: $*" >&2; exit 1; }

bindir=""
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  [ -x "$d/initdb" ] && { bindir=$d; break; }
done
[ -n "$bindir" ] || die "no PostgreSQL server binaries under /usr/lib/postgresql (install the postgresql package: scripts/deps.sh)"
here=$(cd "$(dirname "$0")" && pwd)
cluster="$here/pgcluster.sh"

# as_owner <command...>: runs it as the servers' OS user, from "/" (the
# caller's working directory may be one that user cannot enter).
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && exec runuser -u postgres -- "$@")
  else
    (cd / && exec "$@")
  fi
}

usage="usage: replica.sh start|stop|crash|halt|up|promote|rebuild|role|psql|url <dir> ..."
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "$usage"
dir=$(realpath -m "$dir")
# the path goes into postgresql.conf between single quotes, and into sed
case "$dir" in *[\'\\\|]* | *$'\n'*) die "the rig's directory may not contain a quote, a backslash or a |: $dir" ;; esac
env_file="$dir/rig.env"
wait_s=${REPLICA_WAIT:-30}
case "$wait_s" in '' | *[!0-9]*) die "REPLICA_WAIT must be a number of seconds: $wait_s" ;; esac

# the servers run unprivileged: no port below 1024
is_port() {
  case "$1" in '' | *[!0-9]*) return 1 ;; esac
  [ "${#1}" -le 5 ] && [ "$1" -ge 1024 ] && [ "$1" -le 65535 ]
}
check_node() { case "${1:-}" in a | b) ;; *) die "a node is a or b, not '${1:-}'" ;; esac; }
setting() { sed -n "s/^$1=//p" "$env_file" | head -n 1; }
need_rig() { [ -f "$env_file" ] || die "no replica rig in $dir (no rig.env; replica.sh start makes one)"; }
port() { setting "PORT_$1"; }
data() { echo "$dir/$1"; }
running() { [ -f "$(data "$1")/postmaster.pid" ] && as_owner "$bindir/pg_ctl" -D "$(data "$1")" status >/dev/null 2>&1; }

# sql <node> <query>: one value, unaligned, from the node's socket
sql() {
  PGCONNECT_TIMEOUT=5 as_owner "$bindir/psql" -X -At -q -h "$(data "$1")" -p "$(port "$1")" -U postgres \
    -d postgres -v ON_ERROR_STOP=1 -c "$2"
}

log_tail() { echo "--- last lines of $(data "$1")/server.log:" >&2; tail -n 15 "$(data "$1")/server.log" >&2 2>/dev/null || true; }

start_node() {
  as_owner "$bindir/pg_ctl" -D "$(data "$1")" -l "$(data "$1")/server.log" -w -t 60 start >/dev/null \
    || { log_tail "$1"; die "node $1 did not start (port $(port "$1") in use?)"; }
}

stop_node() { # <node> <mode>
  as_owner "$bindir/pg_ctl" -D "$(data "$1")" -m "$2" -w -t 60 stop >/dev/null
}

# node_conf <node> <synchronous_standby_names>: the node's own settings
node_conf() {
  as_owner tee "$(data "$1")/node.conf" >/dev/null <<CONF
# node $1 of the replica rig (scripts/replica.sh): its own settings
cluster_name = '$1'
synchronous_standby_names = '$2'
CONF
  as_owner chmod 600 "$(data "$1")/node.conf"
}

# wait_streaming <standby> <primary>: until the primary's pg_stat_replication
# shows the standby streaming (and, in sync mode, as its synchronous standby)
wait_streaming() {
  local want="streaming" got="" deadline=$((SECONDS + wait_s))
  [ "$(setting MODE)" = sync ] && want="streaming sync"
  while [ $SECONDS -lt "$deadline" ]; do
    got=$(sql "$2" "SELECT state || ' ' || sync_state FROM pg_stat_replication WHERE application_name = '$1'" 2>/dev/null) || got=""
    case "$want" in
    "streaming sync") [ "$got" = "streaming sync" ] && return 0 ;;
    *) case "$got" in streaming\ *) return 0 ;; esac ;;
    esac
    sleep 0.2
  done
  log_tail "$1"
  die "node $1 is not streaming from node $2 after ${wait_s}s (pg_stat_replication on $2 says state/sync_state: '${got:-no walsender for application_name $1}', waiting for '$want')"
}

# base_backup <node> <from>: <node>'s data directory, empty, filled with a
# base backup of <from> that starts as its standby (standby.signal and
# primary_conninfo, from -R), with its own port, socket and node.conf
base_backup() {
  local d from_d
  d=$(data "$1"); from_d=$(data "$2")
  mkdir -p "$d"
  chmod 700 "$d"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$d"
  as_owner "$bindir/pg_basebackup" -D "$d" -h "$from_d" -p "$(port "$2")" -U postgres -w \
    -R -X stream -c fast >"$dir/basebackup.log" 2>&1 \
    || { cat "$dir/basebackup.log" >&2; die "pg_basebackup of node $2 for node $1 failed"; }
  rm -f "$dir/basebackup.log"
  # The copy carries <from>'s port, socket directory, node.conf and
  # server.log, and its sockets' lock files (regular files, which
  # pg_basebackup copies; it skips only the sockets): a copied lock file of
  # this node's port, naming a PID that is alive again, would stop its start.
  as_owner sed -i -e "s|^port = .*|port = $(port "$1")|" \
    -e "s|^unix_socket_directories = .*|unix_socket_directories = '$d'|" "$d/postgresql.conf"
  as_owner find "$d" -maxdepth 1 -name '.s.PGSQL.*' -delete
  as_owner rm -f "$d/server.log"
  # -R appended its primary_conninfo to the copied postgresql.auto.conf, after
  # the one <from> may have had as a standby: the last wins, keep it alone
  as_owner bash -c 'umask 077; tac "$1" | awk "!/^primary_conninfo/ || !seen++" | tac >"$1.new" && mv "$1.new" "$1"' \
    _ "$d/postgresql.auto.conf"
  node_conf "$1" "" # a standby's: see the header
}

# A start that fails leaves no server behind; the files stay, for the logs.
start_failed() {
  local rc=$? n
  [ $rc -eq 0 ] && return 0
  for n in a b; do
    if running $n; then stop_node $n immediate || true; fi
  done
  echo "replica: the rig did not start; its files stay in $dir (replica.sh stop $dir removes them)" >&2
  exit $rc
}

# ---- the commands -----------------------------------------------------------
case "$cmd" in
start)
  [ $# -ge 5 ] && [ $# -le 6 ] || die "usage: replica.sh start <dir> <port_a> <port_b> <password> [sync|async]"
  port_a=$3; port_b=$4; password=$5; mode=${6:-async}
  is_port "$port_a" || die "port_a must be a port number (1024-65535): $port_a"
  is_port "$port_b" || die "port_b must be a port number (1024-65535): $port_b"
  [ "$port_a" != "$port_b" ] || die "the two nodes need two ports, not $port_a twice"
  case "$mode" in sync | async) ;; *) die "the mode is sync or async, not '$mode'" ;; esac
  [ -n "$password" ] || die "the password may not be empty"
  case "$password" in *$'\n'*) die "the password may not contain a newline" ;; esac
  case "$dir" in / | /tmp | /var/tmp | "$HOME") die "refusing to make a rig in $dir itself (name a folder in it)" ;; esac
  [ ! -e "$env_file" ] || die "$dir already holds a rig (replica.sh stop $dir removes it)"
  if [ -e "$dir" ] && { [ ! -d "$dir" ] || [ -n "$(ls -A "$dir")" ]; }; then
    die "$dir exists and is not an empty folder (a rig starts in a folder of its own)"
  fi
  # the socket path's limit (sun_path) is 107 bytes
  [ ${#dir} -le 80 ] || die "$dir is too long a path for the nodes' Unix sockets (80 characters at most)"
  for p in "$port_a" "$port_b"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "127.0.0.1:$p is in use"; fi
  done
  made=0
  if [ ! -e "$dir" ]; then
    mkdir -p "$dir"
    chmod 755 "$dir" # the postgres OS user enters it to reach a/ and b/
    made=1
  fi
  if ! as_owner test -x "$dir"; then
    [ "$made" = 0 ] || rmdir "$dir"
    die "the servers' OS user cannot enter $dir (open it and its parents to it: chmod 755; or use a folder under /tmp)"
  fi
  # first, so that `stop` can clean up after a start that failed half-way
  (
    umask 077
    printf 'MODE=%s\nPORT_a=%s\nPORT_b=%s\nPASSWORD=%s\n' "$mode" "$port_a" "$port_b" "$password" >"$env_file"
  )
  trap start_failed EXIT

  "$cluster" start "$(data a)" "$port_a" "$password"
  # The rig's settings follow pgcluster.sh's, so they win. cluster_name (in
  # node.conf) can only change at a restart.
  as_owner tee -a "$(data a)/postgresql.conf" >/dev/null <<'CONF'
# replica rig (scripts/replica.sh)
synchronous_commit = on
wal_level = replica
hot_standby = on
max_wal_senders = 10
wal_keep_size = 64MB
hot_standby_feedback = on
wal_receiver_status_interval = 1s
include_if_exists 'node.conf'
CONF
  as_owner tee -a "$(data a)/pg_hba.conf" >/dev/null <<'HBA'
local replication postgres trust
HBA
  if [ "$mode" = sync ]; then node_conf a b; else node_conf a ""; fi
  stop_node a fast
  start_node a

  base_backup b a
  start_node b
  wait_streaming b a
  trap - EXIT
  ;;
stop)
  [ $# -eq 2 ] || die "usage: replica.sh stop <dir>"
  [ -e "$dir" ] || exit 0
  case "$dir" in / | /tmp | /var/tmp | "$HOME") die "refusing to remove $dir" ;; esac
  [ -f "$env_file" ] || die "$dir holds no rig.env: not a replica rig, not removing it"
  for n in a b; do
    if running $n; then stop_node $n immediate || true; fi
  done
  rm -rf "$dir"
  ;;
crash | halt)
  [ $# -eq 3 ] || die "usage: replica.sh $cmd <dir> <node>"
  check_node "$3"; need_rig
  running "$3" || die "node $3 is not running"
  if [ "$cmd" = crash ]; then stop_node "$3" immediate; else stop_node "$3" fast; fi
  ;;
up)
  [ $# -eq 3 ] || die "usage: replica.sh up <dir> <node>"
  check_node "$3"; need_rig
  [ -f "$(data "$3")/PG_VERSION" ] || die "node $3 has no data (replica.sh rebuild makes it again)"
  running "$3" && die "node $3 is already running"
  start_node "$3"
  ;;
promote)
  [ $# -eq 3 ] || die "usage: replica.sh promote <dir> <node>"
  check_node "$3"; need_rig
  running "$3" || die "node $3 is not running"
  [ "$(sql "$3" 'SELECT pg_is_in_recovery()')" = t ] || die "node $3 is not a standby"
  as_owner "$bindir/pg_ctl" -D "$(data "$3")" -w -t "$wait_s" promote >/dev/null \
    || { log_tail "$3"; die "node $3 did not promote"; }
  deadline=$((SECONDS + wait_s))
  until [ "$(sql "$3" 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do
    [ $SECONDS -lt "$deadline" ] || { log_tail "$3"; die "node $3 is still in recovery ${wait_s}s after its promotion"; }
    sleep 0.2
  done
  ;;
rebuild)
  [ $# -eq 4 ] || die "usage: replica.sh rebuild <dir> <node> <from>"
  check_node "$3"; check_node "$4"; need_rig
  node=$3; from=$4
  [ "$node" != "$from" ] || die "a node cannot be rebuilt from itself"
  running "$from" || die "node $from is not running"
  [ "$(sql "$from" 'SELECT pg_is_in_recovery()')" = f ] || die "node $from is not a primary"
  if running "$node"; then stop_node "$node" immediate; fi
  rm -rf "$(data "$node")"
  base_backup "$node" "$from"
  start_node "$node"
  if [ "$(setting MODE)" = sync ]; then
    node_conf "$from" "$node"
    sql "$from" 'SELECT pg_reload_conf()' >/dev/null
  fi
  wait_streaming "$node" "$from"
  ;;
role)
  [ $# -eq 3 ] || die "usage: replica.sh role <dir> <node>"
  check_node "$3"; need_rig
  if ! running "$3"; then echo down; exit 0; fi
  # a server that is starting refuses connections for a moment
  deadline=$((SECONDS + 5))
  while :; do
    case "$(sql "$3" 'SELECT pg_is_in_recovery()' 2>/dev/null)" in
    f) echo primary; exit 0 ;;
    t) echo standby; exit 0 ;;
    esac
    [ $SECONDS -lt "$deadline" ] || break
    sleep 0.2
  done
  echo "replica: node $3 is running but does not answer" >&2
  echo down
  ;;
psql)
  [ $# -ge 3 ] || die "usage: replica.sh psql <dir> <node> <psql args...>"
  check_node "$3"; need_rig
  node=$3; shift 3
  as_owner "$bindir/psql" -X -h "$(data "$node")" -p "$(port "$node")" -U postgres "$@"
  ;;
url)
  [ $# -eq 2 ] || die "usage: replica.sh url <dir>"
  need_rig
  # percent-encoded byte by byte: a password may hold @ : / ? # or %
  pw=$(setting PASSWORD); enc=""
  LC_ALL=C
  for ((i = 0; i < ${#pw}; i++)); do
    c=${pw:i:1}
    case "$c" in
    [A-Za-z0-9._~-]) enc+=$c ;;
    *) enc+=$(printf '%%%02X' "'$c") ;;
    esac
  done
  echo "postgresql://hyperpage:$enc@127.0.0.1:$(port a),127.0.0.1:$(port b)/hyperpage"
  ;;
*)
  die "unknown command $cmd ($usage)"
  ;;
esac
