/* apikey--1.0.sql: API keys for PostgreSQL */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION apikey" to load this file. \quit

/*
 * Roles.  They are cluster-wide, so they are created only if missing and
 * are not members of the extension: DROP EXTENSION leaves them alone.
 */
DO $roles$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['apikey_admin', 'apikey_manager', 'apikey_verifier']
	LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) r) THEN
			EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
		END IF;
	END LOOP;
END
$roles$;

REVOKE ALL ON SCHEMA apikey FROM PUBLIC;
GRANT USAGE ON SCHEMA apikey TO apikey_admin, apikey_manager, apikey_verifier;

/*
 * apikey.keys: one row per key.  The secret itself is never stored, only
 * the SHA-256 of the whole key string.
 */
CREATE TABLE apikey.keys (
	id				bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name			text NOT NULL
		CONSTRAINT keys_name_check
		CHECK (pg_catalog.char_length(name) BETWEEN 1 AND 256
			   AND pg_catalog.btrim(name) OPERATOR(pg_catalog.<>) ''),
	prefix			text NOT NULL
		CONSTRAINT keys_prefix_check
		CHECK (prefix OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]{0,30}[a-z0-9]$'),
	hint			text NOT NULL,
	owner			text
		CONSTRAINT keys_owner_check
		CHECK (pg_catalog.char_length(owner) <= 256),
	owner_role		name NOT NULL,
	scopes			text[] NOT NULL
		CONSTRAINT keys_scopes_check
		CHECK (pg_catalog.array_position(scopes, NULL) IS NULL
			   AND COALESCE(pg_catalog.array_ndims(scopes), 1) OPERATOR(pg_catalog.=) 1
			   AND pg_catalog.array_to_string(scopes, ' ') OPERATOR(pg_catalog.~)
			   '^(([a-z0-9_.-]+|[*])(:([a-z0-9_.-]+|[*]))*( ([a-z0-9_.-]+|[*])(:([a-z0-9_.-]+|[*]))*)*)?$'),
	resources		text[]
		CONSTRAINT keys_resources_check
		CHECK (pg_catalog.cardinality(resources) OPERATOR(pg_catalog.>) 0
			   AND pg_catalog.array_position(resources, NULL) IS NULL
			   AND pg_catalog.array_position(resources, '') IS NULL),
	allowed_cidrs	cidr[]
		CONSTRAINT keys_allowed_cidrs_check
		CHECK (pg_catalog.cardinality(allowed_cidrs) OPERATOR(pg_catalog.>) 0
			   AND pg_catalog.array_position(allowed_cidrs, NULL) IS NULL),
	meta			jsonb NOT NULL DEFAULT '{}'
		CONSTRAINT keys_meta_check
		CHECK (pg_catalog.jsonb_typeof(meta) OPERATOR(pg_catalog.=) 'object'),
	enabled			boolean NOT NULL DEFAULT true,
	expires_at		timestamptz,
	rate_limit		integer
		CONSTRAINT keys_rate_limit_check
		CHECK (rate_limit OPERATOR(pg_catalog.>) 0),
	rate_window		interval
		CONSTRAINT keys_rate_window_check
		CHECK (rate_window OPERATOR(pg_catalog.>) '0'::interval),
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by		name NOT NULL DEFAULT CURRENT_USER,
	rotated_at		timestamptz,
	last_used_at	timestamptz,
	use_count		bigint NOT NULL DEFAULT 0,
	secret_hash		bytea NOT NULL
		CONSTRAINT keys_secret_hash_check
		CHECK (pg_catalog.octet_length(secret_hash) OPERATOR(pg_catalog.=) 32),
	grace_secret_hash bytea
		CONSTRAINT keys_grace_secret_hash_check
		CHECK (pg_catalog.octet_length(grace_secret_hash) OPERATOR(pg_catalog.=) 32),
	grace_until		timestamptz,
	CONSTRAINT keys_rate_pair_check
		CHECK ((rate_limit IS NULL) OPERATOR(pg_catalog.=) (rate_window IS NULL)),
	CONSTRAINT keys_grace_pair_check
		CHECK ((grace_secret_hash IS NULL) OPERATOR(pg_catalog.=) (grace_until IS NULL))
);

CREATE UNIQUE INDEX keys_secret_hash_idx ON apikey.keys (secret_hash);
CREATE UNIQUE INDEX keys_grace_secret_hash_idx ON apikey.keys (grace_secret_hash)
	WHERE grace_secret_hash IS NOT NULL;
CREATE INDEX keys_owner_role_idx ON apikey.keys (owner_role);

COMMENT ON TABLE apikey.keys IS
	'API keys, one row per key; the secret is stored only as a SHA-256 hash';
COMMENT ON COLUMN apikey.keys.id IS 'key id, stable across rotations';
COMMENT ON COLUMN apikey.keys.name IS 'human-readable name, 1 to 256 characters';
COMMENT ON COLUMN apikey.keys.prefix IS 'visible key prefix, the part before the last underscore';
COMMENT ON COLUMN apikey.keys.hint IS 'display hint: prefix, first and last characters of the key';
COMMENT ON COLUMN apikey.keys.owner IS 'the application''s own owner id (user, team, org)';
COMMENT ON COLUMN apikey.keys.owner_role IS 'database role that owns the key (row-level security)';
COMMENT ON COLUMN apikey.keys.scopes IS 'granted scopes, segment(:segment)*, * as wildcard';
COMMENT ON COLUMN apikey.keys.resources IS 'resource ids the key is bound to; NULL: all resources';
COMMENT ON COLUMN apikey.keys.allowed_cidrs IS 'client networks the key may be used from; NULL: any';
COMMENT ON COLUMN apikey.keys.meta IS 'free-form JSON object returned by apikey_verify';
COMMENT ON COLUMN apikey.keys.enabled IS 'false: the key verifies as DISABLED';
COMMENT ON COLUMN apikey.keys.expires_at IS 'the key verifies as EXPIRED from this time on; NULL: never';
COMMENT ON COLUMN apikey.keys.rate_limit IS 'token bucket capacity; NULL: no limit';
COMMENT ON COLUMN apikey.keys.rate_window IS 'time in which rate_limit tokens are refilled';
COMMENT ON COLUMN apikey.keys.created_at IS 'when the key was created';
COMMENT ON COLUMN apikey.keys.created_by IS 'role that created the key';
COMMENT ON COLUMN apikey.keys.rotated_at IS 'when the secret was last rotated';
COMMENT ON COLUMN apikey.keys.last_used_at IS 'last successful verification (maintained by the extension)';
COMMENT ON COLUMN apikey.keys.use_count IS 'number of successful verifications (maintained by the extension)';
COMMENT ON COLUMN apikey.keys.secret_hash IS 'SHA-256 of the whole key string; readable by superusers only';
COMMENT ON COLUMN apikey.keys.grace_secret_hash IS 'SHA-256 of the previous key during a rotation grace period';
COMMENT ON COLUMN apikey.keys.grace_until IS 'the previous key stops verifying at this time';

REVOKE ALL ON apikey.keys FROM PUBLIC;

/* The result of apikey_verify. */
CREATE TYPE apikey.verification AS (
	valid			boolean,
	code			text,
	http_status		integer,
	key_id			bigint,
	name			text,
	owner			text,
	scopes			text[],
	resources		text[],
	meta			jsonb,
	expires_at		timestamptz,
	retry_after		interval
);
COMMENT ON TYPE apikey.verification IS
	'result of apikey_verify: valid, code (VALID, MALFORMED, NOT_FOUND, ...), HTTP status and the key''s identity';

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
	allowed_cidrs cidr[] DEFAULT NULL)
RETURNS TABLE (key_id bigint, key text)
AS 'MODULE_PATHNAME', 'apikey_create'
LANGUAGE C VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION apikey.apikey_create(text, text[], timestamptz, text, text, text[], jsonb, integer, interval, cidr[]) IS
	'create an API key owned by the current role; returns its id and the key, shown only this once';

CREATE FUNCTION apikey.apikey_verify(
	key text,
	required_scopes text[] DEFAULT '{}',
	resource text DEFAULT NULL,
	client_addr inet DEFAULT NULL)
RETURNS apikey.verification
AS 'MODULE_PATHNAME', 'apikey_verify'
LANGUAGE C VOLATILE CALLED ON NULL INPUT;
COMMENT ON FUNCTION apikey.apikey_verify(text, text[], text, inet) IS
	'check an API key against required scopes, a resource and a client address; never raises for a bad key';

CREATE FUNCTION apikey.apikey_rotate(key_id bigint, grace interval DEFAULT '0')
RETURNS text
AS 'MODULE_PATHNAME', 'apikey_rotate'
LANGUAGE C VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION apikey.apikey_rotate(bigint, interval) IS
	'give a key a new secret, keeping its identity; the old secret works until commit or for the grace period (at most 7 days)';

REVOKE ALL ON FUNCTION apikey.apikey_create(text, text[], timestamptz, text, text, text[], jsonb, integer, interval, cidr[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION apikey.apikey_verify(text, text[], text, inet) FROM PUBLIC;
REVOKE ALL ON FUNCTION apikey.apikey_rotate(bigint, interval) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION apikey.apikey_verify(text, text[], text, inet)
	TO apikey_verifier, apikey_manager, apikey_admin;
GRANT EXECUTE ON FUNCTION apikey.apikey_create(text, text[], timestamptz, text, text, text[], jsonb, integer, interval, cidr[])
	TO apikey_manager, apikey_admin;
GRANT EXECUTE ON FUNCTION apikey.apikey_rotate(bigint, interval)
	TO apikey_manager, apikey_admin;
