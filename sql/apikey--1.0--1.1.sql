/* apikey--1.0--1.1.sql: the PostgREST hook, per-key database roles, grace_until */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION apikey UPDATE TO '1.1'" to load this file. \quit

/*
 * db_role: the database role the PostgREST hook switches to for a request
 * authenticated by the key.  Who may set which role is checked by
 * apikey_create and, for UPDATEs, by the trigger below.
 */
ALTER TABLE apikey.keys ADD COLUMN db_role name;
COMMENT ON COLUMN apikey.keys.db_role IS
	'database role apikey.postgrest_pre_request() switches to for this key (SET LOCAL ROLE); NULL: none';
GRANT SELECT (db_role), UPDATE (db_role) ON apikey.keys TO apikey_admin, apikey_manager;

CREATE FUNCTION apikey.db_role_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'apikey_db_role_guard'
LANGUAGE C;
COMMENT ON FUNCTION apikey.db_role_guard() IS
	'trigger: a db_role set by INSERT or UPDATE must be a role the setter is a member of, and no superuser-like, apikey or privilege-bypassing role';
REVOKE ALL ON FUNCTION apikey.db_role_guard() FROM PUBLIC;

CREATE TRIGGER keys_db_role_guard
	BEFORE UPDATE OF db_role ON apikey.keys
	FOR EACH ROW
	WHEN (NEW.db_role IS NOT NULL AND NEW.db_role IS DISTINCT FROM OLD.db_role)
	EXECUTE FUNCTION apikey.db_role_guard();
COMMENT ON TRIGGER keys_db_role_guard ON apikey.keys IS
	'a db_role set by UPDATE obeys the rules of apikey_create';
CREATE TRIGGER keys_db_role_guard_insert
	BEFORE INSERT ON apikey.keys
	FOR EACH ROW
	WHEN (NEW.db_role IS NOT NULL)
	EXECUTE FUNCTION apikey.db_role_guard();
COMMENT ON TRIGGER keys_db_role_guard_insert ON apikey.keys IS
	'a db_role written by a plain INSERT (only roles such as pg_write_all_data can) obeys the rules of apikey_create';

/* usage is not maintained yet: say so */
COMMENT ON COLUMN apikey.keys.last_used_at IS 'not maintained yet: always NULL';
COMMENT ON COLUMN apikey.keys.use_count IS 'not maintained yet: always 0';

/* grace_until: verification by the previous secret of a rotated key */
ALTER TYPE apikey.verification ADD ATTRIBUTE grace_until timestamptz;
COMMENT ON COLUMN apikey.verification.grace_until IS
	'set when the key presented is the previous secret of a rotated key: it stops working at this time';

/* apikey_create gains db_role */
DROP FUNCTION apikey.apikey_create(text, text[], timestamptz, text, text, text[], jsonb, integer, interval, cidr[]);
CREATE FUNCTION apikey.apikey_create(
	name text,
	scopes text[],
	expires_at timestamptz DEFAULT NULL,
	prefix text DEFAULT NULL,
	owner text DEFAULT NULL,
	resources text[] DEFAULT NULL,
	meta jsonb DEFAULT '{}',
	rate_limit integer DEFAULT NULL,
	rate_window interval DEFAULT NULL,
	allowed_cidrs cidr[] DEFAULT NULL,
	db_role name DEFAULT NULL)
RETURNS TABLE (key_id bigint, key text)
AS 'MODULE_PATHNAME', 'apikey_create'
LANGUAGE C VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION apikey.apikey_create(text, text[], timestamptz, text, text, text[], jsonb, integer, interval, cidr[], name) IS
	'create an API key owned by the current role; returns its id and the key, shown only this once';
REVOKE ALL ON FUNCTION apikey.apikey_create(text, text[], timestamptz, text, text, text[], jsonb, integer, interval, cidr[], name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION apikey.apikey_create(text, text[], timestamptz, text, text, text[], jsonb, integer, interval, cidr[], name)
	TO apikey_manager, apikey_admin;

/* key_status shows db_role */
CREATE OR REPLACE VIEW apikey.key_status WITH (security_invoker = true) AS
SELECT k.id, k.name, k.prefix, k.hint, k.owner, k.owner_role, k.scopes,
	   k.resources, k.allowed_cidrs,
	   CASE
		   WHEN NOT k.enabled THEN 'disabled'
		   WHEN k.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now() THEN 'expired'
		   WHEN k.grace_until OPERATOR(pg_catalog.>) pg_catalog.now() THEN 'rotating'
		   ELSE 'active'
	   END AS state,
	   k.enabled, k.expires_at, k.rate_limit, k.rate_window, k.rotated_at,
	   k.grace_until, k.last_used_at, k.use_count, k.created_at, k.created_by,
	   k.db_role
  FROM apikey.keys k;
COMMENT ON COLUMN apikey.key_status.db_role IS
	'database role apikey.postgrest_pre_request() switches to for this key (SET LOCAL ROLE); NULL: none';
COMMENT ON COLUMN apikey.key_status.last_used_at IS 'not maintained yet: always NULL';
COMMENT ON COLUMN apikey.key_status.use_count IS 'not maintained yet: always 0';

/*
 * The PostgREST hook and the request identity it records.  The helpers are
 * PARALLEL SAFE: parallel workers receive the identity settings with the
 * rest of their leader's settings.
 */
CREATE FUNCTION apikey.postgrest_pre_request()
RETURNS void
AS 'MODULE_PATHNAME', 'apikey_postgrest_pre_request'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION apikey.postgrest_pre_request() IS
	'PostgREST db-pre-request hook: checks the key in the apikey.header header, records its identity for the transaction and switches to its db_role, or refuses the request';

CREATE FUNCTION apikey.current_key_id()
RETURNS bigint
AS 'MODULE_PATHNAME', 'apikey_current_key_id'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION apikey.current_key_id() IS
	'id of the key apikey.postgrest_pre_request() authenticated in this transaction; NULL if none';

CREATE FUNCTION apikey.current_owner()
RETURNS text
AS 'MODULE_PATHNAME', 'apikey_current_owner'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION apikey.current_owner() IS
	'owner id of the key apikey.postgrest_pre_request() authenticated in this transaction; NULL if none';

CREATE FUNCTION apikey.has_scope(scope text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'apikey_has_scope'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION apikey.has_scope(text) IS
	'true if the key apikey.postgrest_pre_request() authenticated in this transaction grants the scope (rules of apikey_verify); false without a key';

REVOKE ALL ON FUNCTION apikey.postgrest_pre_request(), apikey.current_key_id(),
	apikey.current_owner(), apikey.has_scope(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION apikey.postgrest_pre_request(), apikey.current_key_id(),
	apikey.current_owner(), apikey.has_scope(text)
	TO apikey_verifier, apikey_manager, apikey_admin;
