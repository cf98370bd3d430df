# assert.sh — sourced by the shell tests: checks that count and print expected
# against actual, and a millisecond clock. Sourcing scripts report
# "$checks checks, $fails failed" and exit non-zero on failures.
checks=0
fails=0
pass() {
	checks=$((checks + 1))
	echo "ok   $1"
}
fail() {
	checks=$((checks + 1))
	fails=$((fails + 1))
	echo "FAIL $1"
	shift
	local line
	for line in "$@"; do echo "       $line"; done
}
# expect_eq <what> <expected> <actual>
expect_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else
		fail "$1" "expected: $2" "actual:   $(head -c 600 <<<"$3")"
	fi
}
# expect_ne <what> <unexpected> <actual>
expect_ne() {
	if [ "$2" != "$3" ]; then pass "$1"; else fail "$1" "expected anything but: $2"; fi
}
# expect_match <what> <extended regex> <text>: some line of text matches
expect_match() {
	if grep -Eq -- "$2" <<<"$3"; then pass "$1"; else
		fail "$1" "expected a line matching: $2" "actual: $(head -c 800 <<<"$3")"
	fi
}
# expect_no_match <what> <extended regex> <text>
expect_no_match() {
	if ! grep -Eq -- "$2" <<<"$3"; then pass "$1"; else
		fail "$1" "expected no line matching: $2" "found: $(grep -E -- "$2" <<<"$3" | head -n 3)"
	fi
}
# expect_jq <what> <jq filter that must be true> <json>
expect_jq() {
	if jq -e "$2" >/dev/null 2>&1 <<<"$3"; then pass "$1"; else
		fail "$1" "jq filter false: $2" "on: $(head -c 800 <<<"$3")"
	fi
}
# expect_less <what> <limit> <value> (integers)
expect_less() {
	if [ "$3" -lt "$2" ]; then pass "$1 ($3 < $2)"; else fail "$1" "expected below $2" "actual: $3"; fi
}
# expect_absent <what> <secret> <text>: the secret is not shown on failure either
expect_absent() {
	if ! grep -qF -- "$2" <<<"$3"; then pass "$1"; else
		fail "$1" "the secret appears in line(s) $(grep -nF -- "$2" <<<"$3" | cut -d: -f1 | head -n 20 | tr '\n' ' ')"
	fi
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
