#!/usr/bin/env bash
# Runs each libFuzzer target for SECONDS on a copy of its seed corpus in the
# build directory (new inputs never land in the repository), then prints the
# executions per target. Fails when a target finds a crash, a leak or a hang.
#   fuzz/run.sh BUILD_DIR SECONDS TARGET...
set -uo pipefail
build=$1 seconds=$2
shift 2
src=$(cd "$(dirname "$0")" && pwd)
out=$build/fuzz-runs
mkdir -p "$out"

declare -A execs status took
failed=0
for t in "$@"; do
  corpus=$out/$t/corpus
  rm -rf "$out/$t"
  mkdir -p "$corpus" "$out/$t/artifacts"
  cp "$src/corpus/$t/"* "$corpus/"
  dict=()
  [ -f "$src/$t.dict" ] && dict=("-dict=$src/$t.dict")
  echo "fuzz: $t for ${seconds}s (log: $out/$t/log)" >&2
  start=$SECONDS
  # -timeout: one input taking this long is a hang, reported like a crash
  "$build/fuzz/$t" "$corpus" "${dict[@]}" -max_total_time="$seconds" -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$out/$t/artifacts/" >"$out/$t/log" 2>&1
  rc=$?
  took[$t]=$((SECONDS - start))
  execs[$t]=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t/log")
  if [ $rc -eq 0 ]; then
    status[$t]=ok
  else
    status[$t]="FAILED (exit $rc): $(ls "$out/$t/artifacts" | head -1)"
    failed=1
    grep -E 'ERROR|SUMMARY|#[0-9]+ 0x' "$out/$t/log" | head -20 >&2
  fi
done

printf '%-14s %12s %8s  %s\n' target executions seconds result
for t in "$@"; do
  printf '%-14s %12s %8s  %s\n' "$t" "${execs[$t]:-?}" "${took[$t]}" "${status[$t]}"
done
exit $failed
