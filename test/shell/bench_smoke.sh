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

BENCH_SKIP_BUILD=${BENCH_SKIP_BUILD:-1} BENCH_RESULTS="$out/results" BENCH_KEYS=300 \
	BENCH_SWEEP="100 600" BENCH_LOOP=300 BENCH_ROUNDS=1 BENCH_SECONDS=1 \
	BENCH_SWEEP_SECONDS=1 BENCH_PGBENCH_ROUNDS=1 BENCH_PERF=0 \
	bash bench/run.sh >"$out/run.log" 2>&1
st=$?
ok "$st" 0 "bench/run.sh exits 0 at a tiny scale"
[ $st -eq 0 ] || sed 's/^/# /' "$out/run.log" | tail -30
r="$out/results/latest.txt"
ok "$(grep -c '^features: on' "$r" 2>/dev/null)" 1 "the run measured with the 1.1 features on (apikey preloaded)"
ok "$(grep -c '^plan checks: floor is a SubPlan with an Index Scan' "$r" 2>/dev/null)" 1 \
	"the floor's plan is a SubPlan with an Index Scan and each verify runs once per row"
ok "$(grep -c '^WARNING' "$r" 2>/dev/null)" 0 "no plan check failed"
ok "$(grep -E '^ (loop|hash|floor|plpgsql|plpgsql_update|verify|verify_cold|floor_cold|verify_scope|floor_hot|verify_hot|malformed|not_found) +\|' "$r" 2>/dev/null | grep -c '| t$')" 13 \
	"every in-server variant ran and every row got its expected code"
ok "$(grep -cE '^ (plain INSERT|apikey_create) +\| +600 +\|' "$r" 2>/dev/null)" 2 \
	"bulk creation is timed for apikey_create (summed over the sweep) and the plain INSERT reference"
ok "$(grep -c '^Size per million keys' "$r" 2>/dev/null)" 1 "the size per million keys is reported"
for v in echo_p floor_p readme_p target_p sub_p plpgsql_p plpgsql_update_p floor_zipf_p readme_zipf_p; do
	ok "$(grep -cE "^ +2 \| $v +\| .*\| +[0-9]+ +\| +[0-9.]+ +\|" "$r" 2>/dev/null)" 1 "pgbench variant $v (2 clients) has a row in the summary"
done
for v in echo_p floor_p readme_p; do
	ok "$(grep -cE "^ +1 \| $v +\| .*\| +[0-9]+ +\| +[0-9.]+ +\|" "$r" 2>/dev/null)" 1 "pgbench variant $v (1 client) has a row in the summary"
done
ok "$(grep -cE "^ +2 \| readme_p@flush60s +\| .*\| +[0-9]+ +\| +[0-9.]+ +\|" "$r" 2>/dev/null)" 1 \
	"the README form also ran with usage written once a minute"
ok "$(grep -cE '^ +(100|300|600) \| (echo_p|floor_p|readme_p) +\| +2 \| +[0-9]+ \| +[0-9]+ \| +[0-9]+$' "$r" 2>/dev/null)" 9 \
	"the sweep has TPS, p50 and p99 for 3 variants at 100, 300 and 600 keys"
ok "$(grep -cE '^ +(100|300|600) \| readme_p@ref +\| +2 \| +[0-9]+ \| +[0-9]+ \| +[0-9]+$' "$r" 2>/dev/null)" 3 \
	"and for readme_p on the reference cluster (100 keys) beside each of them"
ok "$(grep -cE '^ +8 \| +[0-9.]* \| +[0-9.]* \| +[0-9]* \| +[0-9]* \| +[0-9]+$' "$r" 2>/dev/null)" 1 \
	"eight backends shared a hot set, with their hit rates from apikey.stats"
ok "$(grep -cE '^ +[0-9]+ \| +[0-9]+ \| [0-9]+ [kM]B +\| +[0-9]+$' "$r" 2>/dev/null)" 1 "the shared cache's figures are reported"
md="$out/RESULTS.md"
ok "$(grep -cE '^\| (In-server|End to end|[0-9]+ backends sharing|A malformed|p99 latency)' "$md" 2>/dev/null)" 10 \
	"RESULTS.md states all ten targets (the end-to-end ones for 1 and 2 clients)"
ok "$(grep -cE '\| (yes|\*\*no\*\*) \|$' "$md" 2>/dev/null)" 10 "each target says met or not"
ok "$(grep -c '<svg' "$out/results/sweep.svg" 2>/dev/null)" 1 "the plot is an SVG"
tap_done
