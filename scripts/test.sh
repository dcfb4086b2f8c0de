#!/usr/bin/env bash
# test.sh: run every apikey test suite and end with "N passed, N failed".
#
#   scripts/test.sh              install deps, build, install, then run the
#                                unit, pg_regress, isolation, pgTAP, shell,
#                                PostgreSQL TAP, PostgREST replay and Node.js
#                                suites against the host's PostgreSQL
#   scripts/test.sh --pg MAJOR   the same on PostgreSQL MAJOR (15, 17, 18):
#                                on the host if it has that server, else in a
#                                Debian root made by scripts/pgroot.sh (root
#                                only); the unit tests and fuzzers are skipped
#                                there (they do not depend on the server)
#   scripts/test.sh --matrix     the host's run, then --pg for every other
#                                version of APIKEY_PG_VERSIONS (default
#                                "15 17 18"); prints each version's totals and
#                                one summed closing line
#
# Idempotent; the cluster is stopped and removed on exit, even on failure.
set -uo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
export REPO_ROOT

# the major of a pg_config
pg_major() {
	"$1" --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/'
}

# run_version MAJOR [--no-unit]: every suite on MAJOR, wherever it lives
run_version() {
	local v=$1 cfg=/usr/lib/postgresql/$1/bin/pg_config
	shift
	if [ -x "$cfg" ] && [ -d "$($cfg --includedir-server 2>/dev/null)" ]; then
		PG_CONFIG=$cfg PGVER=$v bash "$REPO_ROOT/scripts/test.sh" "$@"
	elif [ "$(id -u)" -eq 0 ]; then
		# 009_cross_major.pl there restores the oldest version's dump: make
		# it on the host first when no earlier run of the matrix has
		if [ "$v" != "$(pg_major "${PG_CONFIG:-pg_config}")" ] &&
			[ ! -f "$REPO_ROOT/.build/xmajor/pg$(pg_major "${PG_CONFIG:-pg_config}").expect" ]; then
			echo "== the host's PostgreSQL dumps a database for $v to restore"
			(. scripts/build.sh && apikey_build_install && bash test/tap/run.sh test/tap/009_cross_major.pl) >/dev/null 2>&1
		fi
		bash "$REPO_ROOT/scripts/pgroot.sh" run "$v" bash scripts/test.sh --no-unit
	else
		echo "test: PostgreSQL $v is not on this host, and a Debian root for it needs root"
		echo "0 passed, 1 failed"
		return 1
	fi
}

case "${1:-}" in
	--matrix)
		host=$(pg_major "${PG_CONFIG:-pg_config}")
		declare -A got
		tp=0
		tf=0
		for v in ${APIKEY_PG_VERSIONS:-15 17 18}; do
			echo "######## PostgreSQL $v"
			log=$(mktemp)
			if [ "$v" = "$host" ]; then
				bash "$REPO_ROOT/scripts/test.sh" 2>&1 | tee "$log"
			else
				run_version "$v" --no-unit 2>&1 | tee "$log"
			fi
			line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
			[ -n "$line" ] || line="0 passed, 1 failed"
			rm -f "$log"
			got[$v]=$line
			tp=$((tp + ${line%% passed*}))
			f=${line#*passed, }
			tf=$((tf + ${f%% failed*}))
		done
		echo
		echo "######## totals by version"
		for v in ${APIKEY_PG_VERSIONS:-15 17 18}; do
			echo "PostgreSQL $v: ${got[$v]}"
		done
		echo "$tp passed, $tf failed"
		[ "$tf" -eq 0 ]
		exit ;;
	--pg)
		run_version "$2"
		exit ;;
	--no-unit)
		NO_UNIT=1 ;;
	"") ;;
	*) echo "usage: $0 [--matrix | --pg MAJOR]" >&2; exit 2 ;;
esac
NO_UNIT=${NO_UNIT:-}

if [ -n "${PG_CONFIG:-}" ] && [ -z "${PGVER:-}" ]; then
	PGVER=$(pg_major "$PG_CONFIG")
	export PGVER
fi

# a Debian root (scripts/pgroot.sh) comes with its packages
[ -n "${APIKEY_IN_ROOT:-}" ] || bash scripts/install-deps.sh || exit 1

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

# suite NAME STATUS LOG: report a suite whose runner failed without a count
suite_failed() {
	echo "== $1: runner failed (exit $2), see $3"
	tail -n 30 "$3"
	FAILED=$((FAILED + 1))
}

# run_tap NAME COMMAND...: run a TAP producer into a log, add its ok / not ok
# lines to the totals, and count one more failure when the runner failed
# without reporting a failed test (a crash, a plan mismatch)
run_tap() {
	local name=$1 log="$LOGDIR/$1.log" st ok notok
	shift
	"$@" >"$log" 2>&1
	st=$?
	ok=$(grep -cE '^[[:space:]]*ok [0-9]+' "$log")
	notok=$(grep -cE '^[[:space:]]*not ok [0-9]+' "$log")
	PASSED=$((PASSED + ok))
	FAILED=$((FAILED + notok))
	echo "   $ok passed, $notok failed"
	grep -E '^[[:space:]]*not ok [0-9]+' "$log"
	[ $st -eq 0 ] || [ "$notok" -gt 0 ] || suite_failed "$name" $st "$log"
}

echo "== build ($($PG_CONFIG --version))"
apikey_build_install || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }

if [ -z "$NO_UNIT" ]; then
	echo "== unit tests (no server)"
	run_tap unit make -s -C test/unit check
	run_tap fuzz make -s -C test/unit fuzz-smoke
	run_tap libfuzzer bash test/unit/fuzz-run.sh
fi

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

# run_regress NAME DIFFS MAKE-ARGS...: make installcheck for one suite
run_regress() {
	local name=$1 diffs=$2 log="$LOGDIR/$1.log" st
	shift 2
	echo "== $name (make installcheck)"
	make -s installcheck PG_CONFIG="$PG_CONFIG" "$@" >"$log" 2>&1
	st=$?
	grep -E '^test ' "$log"
	count_regress "$name" "$log" $st
	[ -s "$diffs" ] && { echo "--- $diffs"; head -n 80 "$diffs"; }
}

# everything logged, statement texts (the callers' SQL) not: leak_scan.sh
# reads the logs at the end
LOG_CONF=("log_min_messages = debug5" "log_error_verbosity = verbose"
	"log_min_error_statement = panic")

# pg_regress and the isolation tester also against a server with apikey
# preloaded, as production runs it and packagers run make installcheck:
# the same expected files, but for sql/preload.sql's two (one per kind of
# server).  Its server log and outputs are kept for the leak scan.
echo "== starting a throwaway cluster with apikey preloaded"
if cluster_start "shared_preload_libraries = 'apikey'" "${LOG_CONF[@]}"; then
	run_regress pg_regress_preload regression.diffs ISOLATION=
	run_regress isolation_preload test/isolation/output_iso/regression.diffs REGRESS= \
		ISOLATION_PRELOADED="credits"
	# metered keys through PostgREST's transactions need the preload too
	run_tap postgrest_preload bash test/postgrest/run.sh test/postgrest/preload/*.test.js
	cp "$CLUSTER_LOG" "$LOGDIR/preload_server.log"
	cat results/*.out test/isolation/output_iso/results/*.out >"$LOGDIR/preload_results.log" 2>/dev/null
	cluster_stop
else
	echo "== cluster with apikey preloaded: could not start"
	FAILED=$((FAILED + 1))
fi

echo "== starting a throwaway cluster"
cluster_start "${LOG_CONF[@]}" || { echo "0 passed, 1 failed"; exit 1; }

run_regress pg_regress regression.diffs ISOLATION=
run_regress isolation test/isolation/output_iso/regression.diffs REGRESS=

echo "== pgTAP"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS apikey_tap" -c "CREATE DATABASE apikey_tap" >/dev/null &&
	psql -X -q -v ON_ERROR_STOP=1 -d apikey_tap -c "CREATE EXTENSION pgtap; CREATE EXTENSION pgcrypto; CREATE EXTENSION apikey" >/dev/null
run_tap pgtap pg_prove --verbose --failures -d apikey_tap test/pgtap/*.sql
tail -n 4 "$LOGDIR/pgtap.log"

for f in test/shell/*.sh; do
	[ -e "$f" ] || continue
	[ "$f" = test/shell/leak_scan.sh ] && continue	# runs last
	echo "== $(basename "$f")"
	run_tap "$(basename "$f" .sh)" bash "$f"
done

# PostgreSQL's own TAP framework: servers with apikey preloaded, restarts,
# crashes and a standby, each suite starting its own
echo "== PostgreSQL TAP suites (test/tap)"
run_tap perl_tap bash test/tap/run.sh

# Node.js suites: PostgREST transactions replayed through pgbouncer and
# directly, and the example application backend over real HTTP
echo "== PostgREST replay (test/postgrest)"
run_tap postgrest bash test/postgrest/run.sh
echo "== Node.js example backend (examples/node)"
run_tap node_example bash examples/node/test/run.sh

# last: nothing the suites made the server log or show may hold a key
echo "== leak scan"
CLUSTER_LOG=$CLUSTER_LOG run_tap leak_scan bash test/shell/leak_scan.sh

cluster_stop
echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
