#!/usr/bin/env bash
# test.sh: run every apikey test suite and end with "N passed, N failed".
#
#   scripts/test.sh              install deps, build, install, then run the
#                                unit, pg_regress, isolation and pgTAP suites
#                                against a throwaway cluster
#
# Idempotent; the cluster is stopped and removed on exit, even on failure.
set -uo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
export REPO_ROOT

bash scripts/install-deps.sh || exit 1

if [ "${CI:-}" = "true" ]; then
	export PG_CFLAGS="${PG_CFLAGS:-} -Werror"
fi

. scripts/build.sh
. scripts/cluster.sh

PASSED=0
FAILED=0
LOGDIR="$REPO_ROOT/.build/test-logs"
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"

# count_tap FILE: add a TAP stream's ok / not ok lines to the totals
count_tap() {
	local ok notok
	ok=$(grep -cE '^[[:space:]]*ok [0-9]+' "$1")
	notok=$(grep -cE '^[[:space:]]*not ok [0-9]+' "$1")
	PASSED=$((PASSED + ok))
	FAILED=$((FAILED + notok))
	echo "   $ok passed, $notok failed"
}

# suite NAME STATUS LOG: report a suite whose runner failed without a count
suite_failed() {
	echo "== $1: runner failed (exit $2), see $3"
	tail -n 30 "$3"
	FAILED=$((FAILED + 1))
}

echo "== build"
apikey_build_install || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }

echo "== unit tests (no server)"
make -s -C test/unit check >"$LOGDIR/unit.log" 2>&1
st=$?
count_tap "$LOGDIR/unit.log"
[ $st -eq 0 ] || grep -q '^not ok' "$LOGDIR/unit.log" || suite_failed unit $st "$LOGDIR/unit.log"

make -s -C test/unit fuzz-smoke >"$LOGDIR/fuzz.log" 2>&1
st=$?
count_tap "$LOGDIR/fuzz.log"
[ $st -eq 0 ] || grep -q '^not ok' "$LOGDIR/fuzz.log" || suite_failed fuzz $st "$LOGDIR/fuzz.log"

echo "== starting a throwaway cluster"
cluster_start || { echo "0 passed, 1 failed"; exit 1; }

echo "== pg_regress and isolation (make installcheck)"
make -s installcheck PG_CONFIG="$PG_CONFIG" >"$LOGDIR/installcheck.log" 2>&1
st=$?
# one summary line from pg_regress, one from pg_isolation_regress
grep -E '^(test |     |parallel group| *All | *[0-9]+ of )' "$LOGDIR/installcheck.log" || true
count_summaries=$(grep -cE 'tests passed|tests failed' "$LOGDIR/installcheck.log")
while read -r line; do
	case "$line" in
		*"tests passed"*) n=$(echo "$line" | sed 's/[^0-9]*\([0-9]*\).*/\1/'); PASSED=$((PASSED + n)) ;;
		*"tests failed"*) m=$(echo "$line" | sed 's/[^0-9]*\([0-9]*\) of \([0-9]*\).*/\1/'); n=$(echo "$line" | sed 's/[^0-9]*\([0-9]*\) of \([0-9]*\).*/\2/'); PASSED=$((PASSED + n - m)); FAILED=$((FAILED + m)) ;;
	esac
done < <(grep -E 'tests passed|tests failed' "$LOGDIR/installcheck.log")
if [ "$count_summaries" -lt 2 ]; then
	suite_failed installcheck $st "$LOGDIR/installcheck.log"
fi
for d in regression.diffs test/isolation/output_iso/regression.diffs; do
	[ -s "$d" ] && { echo "--- $d"; head -n 80 "$d"; }
done

echo "== pgTAP"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS apikey_tap" -c "CREATE DATABASE apikey_tap" >/dev/null &&
	psql -X -q -v ON_ERROR_STOP=1 -d apikey_tap -c "CREATE EXTENSION pgtap; CREATE EXTENSION pgcrypto; CREATE EXTENSION apikey" >/dev/null
pg_prove --verbose --failures -d apikey_tap test/pgtap/*.sql >"$LOGDIR/pgtap.log" 2>&1
st=$?
tail -n 4 "$LOGDIR/pgtap.log"
count_tap "$LOGDIR/pgtap.log"
[ $st -eq 0 ] || { grep -E '^[[:space:]]*not ok' "$LOGDIR/pgtap.log"; grep -qE '^[[:space:]]*not ok' "$LOGDIR/pgtap.log" || suite_failed pgtap $st "$LOGDIR/pgtap.log"; }

for f in test/shell/*.sh; do
	[ -e "$f" ] || continue
	echo "== $(basename "$f")"
	bash "$f" >"$LOGDIR/$(basename "$f").log" 2>&1
	st=$?
	count_tap "$LOGDIR/$(basename "$f").log"
	[ $st -eq 0 ] || grep -q '^not ok' "$LOGDIR/$(basename "$f").log" || suite_failed "$f" $st "$LOGDIR/$(basename "$f").log"
done

cluster_stop
echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
