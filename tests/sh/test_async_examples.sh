#!/usr/bin/env bash
# test_async_examples.sh — the asynchronous API's examples (examples/
# async_epoll.c, async_libuv.c, async_libevent.c) each run 10 000 statements
# on their event loop against the throwaway cluster, every answer right,
# pipelined and with DB_PIPELINE=off, and never print the password.
set -u
dotenv_file=${PQPOOL_TEST_ENV:?}
url=$(sed -n 's/^DATABASE_URL=//p' "$dotenv_file")
pw=$(sed -n 's/^PQPOOL_TEST_PASSWORD=//p' "$dotenv_file")
fail=0
for loop in epoll libuv libevent; do
	bin=${PQPOOL_BUILD:?}/examples/example_async_$loop
	if [ ! -x "$bin" ]; then
		# scripts/deps.sh installs libuv1-dev and libevent-dev: a build
		# without them is not the one make test promises
		echo "FAIL: $bin was not built (libuv1-dev / libevent-dev missing?)"
		fail=1
		continue
	fi
	for pipeline in on off; do
		out=$(DATABASE_URL=$url DB_PIPELINE=$pipeline timeout 120 "$bin" 2>&1)
		rc=$?
		echo "$out"
		if [ $rc -ne 0 ]; then
			echo "FAIL: $loop (DB_PIPELINE=$pipeline): exit status $rc"
			fail=1
		fi
		grep -Eq "^$loop: 10000 statements, 10000 right, 0 wrong, " <<<"$out" ||
			{ echo "FAIL: $loop (DB_PIPELINE=$pipeline): not every answer right"; fail=1; }
		grep -qF -- "$pw" <<<"$out" && { echo "FAIL: $loop printed the password"; fail=1; }
	done
done
[ $fail -eq 0 ] && echo "ok: the three examples ran 10 000 statements each"
exit $fail
