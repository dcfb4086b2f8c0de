#!/usr/bin/env bash
# test/postgrest/run.sh: the PostgREST replay suite, as TAP on stdout.
#
#   bash test/postgrest/run.sh
#
# Needs a running cluster (PGHOST, PGPORT, PGUSER exported, as
# scripts/cluster.sh's cluster_start leaves them) and REPO_ROOT.  Makes the
# database apikey_pgrst with examples/postgrest/schema.sql, starts a
# pgbouncer in front of it (stopped on exit), installs the pinned npm
# packages if needed, and runs every test/postgrest/*.test.js, one file at
# a time (some change the authenticator role's settings).  Exits non-zero
# if a test fails.
set -uo pipefail

REPO_ROOT=${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export REPO_ROOT
cd "$REPO_ROOT" || exit 1
: "${PGHOST:?run with a cluster started (scripts/cluster.sh)}" "${PGPORT:?}" "${PGUSER:?}"

# helpers only (as_pg, free_port, on_exit): the caller's cluster is used
. scripts/cluster.sh
. scripts/pgbouncer.sh
. scripts/node-env.sh

node_env_start apikey_pgrst || { echo "test/postgrest: environment setup failed" >&2; exit 1; }
npm_ci test/postgrest || { echo "test/postgrest: npm ci failed" >&2; exit 1; }
# the suites given, or every one that needs no preloaded server
if [ $# -gt 0 ]; then
	node --test --test-concurrency=1 --test-reporter=tap "$@"
else
	node --test --test-concurrency=1 --test-reporter=tap test/postgrest/*.test.js
fi
