#!/usr/bin/env bash
# Installs the Debian packages pqpool needs to build, test and run, when missing.
# Idempotent and quiet when everything is already there. Needs root (or sudo) only
# when something is missing.
set -euo pipefail

# build + library dependencies
pkgs=(build-essential cmake pkg-config libpq-dev libjansson-dev libmicrohttpd-dev)
# the asynchronous API's adapters and their examples (examples/async_*.c)
pkgs+=(libuv1-dev libevent-dev)
# the throwaway PostgreSQL cluster, unit tests, metrics checking, load tools
pkgs+=(postgresql postgresql-contrib libcmocka-dev prometheus curl wrk)
# tests/sh/test_pgbouncer.sh: the pool behind PgBouncer in transaction mode
# (scripts/pgbouncer.sh starts a private one; its own service stays stopped)
pkgs+=(pgbouncer)
# the service's tests: JSON checks, ss to find a quiet service's port, openssl for TLS certificates
pkgs+=(jq iproute2 openssl)
# the man pages' check renders them with groff (groff-base has groff -man -Tutf8)
pkgs+=(groff-base)
# test_serve_systemd.sh: python3 plays the service manager's notify socket;
# systemd only for systemd-analyze (verify, security) on the unit file; it
# does not become init (systemd-sysv would), so a container is left as it was
pkgs+=(python3 systemd)
# the status page's test: a real headless browser, a font for it to draw text
# with (fonts are only recommended by chromium), python3 to read its screenshot
pkgs+=(chromium fonts-dejavu-core python3)
# sanitizer builds and libFuzzer (make test-asan/test-tsan/fuzz), memcheck (make test-valgrind)
pkgs+=(clang libclang-rt-14-dev valgrind)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
    echo "deps: missing packages (${missing[*]}) and not root; install them as root" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
# prometheus would start its own daemon on :9090 from its postinst; we only want promtool.
# policy-rc.d stops services from being started by package scripts during this install.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${SUDO[@]}" chmod +x /usr/sbin/policy-rc.d
  trap '"${SUDO[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
fi
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
