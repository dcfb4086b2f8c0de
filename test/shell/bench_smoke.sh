#!/usr/bin/env bash
# bench_smoke.sh: bench/run.sh runs end to end at a tiny scale and writes
# every table it promises.  No timing is asserted: this proves only that
# the benchmark still works (plans checked, every variant valid, every
# pgbench variant ran), so a broken benchmark is found by the test command
# and not by the next person measuring.  Writes into a temporary directory,
# never over the committed bench/results.
# TAP output; needs an installed build (scripts/test.sh builds first).
set -u
REPO_ROOT=${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cd "$REPO_ROOT" || exit 1
. test/shell/tap.inc

out=$(mktemp -d "${TMPDIR:-/tmp}/apikey-bench-smoke.XXXXXX")
chmod 755 "$out"
trap 'rm -rf "$out"' EXIT

BENCH_SKIP_BUILD=${BENCH_SKIP_BUILD:-1} BENCH_RESULTS="$out" BENCH_KEYS=300 \
	BENCH_LOOP=300 BENCH_ROUNDS=1 BENCH_SECONDS=1 BENCH_PGBENCH_ROUNDS=1 \
	bash bench/run.sh >"$out/run.log" 2>&1
st=$?
ok "$st" 0 "bench/run.sh exits 0 at a tiny scale"
[ $st -eq 0 ] || sed 's/^/# /' "$out/run.log" | tail -30
r="$out/latest.txt"
ok "$(grep -c '^features: on' "$r" 2>/dev/null)" 1 "the run measured with the 1.1 features on (apikey preloaded)"
ok "$(grep -c '^plan checks: floor is a SubPlan with an Index Scan' "$r" 2>/dev/null)" 1 \
	"the floor's plan is a SubPlan with an Index Scan and each verify runs once per row"
ok "$(grep -c '^WARNING' "$r" 2>/dev/null)" 0 "no plan check failed"
ok "$(grep -E '^ (loop|hash|floor|plpgsql|plpgsql_scope|verify|verify_scope|malformed|not_found) +\|' "$r" 2>/dev/null | grep -c '| t$')" 9 \
	"every in-server variant ran and every row got its expected code"
ok "$(grep -cE '^ (plain INSERT|apikey_create) +\| +300 +\|' "$r" 2>/dev/null)" 2 \
	"bulk creation is timed for apikey_create and the plain INSERT reference"
ok "$(grep -c '^Size per million keys' "$r" 2>/dev/null)" 1 "the size per million keys is reported"
for v in pick floor plpgsql verify verify_scope echo_p floor_p readme_p target_p; do
	ok "$(grep -cE "^ $v +\| .*\| +[0-9]+ +\| +[0-9.]+ +\|" "$r" 2>/dev/null)" 1 "pgbench variant $v has a row in the summary"
done
tap_done
