-- examples/postgrest/schema.sql: a multi-tenant todo API behind PostgREST,
-- authenticated by apikey.  Run as a superuser in the API's database:
--
--   psql -d app -f examples/postgrest/schema.sql
--   psql -d app -c "ALTER ROLE authenticator PASSWORD '...'"
--
-- PostgREST logs in as authenticator, switches to web_anon for every
-- request, and calls apikey.postgrest_pre_request() (db-pre-request).  The
-- hook checks the x-api-key header; with a valid key the request runs as
-- web_anon (or as the key's db_role) with apikey.current_owner() set to the
-- key's owner, which the row-level security policy below compares with
-- each row's tenant.  The test suite (test/postgrest/) loads this file.

CREATE EXTENSION IF NOT EXISTS apikey;

DO $roles$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticator') THEN
		CREATE ROLE authenticator LOGIN NOINHERIT;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'web_anon') THEN
		CREATE ROLE web_anon NOLOGIN;
	END IF;
	-- a narrower role for read-only keys: apikey_create(..., db_role => 'todo_reader')
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'todo_reader') THEN
		CREATE ROLE todo_reader NOLOGIN;
	END IF;
END
$roles$;

-- PostgREST switches from authenticator to these roles, as with JWT roles
GRANT web_anon, todo_reader TO authenticator;
-- the request's roles run the hook and the identity helpers
GRANT apikey_verifier TO web_anon, todo_reader;

CREATE SCHEMA IF NOT EXISTS api;
GRANT USAGE ON SCHEMA api TO web_anon, todo_reader;

CREATE TABLE IF NOT EXISTS api.todos (
	id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tenant	text NOT NULL DEFAULT apikey.current_owner(),
	task	text NOT NULL,
	done	boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE api.todos IS 'todos of every tenant; each key sees only its owner''s rows';

-- every row belongs to the owner of the key that wrote it; a key reads and
-- writes only rows of its own owner
ALTER TABLE api.todos ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS todos_tenant ON api.todos;
CREATE POLICY todos_tenant ON api.todos
	USING (tenant = apikey.current_owner())
	WITH CHECK (tenant = apikey.current_owner());

GRANT SELECT, INSERT, UPDATE, DELETE ON api.todos TO web_anon;
GRANT SELECT ON api.todos TO todo_reader;

-- who am I: GET /rpc/whoami (STABLE, so PostgREST runs it READ ONLY)
CREATE OR REPLACE FUNCTION api.whoami()
RETURNS json
LANGUAGE sql STABLE
AS $$
	SELECT json_build_object('key_id', apikey.current_key_id(),
							 'owner', apikey.current_owner(),
							 'role', current_user,
							 'can_write', apikey.has_scope('todos:write'))
$$;
GRANT EXECUTE ON FUNCTION api.whoami() TO web_anon, todo_reader;

-- the hook's settings, for PostgREST's connections only
ALTER ROLE authenticator SET apikey.postgrest_scopes = 'path';
-- load apikey when PostgREST connects, so that apikey.key_id and friends are
-- defined before anything else runs (current_setting() then shows only what
-- the hook set; the helper functions are authoritative either way)
ALTER ROLE authenticator SET session_preload_libraries = 'apikey';
