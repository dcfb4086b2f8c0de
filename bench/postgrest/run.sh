#!/usr/bin/env bash
# bench/postgrest/run.sh: requests per second of replayed PostgREST requests
# (GET /rpc/whoami through pgbouncer) with apikey.postgrest_pre_request(),
# with an empty pre-request and without any, in rotating rounds; writes
# bench/results/postgrest.txt.  About 75 s at the defaults.
#
#   bench/postgrest/run.sh
#   BENCH_ROUNDS=3 BENCH_SECONDS=3 bench/postgrest/run.sh      # quicker
#
# Environment: BENCH_ROUNDS (5), BENCH_SECONDS (4: per variant per round),
# BENCH_CLIENTS (2), BENCH_SKIP_BUILD (0; 1: use the installed extension
# as is), as in bench/run.sh.  Starts its own throwaway cluster and
# pgbouncer, stopped on exit.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/../.." && pwd)
export REPO_ROOT
cd "$REPO_ROOT"
export BENCH_ROUNDS=${BENCH_ROUNDS:-5} BENCH_SECONDS=${BENCH_SECONDS:-4} BENCH_CLIENTS=${BENCH_CLIENTS:-2}
for v in BENCH_ROUNDS BENCH_SECONDS BENCH_CLIENTS; do
	if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
		echo "run.sh: $v must be a positive integer" >&2
		exit 2
	fi
done
COMMAND="BENCH_ROUNDS=$BENCH_ROUNDS BENCH_SECONDS=$BENCH_SECONDS BENCH_CLIENTS=$BENCH_CLIENTS BENCH_SKIP_BUILD=${BENCH_SKIP_BUILD:-0} bench/postgrest/run.sh"

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
	echo "== build and install apikey" >&2
	. scripts/build.sh
	apikey_build_install
fi
. scripts/cluster.sh
. scripts/pgbouncer.sh
. scripts/node-env.sh
echo "== cluster, pgbouncer, example schema" >&2
cluster_start 'jit = off'
node_env_start apikey_pgrst_bench
npm_ci test/postgrest

OUT="$REPO_ROOT/bench/results/postgrest.txt"
mkdir -p "$(dirname "$OUT")"
echo "== benchmark" >&2
{
	echo "apikey PostgREST hook benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "command: $COMMAND"
	echo "git: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src sql Makefile 2>/dev/null || echo ' + uncommitted changes in src/sql/Makefile')"
	echo "server: $(psql -X -At -d postgres -c 'SHOW server_version'), jit=off; $(pgbouncer --version | head -n 1), default_pool_size=4; node $(node --version); $(nproc) CPUs"
	echo "extension: $(psql -X -At -d "$APIKEY_TEST_DB" -c "SELECT extversion FROM pg_extension WHERE extname = 'apikey'"), not in shared_preload_libraries; apikey.postgrest_scopes = path (the example's)"
	echo
	node bench/postgrest/bench.js
} | tee "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
