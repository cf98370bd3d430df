#!/usr/bin/env bash
# chart_lib.sh — what the chart scripts (chart.sh, outstanding.sh) share:
# their tools, a scratch folder removed on exit, and a database (DATABASE_URL,
# or the fixture cluster started for the run). Sourced, with $here set to
# bench/ and $chart_name to the script's name for messages.

# chart_need <command> <Debian package>: installed when missing and root
chart_need() {
  command -v "$1" >/dev/null 2>&1 && return
  if [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
  else
    echo "$chart_name: $1 is missing (Debian package $2)" >&2
    exit 1
  fi
}

# sets $work (removed on exit, with any cluster chart_database started)
chart_setup() {
  chart_need gnuplot gnuplot-nox
  chart_need jq jq
  work=$(mktemp -d)
  chart_state=""
  trap chart_cleanup EXIT
}

chart_cleanup() {
  [ -n "$chart_state" ] && "$here/../tests/pg_fixture.sh" stop "$chart_state" >/dev/null 2>&1 || true
  rm -rf "$work"
}

# exports DATABASE_URL: the caller's, or a throwaway cluster's
chart_database() {
  [ -n "${DATABASE_URL:-}" ] && return
  chart_state="$work/pg"
  "$here/../tests/pg_fixture.sh" start "$chart_state" >/dev/null
  DATABASE_URL=$(sed -n 's/^DATABASE_URL=//p' "$chart_state/env")
  export DATABASE_URL
}
