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

# count_regress NAME LOG STATUS: pg_regress ends with "All N tests passed."
# or "M of N tests failed."
count_regress() {
	local line n m
	line=$(grep -E 'tests passed|tests failed' "$2" | tail -n 1)
	case "$line" in
		*"tests passed"*)
			n=$(echo "$line" | sed 's/[^0-9]*\([0-9]*\).*/\1/')
			PASSED=$((PASSED + n))
			echo "   $n passed, 0 failed" ;;
		*"tests failed"*)
			m=$(echo "$line" | sed 's/[^0-9]*\([0-9]*\) of \([0-9]*\).*/\1/')
			n=$(echo "$line" | sed 's/[^0-9]*\([0-9]*\) of \([0-9]*\).*/\2/')
			PASSED=$((PASSED + n - m))
			FAILED=$((FAILED + m))
			echo "   $((n - m)) passed, $m failed" ;;
		*)
			suite_failed "$1" "$3" "$2" ;;
	esac
}

echo "== pg_regress (make installcheck)"
make -s installcheck ISOLATION= PG_CONFIG="$PG_CONFIG" >"$LOGDIR/regress.log" 2>&1
st=$?
grep -E '^test ' "$LOGDIR/regress.log"
count_regress pg_regress "$LOGDIR/regress.log" $st
[ -s regression.diffs ] && { echo "--- regression.diffs"; head -n 80 regression.diffs; }

echo "== isolation (make installcheck)"
make -s installcheck REGRESS= PG_CONFIG="$PG_CONFIG" >"$LOGDIR/isolation.log" 2>&1
st=$?
grep -E '^test ' "$LOGDIR/isolation.log"
count_regress isolation "$LOGDIR/isolation.log" $st
d=test/isolation/output_iso/regression.diffs
[ -s "$d" ] && { echo "--- $d"; head -n 80 "$d"; }

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
