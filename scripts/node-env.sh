# node-env.sh: what the Node.js suites (the PostgREST replay in
# test/postgrest, the example backend in examples/node) need: the example
# database and a pgbouncer in front of it.  Source it after scripts/cluster.sh
# and scripts/pgbouncer.sh, with a cluster running:
#
#   node_env_start DB     # database DB with apikey and examples/postgrest/schema.sql,
#                         # login roles authenticator (PostgREST) and app_backend
#                         # (an application) with random passwords, and pgbouncer;
#                         # exports APIKEY_TEST_DB, APIKEY_AUTH_PASSWORD,
#                         # APIKEY_APP_PASSWORD, PGBOUNCER_PORT
#   npm_ci DIR            # install DIR's pinned npm packages if not yet there

node_env_start() {
	local db=$1
	APIKEY_TEST_DB=$db
	APIKEY_AUTH_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
	APIKEY_APP_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
	PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -d postgres \
		-c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null || return 1
	PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$REPO_ROOT/examples/postgrest/schema.sql" >/dev/null || return 1
	psql -X -q -v ON_ERROR_STOP=1 -d "$db" \
		-v auth="$APIKEY_AUTH_PASSWORD" -v app="$APIKEY_APP_PASSWORD" >/dev/null <<'SQL' || return 1
ALTER ROLE authenticator PASSWORD :'auth';
DO $$ BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_backend') THEN
		CREATE ROLE app_backend LOGIN IN ROLE apikey_verifier;
	END IF;
END $$;
ALTER ROLE app_backend PASSWORD :'app';
SQL
	pgbouncer_start authenticator "$APIKEY_AUTH_PASSWORD" app_backend "$APIKEY_APP_PASSWORD" || return 1
	export APIKEY_TEST_DB APIKEY_AUTH_PASSWORD APIKEY_APP_PASSWORD
}

npm_ci() {
	local dir=$1
	if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || return 1
	fi
}
