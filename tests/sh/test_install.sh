#!/usr/bin/env bash
# test_install.sh — `make install` gives a usable library: the header, the
# shared library and pqpool.pc, with which the README's example builds by
# pkg-config alone and runs against the throwaway cluster.
set -eu
build=${PQPOOL_BUILD:?}; src=${PQPOOL_SRC:?}
dotenv_file=${PQPOOL_TEST_ENV:?}
prefix=$(mktemp -d /tmp/pqpool-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/pqpool.h bin/pqpool; do
  [ -e "$prefix/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
pc=$(find "$prefix" -name pqpool.pc | head -n 1)
[ -n "$pc" ] || { echo "FAIL: pqpool.pc not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
# the installed .pc names the prefix it was configured with; point it here
sed -i "s|^prefix=.*|prefix=$prefix|" "$pc"
pkg-config --exists pqpool || { echo "FAIL: pkg-config cannot read pqpool.pc"; exit 1; }
[ "$(pkg-config --modversion pqpool)" = "$(sed -n 's/^#define PQPOOL_VERSION "\(.*\)"/\1/p' "$src/include/pqpool.h")" ] \
  || { echo "FAIL: pqpool.pc version differs from PQPOOL_VERSION"; exit 1; }
# a sanitizer build installs an instrumented library: link the same runtime
san=()
[ -n "${PQPOOL_SANITIZE:-}" ] && san=(-fsanitize="$PQPOOL_SANITIZE")
# shellcheck disable=SC2046
"${PQPOOL_CC:-cc}" -std=c11 -Wall -Werror "${san[@]}" -o "$prefix/hello" "$src/examples/hello.c" \
  $(pkg-config --cflags --libs pqpool)
libdir=$(pkg-config --variable=libdir pqpool)
out=$(DATABASE_URL=$(sed -n 's/^DATABASE_URL=//p' "$dotenv_file") LD_LIBRARY_PATH=$libdir "$prefix/hello" 2>&1)
echo "$out"
grep -qx 'test=42' <<<"$out" || { echo "FAIL: the installed example did not run"; exit 1; }
pw=$(sed -n 's/^PQPOOL_TEST_PASSWORD=//p' "$dotenv_file")
[ -n "$pw" ] || { echo "FAIL: no password in $dotenv_file"; exit 1; }
! grep -qF -- "$pw" <<<"$out" || { echo "FAIL: the installed example printed the password"; exit 1; }
# only the API is exported from the shared library
if nm -D --defined-only "$libdir/libpqpool.so" | awk '{print $3}' | grep -v '^pqpool_' | grep -q .; then
  echo "FAIL: symbols other than pqpool_* exported:"; nm -D --defined-only "$libdir/libpqpool.so" | grep -v ' pqpool_'
  exit 1
fi
echo "ok: installed under $prefix and built the example with pkg-config"
