#!/usr/bin/env bash
# test_install.sh — `make install` gives a usable library: the header, the
# shared and static libraries, pqpool.pc, the CMake package and the man
# pages. The README's example is built against the installed copy alone, by
# pkg-config and by a CMake project (find_package(pqpool),
# examples/CMakeLists.txt on its own, shared and static), and each build runs
# against the throwaway cluster.
set -eu
build=${PQPOOL_BUILD:?}; src=${PQPOOL_SRC:?}
dotenv_file=${PQPOOL_TEST_ENV:?}
work=$(mktemp -d /tmp/pqpool-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
# Nothing but the prefix may provide the header, the library or the package.
unset CPATH C_INCLUDE_PATH LIBRARY_PATH LD_LIBRARY_PATH PKG_CONFIG_PATH \
  CMAKE_PREFIX_PATH pqpool_DIR pqpool_ROOT CMAKE_GENERATOR

fail() { echo "FAIL: $*"; exit 1; }
# quiet <log> <command...>: its output only when it fails
quiet() {
  local log=$1; shift
  "$@" >"$log" 2>&1 || { cat "$log"; fail "$*"; }
}

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/pqpool.h bin/pqpool share/man/man1/pqpool.1 share/man/man3/pqpool.3; do
  [ -e "$prefix/$f" ] || fail "$f not installed"
done
pc=$(find "$prefix" -name pqpool.pc | head -n 1)
[ -n "$pc" ] || fail "pqpool.pc not installed"
config=$(find "$prefix" -name pqpoolConfig.cmake | head -n 1)
[ -n "$config" ] || fail "pqpoolConfig.cmake not installed"
export PKG_CONFIG_PATH=$(dirname "$pc")
# the installed .pc names the prefix it was configured with; point it here
sed -i "s|^prefix=.*|prefix=$prefix|" "$pc"
pkg-config --exists pqpool || fail "pkg-config cannot read pqpool.pc"
version=$(sed -n 's/^#define PQPOOL_VERSION "\(.*\)"/\1/p' "$src/include/pqpool.h")
[ "$(pkg-config --modversion pqpool)" = "$version" ] || fail "pqpool.pc version differs from PQPOOL_VERSION"
grep -qF "PACKAGE_VERSION \"$version\"" "$(dirname "$config")/pqpoolConfigVersion.cmake" \
  || fail "pqpoolConfigVersion.cmake differs from PQPOOL_VERSION"
libdir=$(pkg-config --variable=libdir pqpool)
[ "$libdir" = "$(dirname "$(dirname "$(dirname "$config")")")" ] \
  || fail "pqpool.pc ($libdir) and the CMake package ($config) disagree on the libdir"

# a sanitizer build installs an instrumented library: link the same runtime
san=()
[ -n "${PQPOOL_SANITIZE:-}" ] && san=(-fsanitize="$PQPOOL_SANITIZE")
cc=${PQPOOL_CC:-cc}
url=$(sed -n 's/^DATABASE_URL=//p' "$dotenv_file")
pw=$(sed -n 's/^PQPOOL_TEST_PASSWORD=//p' "$dotenv_file")
[ -n "$pw" ] || fail "no password in $dotenv_file"

# header_from_prefix <depfile> <what>: the compiler read pqpool.h from the
# prefix and no header of the source or build tree
header_from_prefix() {
  local headers
  headers=$(tr ' \\' '\n\n' <"$1" | grep '\.h$')
  grep -qxF -- "$prefix/include/pqpool.h" <<<"$headers" || fail "$2: pqpool.h not read from $prefix/include"
  ! grep -qF -e "$src/" -e "$build/" <<<"$headers" \
    || fail "$2: read a header of the source or build tree: $(grep -F -e "$src/" -e "$build/" <<<"$headers")"
}
# pqpool_resolved <binary>: where the dynamic loader finds libpqpool, or ""
pqpool_resolved() {
  ldd "$1" | awk '$1 ~ /^libpqpool\.so/ {print $3}'
}
# run_example <what> <binary>: the example's output against the cluster
run_example() {
  local out rc=0
  out=$(DATABASE_URL=$url "$2" 2>&1) || rc=$?
  echo "$out" | sed "s/^/  $1: /"
  [ $rc -eq 0 ] || fail "$1: exit status $rc"
  grep -qx 'test=42' <<<"$out" || fail "$1: no test=42 line"
  grep -q '^health=healthy ' <<<"$out" || fail "$1: not healthy"
  ! grep -qF -- "$pw" <<<"$out" || fail "$1: the example printed the password"
}

# 1. pkg-config alone, from a copy of the example outside the source tree
cp "$src/examples/hello.c" "$work/hello.c"
# shellcheck disable=SC2046
"$cc" -std=c11 -Wall -Werror "${san[@]}" -MD -MF "$work/hello.d" -o "$work/hello" \
  "$work/hello.c" $(pkg-config --cflags --libs pqpool)
header_from_prefix "$work/hello.d" "pkg-config build"
[ "$(LD_LIBRARY_PATH=$libdir pqpool_resolved "$work/hello")" = "$libdir/libpqpool.so.1" ] \
  || fail "pkg-config build: libpqpool.so.1 not resolved from $libdir: $(LD_LIBRARY_PATH=$libdir ldd "$work/hello")"
LD_LIBRARY_PATH=$libdir run_example pkg-config "$work/hello"

# 2. CMake: examples/ as a project of its own, find_package(pqpool) through
# CMAKE_PREFIX_PATH, linking pqpool::pqpool, then pqpool::pqpool_static
cmake_example() {
  local name=$1 dir=$work/cmake-$1; shift
  quiet "$dir.log" cmake -S "$src/examples" -B "$dir" -G "Unix Makefiles" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="${san[*]}" \
    -DCMAKE_EXE_LINKER_FLAGS="${san[*]}" "$@"
  quiet "$dir.log" cmake --build "$dir"
  grep -qxF "pqpool_DIR:PATH=$(dirname "$config")" "$dir/CMakeCache.txt" \
    || fail "cmake $name: pqpool found elsewhere than $prefix: $(grep '^pqpool_DIR' "$dir/CMakeCache.txt")"
  header_from_prefix "$(find "$dir" -name 'hello.c.o.d' | head -n 1)" "cmake $name"
}
cmake_example shared
bin=$work/cmake-shared/example_hello
runpath=$(readelf -d "$bin" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
[[ ":$runpath:" == *":$libdir:"* ]] || fail "cmake shared: RUNPATH '$runpath' lacks $libdir"
[[ "$runpath" != *"$build"* && "$runpath" != *"$src"* ]] || fail "cmake shared: RUNPATH '$runpath' names the build tree"
[ "$(pqpool_resolved "$bin")" = "$libdir/libpqpool.so.1" ] \
  || fail "cmake shared: libpqpool.so.1 not resolved from $libdir: $(ldd "$bin")"
run_example "cmake shared" "$bin"

cmake_example static -DPQPOOL_EXAMPLES_STATIC=ON
bin=$work/cmake-static/example_hello
grep -qF "$libdir/libpqpool.a" "$work/cmake-static/CMakeFiles/example_hello.dir/link.txt" \
  || fail "cmake static: not linked with $libdir/libpqpool.a"
[ -z "$(pqpool_resolved "$bin")" ] || fail "cmake static: still needs libpqpool.so"
run_example "cmake static" "$bin"

# only the API is exported from the shared library
if nm -D --defined-only "$libdir/libpqpool.so" | awk '{print $3}' | grep -v '^pqpool_' | grep -q .; then
  echo "FAIL: symbols other than pqpool_* exported:"; nm -D --defined-only "$libdir/libpqpool.so" | grep -v ' pqpool_'
  exit 1
fi
echo "ok: installed under $prefix; the example built with pkg-config and with find_package(pqpool), shared and static"
