#!/usr/bin/env bash
# check_layers.sh — the library's shape as ARCHITECTURE.md states it, checked
# on what was compiled: every call between the library's files (an undefined
# symbol of one object that another defines) goes from a higher layer to a
# lower one, so that no two files call each other, directly or around a
# circle; every file has a layer; the pool's own struct is seen only from the
# pool layer up; and the CLI and bench include no header of src/.
#
#   PQPOOL_SRC      the source tree
#   PQPOOL_OBJECTS  the library's object files (':'-separated)
set -euo pipefail
src=${PQPOOL_SRC:?}
objects=${PQPOOL_OBJECTS:?}
arch="$src/ARCHITECTURE.md"
fail=0
bad() { echo "FAIL $*"; fail=1; }

[ -f "$arch" ] || { echo "FAIL no ARCHITECTURE.md"; exit 1; }

# The layer table: the lines between the markers, "<n> <file> <file>...".
declare -A layer
while read -r n files; do
	for f in $files; do layer[$f]=$n; done
done < <(sed -n '/<!-- layers -->/,/<!-- \/layers -->/p' "$arch" | grep -E '^ *[0-9]+ ')
[ ${#layer[@]} -gt 10 ] || { echo "FAIL no layer table in ARCHITECTURE.md"; exit 1; }

name_of() { basename "$1" .c.o; }

# Which object defines each global symbol.
declare -A def
IFS=':' read -r -a objs <<<"$objects"
for o in "${objs[@]}"; do
	f=$(name_of "$o")
	[ -n "${layer[$f]:-}" ] || bad "$f.c is in no layer of ARCHITECTURE.md"
	while read -r sym; do def[$sym]=$f; done < <(nm --defined-only -g "$o" | awk '{print $3}')
done

# Every call across files goes down.
edges=0
for o in "${objs[@]}"; do
	f=$(name_of "$o")
	for sym in $(nm -u "$o" | awk '{print $2}'); do
		to=${def[$sym]:-}
		[ -n "$to" ] && [ "$to" != "$f" ] || continue
		edges=$((edges + 1))
		if [ "${layer[$f]:-0}" -le "${layer[$to]:-0}" ]; then
			bad "$f.c (layer ${layer[$f]:-?}) calls $sym of $to.c (layer ${layer[$to]:-?})"
		fi
	done
done
[ "$edges" -gt 20 ] || bad "only $edges calls between files found: is PQPOOL_OBJECTS right?"

# Every file named in the table exists (cancel.c and cancel_compat.c are
# alternatives: only one is compiled).
for f in "${!layer[@]}"; do
	[ -f "$src/src/$f.c" ] || [ -f "$src/common/$f.c" ] || bad "ARCHITECTURE.md names $f.c, which does not exist"
done

# struct pqpool is the pool layer's: nothing below it includes pool.h.
pin=${layer[pin]}
for c in "$src"/src/*.c; do
	f=$(basename "$c" .c)
	if grep -q '#include "pool.h"' "$c" && [ "${layer[$f]:-0}" -lt "$pin" ]; then
		bad "$f.c (layer ${layer[$f]:-?}) includes pool.h, below the pool layer ($pin)"
	fi
done

# The CLI and bench are hosts of include/ and common/ only.
for h in "$src"/src/*.h; do
	hn=$(basename "$h")
	hits=$(grep -rn --include='*.[ch]' "#include \"$hn\"" "$src/cmd" "$src/bench" || true)
	# a header of the same name in common/, or in the including file's
	# folder or one above it inside cmd/ or bench/ (the CLI's include path
	# is cmd/pqpool and cmd/pqpool/serve), is theirs
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		file=${line%%:*}
		dir=$(dirname "$file") own=0
		while :; do
			[ -f "$dir/$hn" ] && { own=1; break; }
			case "$dir" in "$src/cmd/"*|"$src/bench/"*) dir=$(dirname "$dir") ;; *) break ;; esac
		done
		[ "$own" = 1 ] || [ -f "$src/common/$hn" ] ||
			bad "$line: includes the library's private $hn"
	done <<<"$hits"
done

if [ "$fail" = 0 ]; then
	echo "PASS ${#objs[@]} files, $edges calls across files, all downward"
fi
exit "$fail"
