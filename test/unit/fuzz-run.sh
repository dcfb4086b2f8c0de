#!/usr/bin/env bash
# fuzz-run.sh: run the libFuzzer target (fuzz_keyformat: the key format and
# the scope matcher, with ASan and UBSan) from the seed corpus in
# test/unit/corpus, on a copy so the repository stays clean.  TAP on stdout;
# fails on any report (crash, sanitizer finding, failed invariant).
#
#   bash test/unit/fuzz-run.sh                  about a minute (FUZZ_SECONDS=60)
#   FUZZ_RUNS=10000000 bash test/unit/fuzz-run.sh   ten million executions
set -u
cd "$(dirname "${BASH_SOURCE[0]}")" || exit 1
make -s fuzz_keyformat >/dev/null || { echo "not ok 1 - build the libFuzzer target (clang, libclang-rt)"; echo "1..1"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp corpus/* "$work/"
if [ -n "${FUZZ_RUNS:-}" ]; then
	limit=(-runs="$FUZZ_RUNS")
	what="$FUZZ_RUNS executions"
else
	limit=(-max_total_time="${FUZZ_SECONDS:-60}")
	what="${FUZZ_SECONDS:-60} s"
fi
./fuzz_keyformat "${limit[@]}" -print_final_stats=1 -artifact_prefix="$work/" "$work" >"$work/log" 2>&1
st=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
if [ $st -eq 0 ] && ! ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* >/dev/null 2>&1; then
	echo "ok 1 - libFuzzer: ${runs:-?} executions ($what) of the key format and scope matcher, no report"
else
	echo "not ok 1 - libFuzzer found a problem (exit $st)"
	tail -n 40 "$work/log" | sed 's/^/# /'
	for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-*; do
		[ -e "$a" ] && { mkdir -p ../../.build; cp "$a" ../../.build/; echo "# input kept in .build/$(basename "$a")"; }
	done
fi
echo "1..1"
[ $st -eq 0 ]
