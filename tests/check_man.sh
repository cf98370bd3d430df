#!/usr/bin/env bash
# check_man.sh — the man pages render without a single warning and say what
# the code does, each list taken from the code at test time, never kept
# twice:
#  - pqpool(1) has an ENVIRONMENT item for every environment variable that
#    src/, common/, cmd/ and bench/ read, and none for a variable they do not
#    read; it names every command and every option of the CLI;
#  - pqpool(3) names every function of include/pqpool.h, no pqpool_ name that
#    the header does not declare, and its example compiles;
#  - both carry the header's PQPOOL_VERSION.
#
#   PQPOOL_SRC  the source tree
#   PQPOOL_BIN  the pqpool binary (optional): `pqpool config --json` lists
#               the settings it reads, a second source for the variables
#   PQPOOL_CC   the C compiler for the example (default cc)
set -uo pipefail
src=${PQPOOL_SRC:?}
# shellcheck source=sh/assert.sh
. "$src/tests/sh/assert.sh"
# expect_more <what> <floor> <value>: a scan found enough to be trusted
expect_more() {
	if [ "$3" -gt "$2" ]; then pass "$1 ($3)"; else fail "$1" "found only $3"; fi
}
# expect_named <what> <extended regex> <page text>: without the page on failure
expect_named() {
	if grep -Eq -- "$2" <<<"$3"; then pass "$1"; else fail "$1" "no match for $2 in the page"; fi
}
man1=$src/man/pqpool.1
man3=$src/man/pqpool.3
work=$(mktemp -d /tmp/pqpool-man.XXXXXX)
trap 'rm -rf "$work"' EXIT

# ---- the code's side ----

# The C files of the library, the CLI and bench, wherever they are moved to.
mapfile -t cfiles < <(find "$src/src" "$src/common" "$src/cmd" "$src/bench" -name '*.c' | sort)

# Environment variables read, one "NAME file:line" a line. A read is an
# upper-case name given as a whole argument to getenv() or to a call that is
# handed an environment: a callee or an earlier argument named for it
# (*env*, *lookup*) or declared with such a type (env_src e, const env_file
# *f, pqpool_getenv_fn lookup); setenv() and the like write, they do not
# read. Besides, every name in a table of a struct with a `const char *env`
# member (src/config.c's fields[], whatever its entries' macro is called).
env_from_code() {
	perl - "$@" <<'PERL'
use strict; use warnings;
my $NAME = qr/[A-Z][A-Z0-9_]*[A-Z0-9]/;
for my $f (@ARGV) {
	open my $fh, '<', $f or die "$f: $!"; local $/; my $c = <$fh>;
	# comments out, strings and line breaks kept
	$c =~ s{("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')|/\*.*?\*/|//[^\n]*}
	       {defined $1 ? $1 : ($& =~ tr/\n//cdr)}gse;
	my $line = sub { 1 + (substr($c, 0, $_[0]) =~ tr/\n//) };
	my %handle;
	while ($c =~ /\b(\w*(?:env|getenv_fn)\w*)\s*(?:const\s*)?\*?\s*(?:const\s+)?\*?\s*([A-Za-z_]\w*)\s*[=;,)\[]/g) {
		$handle{$2} = 1;
	}
	my $envish = sub { $_[0] =~ /env|lookup/i || $handle{$_[0]} };
	while ($c =~ /"($NAME)"/g) {
		my ($name, $at, $end) = ($1, $-[0], $+[0]);
		next unless substr($c, 0, $at) =~ /[(,]\s*\z/ && substr($c, $end) =~ /\A\s*[,)]/;
		# the innermost bracket still open before the literal
		my ($depth, $i) = (0, $at - 1);
		for (; $i >= 0; $i--) {
			my $ch = substr($c, $i, 1);
			if ($ch =~ /[)\]}]/) { $depth++ }
			elsif ($ch =~ /[(\[{]/) { last if $depth == 0; $depth-- }
		}
		next unless $i >= 0 && substr($c, $i, 1) eq '(';
		next unless substr($c, 0, $i) =~ /(\w+)\s*\z/;
		my $callee = $1;
		next if $callee =~ /^(?:set|put|unset|clear)env$/;
		my @args = substr($c, $i + 1, $at - $i - 1) =~ /([A-Za-z_]\w*)/g;
		next unless $callee =~ /getenv/ || $envish->($callee) || grep { $envish->($_) } @args;
		print "$name $f:", $line->($at), "\n";
	}
	my @types;
	while ($c =~ /typedef\s+struct\s*\w*\s*\{([^{}]*)\}\s*(\w+)\s*;/g) {
		my ($body, $type) = ($1, $2);
		push @types, $type if $body =~ /\bconst\s+char\s*\*\s*\w*env\w*\s*;/;
	}
	for my $type (@types) {
		while ($c =~ /\b\Q$type\E\s+\w+\s*\[\s*\w*\s*\]\s*=\s*\{/g) {
			my $start = $+[0];
			my $stop = index($c, "};", $start);
			my $table = substr($c, $start, $stop - $start);
			while ($table =~ /"($NAME)"/g) {
				print "$1 $f:", $line->($start + $-[0]), " (table)\n";
			}
		}
	}
}
PERL
}

# The header, its comments out.
header_code() {
	perl -0777 -pe 's{/\*.*?\*/}{ }gs; s{//[^\n]*}{}g' "$src/include/pqpool.h"
}

# ---- the pages' side ----

# A page's text with roff's escapes for fonts and hyphens undone, so that
# \fBpqpool_open\fR reads pqpool_open and \-\-json reads --json.
plain() {
	sed -e 's/\\f[BIRP]//g; s/\\f(..//g; s/\\f\[[^]]*\]//g; s/\\-/-/g; s/\\e/\\/g; s/\\[:&%]//g' "$1"
}

# The names in the tags (.TP/.TQ) of pqpool(1)'s ENVIRONMENT section.
env_items() {
	plain "$man1" | awk '
		/^\.SH/ { in_env = ($0 ~ /^\.SH "?ENVIRONMENT"?$/); next }
		in_env && tag { print; tag = 0; next }
		in_env && /^\.T[PQ]/ { tag = 1 }' |
		grep -oE '\b[A-Z][A-Z0-9_]*[A-Z0-9]\b' | sort -u
}

# ---- 1. they render without a warning ----

for page in "$man1" "$man3"; do
	name=$(basename "$page")
	if [ ! -f "$page" ]; then fail "$name exists"; continue; fi
	warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
	expect_eq "$name renders with groff -man -Tutf8 -ww and no warning" "" "$warnings"
	expect_eq "$name is ASCII (groff reads it without preconv)" "" \
		"$(LC_ALL=C grep -n '[^[:print:][:space:]]' "$page")"
done

# ---- 2. the version ----

version=$(sed -n 's/^#define PQPOOL_VERSION "\(.*\)"/\1/p' "$src/include/pqpool.h")
for page in "$man1" "$man3"; do
	expect_match "$(basename "$page")'s .TH names pqpool $version" "^\.TH PQPOOL [13] .*\"pqpool $version\"" \
		"$(grep '^\.TH' "$page")"
done

# ---- 3. pqpool(1): every variable the code reads, and only those ----

env_from_code "${cfiles[@]}" >"$work/env.txt"
if [ -n "${PQPOOL_BIN:-}" ]; then
	# in an empty folder (no .env.local) and environment: nothing to reject
	(cd "$work" && env -i PATH="$PATH" "$PQPOOL_BIN" config --json) >"$work/config.json" ||
		fail "pqpool config --json runs with an empty environment"
	jq -r 'keys[] | . + " pqpool config --json"' "$work/config.json" >>"$work/env.txt"
fi
mapfile -t read_vars < <(awk '{print $1}' "$work/env.txt" | sort -u)
expect_more "variables found in the code: more than 30 (the scan still works)" 30 "${#read_vars[@]}"
n_table=$(grep -c '(table)$' "$work/env.txt")
expect_more "variables found in src/config.c's table: more than 10" 10 "$n_table"
mapfile -t items < <(env_items)
declare -A documented=() is_read=()
for v in "${items[@]}"; do documented[$v]=1; done
for v in "${read_vars[@]}"; do
	is_read[$v]=1
	if [ -n "${documented[$v]:-}" ]; then
		pass "pqpool.1 documents $v"
	else
		fail "pqpool.1 documents $v" "no .TP/.TQ item for it under ENVIRONMENT; it is read at:" \
			"$(grep "^$v " "$work/env.txt" | cut -d' ' -f2- | head -n 3)"
	fi
done
for v in "${items[@]}"; do
	[ -n "${is_read[$v]:-}" ] || fail "pqpool.1's ENVIRONMENT item $v is a variable the code reads" \
		"nothing in src/, common/, cmd/ or bench/ reads it"
done

# ---- 4. pqpool(1): every command and option ----

text1=$(plain "$man1")
# each `cli_command X = {` and the .name it is given
mapfile -t commands < <(perl -0777 -ne 'while (/\bcli_command\s+\w+\s*=\s*\{/g) {
	print "$1\n" if substr($_, pos) =~ /\A[^;]*?\.name\s*=\s*(?:"(\w+)"|NULL)/s && defined $1 }' \
	"${cfiles[@]}")
expect_more "commands found in cmd/: more than 3" 3 "${#commands[@]}"
for c in "${commands[@]}"; do
	expect_named "pqpool.1 has a section for pqpool $c" "^\.SS \"pqpool $c( |\")" "$text1"
done
mapfile -t options < <(perl -0777 -ne 'while (/\bcli_option\s+\w+\s*\[\s*\]\s*=\s*\{(.*?)\n\};/gs) {
	my $t = $1; while ($t =~ /\{\s*"([a-z][a-z0-9-]*)"\s*,\s*(?:\x27(.)\x27|0)/g) {
		print "--$1\n"; print "-$2\n" if defined $2 } }' "${cfiles[@]}" | sort -u)
expect_more "options found in cmd/: more than 10" 10 "${#options[@]}"
for o in "${options[@]}"; do
	expect_named "pqpool.1 names the option $o" "(^|[^a-z0-9-])$o([^a-z0-9-]|$)" "$text1"
done

# ---- 5. pqpool(3): every function of the header, and only its names ----

header=$(header_code)
mapfile -t functions < <(perl -0777 -ne '
	while (/PQPOOL_API\b[^;(]*?\b(pqpool_\w+)\s*\(/g) { print "$1\n" }
	while (/#\s*define\s+(pqpool_\w+)\(/g) { print "$1\n" }' <<<"$header" | sort -u)
expect_more "functions found in include/pqpool.h: more than 40" 40 "${#functions[@]}"
text3=$(plain "$man3")
for fn in "${functions[@]}"; do
	expect_named "pqpool.3 names $fn" "(^|[^A-Za-z0-9_])$fn([^A-Za-z0-9_]|$)" "$text3"
done
declare -A declared=()
while read -r id; do declared[$id]=1; done < <(grep -oE '\bpqpool_[a-z0-9_]+' <<<"$header" | sort -u)
while read -r id; do
	[ -n "${declared[$id]:-}" ] || fail "pqpool.3 names $id, which include/pqpool.h declares" \
		"no such name in the header (renamed or removed?)"
done < <(grep -oE '\bpqpool_[a-z0-9_]+' <<<"$text3" | sort -u)

# ---- 6. pqpool(3)'s example compiles against the header ----

awk '/^\.SH EXAMPLES/ { ex = 1 } ex && /^\.EE/ { exit } ex && on { print } ex && /^\.EX/ { on = 1 }' \
	"$man3" | sed -e 's/\\e/\\/g; s/\\-/-/g' >"$work/example.c"
if [ -s "$work/example.c" ]; then
	# shellcheck disable=SC2046
	out=$("${PQPOOL_CC:-cc}" -std=c11 -Wall -Wextra -Werror -fsyntax-only -I"$src/include" \
		$(pkg-config --cflags libpq) "$work/example.c" 2>&1)
	expect_eq "pqpool.3's example compiles with -Wall -Wextra -Werror" "" "$out"
else
	fail "pqpool.3 has an example (.EX under EXAMPLES)"
fi

echo "$checks checks, $fails failed"
[ "$fails" -eq 0 ]
