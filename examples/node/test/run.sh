#!/usr/bin/env bash
# examples/node/test/run.sh: the example backend's test suite (TAP on stdout).
#
# Needs a running cluster with apikey installed: PGHOST, PGPORT and PGUSER
# exported (scripts/cluster.sh's cluster_start does that) and REPO_ROOT set.
# Creates the database apikey_node and a pgbouncer in front of it, installs
# the pinned npm packages, and runs test/*.test.js with node's test runner.
#
#   export REPO_ROOT=$PWD && . scripts/cluster.sh && cluster_start &&
#       bash examples/node/test/run.sh
set -uo pipefail

: "${REPO_ROOT:?set REPO_ROOT to the repository root}"
: "${PGHOST:?no cluster: run cluster_start first}"
: "${PGPORT:?no cluster: run cluster_start first}"
EXAMPLE="$REPO_ROOT/examples/node"

. "$REPO_ROOT/scripts/cluster.sh"   # helpers only (on_exit, as_pg, free_port)
. "$REPO_ROOT/scripts/pgbouncer.sh"
. "$REPO_ROOT/scripts/node-env.sh"

node_env_start apikey_node || { echo "Bail out! node_env_start failed"; exit 1; }
npm_ci "$EXAMPLE" || { echo "Bail out! npm ci failed in examples/node"; exit 1; }

export PGHOST PGPORT PGBOUNCER_PORT APIKEY_APP_PASSWORD APIKEY_TEST_DB
cd "$EXAMPLE" &&
	timeout 120 node --test --test-reporter=tap --test-timeout=60000 test/*.test.js
