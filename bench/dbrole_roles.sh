#!/usr/bin/env bash
# bench/dbrole_roles.sh: the PostgREST hook with and without a db_role on a
# cluster of 100,000 roles (issue: the db_role check scanned every role).
# Prints pgbench latency for each; a throwaway cluster, removed on exit.
cd "$(dirname "$0")/.." && export REPO_ROOT=$PWD; . scripts/build.sh; apikey_build_install >/dev/null; . scripts/cluster.sh; cluster_start >/dev/null
psql -Xq -c "CREATE EXTENSION apikey" -c "CREATE ROLE app_ro NOLOGIN" -c "DO \$\$ BEGIN FOR i IN 1..100000 LOOP EXECUTE format('CREATE ROLE r%s NOLOGIN', i); END LOOP; END \$\$" >/dev/null
K1=$(psql -XAtq -c "SELECT key FROM apikey.apikey_create('with role', '{}', db_role => 'app_ro')")
K2=$(psql -XAtq -c "SELECT key FROM apikey.apikey_create('no role', '{}')")
for k in $K1 $K2; do
cat > /tmp/hook.sql <<SQL
BEGIN;
SELECT set_config('request.headers', '{"x-api-key": "$k"}', true);
SELECT apikey.postgrest_pre_request();
ROLLBACK;
SQL
"$($PG_CONFIG --bindir)/pgbench" -n -T 5 -f /tmp/hook.sql postgres 2>&1 | grep -E "latency average|tps"
done
