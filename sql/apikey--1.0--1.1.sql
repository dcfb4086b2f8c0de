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
	'trigger: a db_role set by UPDATE must be a role the setter is a member of, and no superuser-like, apikey or privilege-bypassing role';
REVOKE ALL ON FUNCTION apikey.db_role_guard() FROM PUBLIC;

CREATE TRIGGER keys_db_role_guard
	BEFORE UPDATE OF db_role ON apikey.keys
	FOR EACH ROW
	WHEN (NEW.db_role IS NOT NULL AND NEW.db_role IS DISTINCT FROM OLD.db_role)
	EXECUTE FUNCTION apikey.db_role_guard();
COMMENT ON TRIGGER keys_db_role_guard ON apikey.keys IS
	'a db_role set by UPDATE obeys the rules of apikey_create';

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

/*
 * Usage moves out of apikey.keys into apikey.usage, written by the
 * background worker from shared memory (never by the verifying
 * transaction).  1.0 never maintained the columns; whatever they hold moves.
 */
CREATE TABLE apikey.usage (
	key_id			bigint PRIMARY KEY,
	last_used_at	timestamptz NOT NULL,
	use_count		bigint NOT NULL DEFAULT 0
		CONSTRAINT usage_use_count_check CHECK (use_count OPERATOR(pg_catalog.>=) 0)
) WITH (fillfactor = 50);	-- the worker updates every used key's row each flush: room for HOT
INSERT INTO apikey.usage (key_id, last_used_at, use_count)
	SELECT id, COALESCE(last_used_at, created_at), use_count FROM apikey.keys
	 WHERE last_used_at IS NOT NULL OR use_count OPERATOR(pg_catalog.>) 0;
DROP VIEW apikey.key_status;
ALTER TABLE apikey.keys DROP COLUMN last_used_at, DROP COLUMN use_count;

/* the audit trigger no longer needs to skip usage columns */
CREATE OR REPLACE FUNCTION apikey.keys_audit_row(op text, o apikey.keys, n apikey.keys)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	secret	text[] := ARRAY['secret_hash', 'grace_secret_hash'];
	-- not audited as "update": rotation bookkeeping
	quiet	text[] := ARRAY['secret_hash', 'grace_secret_hash', 'grace_until',
						   'hint', 'rotated_at'];
	oj		jsonb;
	nj		jsonb;
	old_c	jsonb := '{}';
	new_c	jsonb := '{}';
	col		text;
	act		text;
	d		jsonb;
	r		apikey.keys;
BEGIN
	IF op = 'INSERT' THEN
		r := n;
		act := 'create';
		d := pg_catalog.jsonb_build_object('new', pg_catalog.to_jsonb(n) OPERATOR(pg_catalog.-) secret);
	ELSIF op = 'DELETE' THEN
		r := o;
		act := 'delete';
		d := pg_catalog.jsonb_build_object('old', pg_catalog.to_jsonb(o) OPERATOR(pg_catalog.-) secret);
	ELSE
		r := n;
		oj := pg_catalog.to_jsonb(o);
		nj := pg_catalog.to_jsonb(n);
		FOR col IN SELECT k FROM pg_catalog.jsonb_object_keys(nj) AS k ORDER BY k LOOP
			IF col OPERATOR(pg_catalog.<>) ALL (quiet)
			   AND (oj OPERATOR(pg_catalog.->) col) IS DISTINCT FROM (nj OPERATOR(pg_catalog.->) col) THEN
				old_c := old_c OPERATOR(pg_catalog.||)
					pg_catalog.jsonb_build_object(col, oj OPERATOR(pg_catalog.->) col);
				new_c := new_c OPERATOR(pg_catalog.||)
					pg_catalog.jsonb_build_object(col, nj OPERATOR(pg_catalog.->) col);
			END IF;
		END LOOP;
		IF o.secret_hash IS DISTINCT FROM n.secret_hash THEN
			act := 'rotate';
			d := pg_catalog.jsonb_build_object(
				'old_hint', o.hint, 'new_hint', n.hint,
				'grace_until', n.grace_until);
			IF old_c OPERATOR(pg_catalog.<>) '{}' THEN
				d := d OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('old', old_c, 'new', new_c);
			END IF;
		ELSIF o.grace_secret_hash IS DISTINCT FROM n.grace_secret_hash
			  OR o.grace_until IS DISTINCT FROM n.grace_until THEN
			-- a grace period changed outside apikey_rotate (only superusers
			-- can): say so, without the hash
			act := 'update';
			d := pg_catalog.jsonb_build_object(
				'old', old_c OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
					'grace_until', o.grace_until,
					'grace_secret', CASE WHEN o.grace_secret_hash IS NULL THEN 'none' ELSE 'set' END),
				'new', new_c OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
					'grace_until', n.grace_until,
					'grace_secret', CASE WHEN n.grace_secret_hash IS NULL THEN 'none' ELSE 'set' END));
		ELSIF old_c OPERATOR(pg_catalog.=) '{}' THEN
			RETURN;				-- nothing worth auditing changed
		ELSE
			IF o.enabled IS DISTINCT FROM n.enabled THEN
				act := CASE WHEN n.enabled THEN 'enable' ELSE 'disable' END;
			ELSE
				act := 'update';
			END IF;
			d := pg_catalog.jsonb_build_object('old', old_c, 'new', new_c);
		END IF;
	END IF;

	INSERT INTO apikey.audit (action, key_id, key_owner_role, actor_current_user,
							  acting_key_id, detail)
	VALUES (act, r.id, r.owner_role, apikey.acting_role(),
			NULLIF(pg_catalog.current_setting('apikey.key_id', true), '')::pg_catalog.int8,
			d);
END
$$;

/* verification outcomes are logged too */
ALTER TABLE apikey.audit DROP CONSTRAINT audit_action_check;
ALTER TABLE apikey.audit ADD CONSTRAINT audit_action_check
	CHECK (action OPERATOR(pg_catalog.=) ANY
		   (ARRAY['create', 'rotate', 'enable', 'disable', 'update', 'delete', 'verify']::text[]));

/* 1.0 refused every rate limit; 1.1 refuses one only without shared memory */
DROP TRIGGER keys_refuse_rate_limit ON apikey.keys;
DROP FUNCTION apikey.refuse_rate_limit();

/*
 * apikey.usage: last use and use count per key, written by the background
 * worker from shared memory every apikey.flush_interval; never by the
 * verifying transaction, never locking a key's row.
 */
COMMENT ON TABLE apikey.usage IS
	'usage per key, written by the apikey worker from shared memory (needs shared_preload_libraries); not on hot standbys';
COMMENT ON COLUMN apikey.usage.key_id IS 'the key (no foreign key: writing usage never locks a key''s row)';
COMMENT ON COLUMN apikey.usage.last_used_at IS 'last VALID verification, as of the worker''s last flush';
COMMENT ON COLUMN apikey.usage.use_count IS 'VALID verifications, as of the worker''s last flush';
ALTER TABLE apikey.usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY usage_admin ON apikey.usage FOR SELECT TO apikey_admin
	USING (true);
-- a manager sees the usage of the keys row-level security shows it
CREATE POLICY usage_manager ON apikey.usage FOR SELECT TO apikey_manager
	USING (EXISTS (SELECT 1 FROM apikey.keys k WHERE k.id OPERATOR(pg_catalog.=) key_id));
COMMENT ON POLICY usage_admin ON apikey.usage IS 'admins read the usage of every key';
COMMENT ON POLICY usage_manager ON apikey.usage IS 'managers read the usage of their own keys';
REVOKE ALL ON apikey.usage FROM PUBLIC;
GRANT SELECT ON apikey.usage TO apikey_admin, apikey_manager;
SELECT pg_catalog.pg_extension_config_dump('apikey.usage', '');

/*
 * apikey.rate_limit_guard(): a rate limit set by UPDATE needs the shared
 * memory token buckets, as with apikey_create (55000 without them).
 */
CREATE FUNCTION apikey.rate_limit_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'apikey_rate_limit_guard'
LANGUAGE C;
COMMENT ON FUNCTION apikey.rate_limit_guard() IS
	'trigger: refuses setting a rate limit without apikey in shared_preload_libraries';
REVOKE ALL ON FUNCTION apikey.rate_limit_guard() FROM PUBLIC;
CREATE TRIGGER keys_rate_limit_guard
	BEFORE UPDATE OF rate_limit, rate_window ON apikey.keys
	FOR EACH ROW
	WHEN (NEW.rate_limit OPERATOR(pg_catalog.>) 0
		  AND NEW.rate_window OPERATOR(pg_catalog.>) '0'::pg_catalog.interval
		  AND (OLD.rate_limit IS DISTINCT FROM NEW.rate_limit
			   OR OLD.rate_window IS DISTINCT FROM NEW.rate_window))
	EXECUTE FUNCTION apikey.rate_limit_guard();
COMMENT ON TRIGGER keys_rate_limit_guard ON apikey.keys IS
	'a rate limit set by UPDATE must be enforceable, as with apikey_create';

COMMENT ON COLUMN apikey.audit.action IS
	'create, rotate, enable, disable, update, delete, or verify (a verification outcome, per apikey.log_verifications)';

/*
 * apikey.key_status: keys as a DBA wants to list them, without any secret.
 */
CREATE VIEW apikey.key_status WITH (security_invoker = true) AS
SELECT k.id, k.name, k.prefix, k.hint, k.owner, k.owner_role, k.scopes,
	   k.resources, k.allowed_cidrs,
	   CASE
		   WHEN NOT k.enabled THEN 'disabled'
		   WHEN k.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now() THEN 'expired'
		   WHEN k.grace_until OPERATOR(pg_catalog.>) pg_catalog.now() THEN 'rotating'
		   ELSE 'active'
	   END AS state,
	   k.enabled, k.expires_at, k.rate_limit, k.rate_window, k.rotated_at,
	   k.grace_until, u.last_used_at, COALESCE(u.use_count, 0) AS use_count,
	   k.created_at, k.created_by, k.db_role
  FROM apikey.keys k
  LEFT JOIN apikey.usage u ON u.key_id OPERATOR(pg_catalog.=) k.id;
COMMENT ON VIEW apikey.key_status IS
	'keys with their state (active, disabled, expired, rotating), hint and last use; no secrets';
COMMENT ON COLUMN apikey.key_status.state IS 'disabled, expired, rotating (old secret in its grace period) or active';
/* the other columns mean what they mean in apikey.keys and apikey.usage */
DO $comments$
DECLARE
	c record;
BEGIN
	FOR c IN
		SELECT a.attname
		  FROM pg_catalog.pg_attribute a
		 WHERE a.attrelid OPERATOR(pg_catalog.=) 'apikey.key_status'::pg_catalog.regclass
		   AND a.attnum OPERATOR(pg_catalog.>) 0
		   AND a.attname OPERATOR(pg_catalog.<>) 'state'
	LOOP
		EXECUTE pg_catalog.format('COMMENT ON COLUMN apikey.key_status.%I IS %L',
			c.attname,
			(SELECT pg_catalog.col_description(t.tab, k.attnum)
			   FROM (VALUES ('apikey.keys'::pg_catalog.regclass), ('apikey.usage'::pg_catalog.regclass)) AS t(tab)
			   JOIN pg_catalog.pg_attribute k ON k.attrelid OPERATOR(pg_catalog.=) t.tab
			  WHERE k.attname OPERATOR(pg_catalog.=) c.attname AND NOT k.attisdropped
			  LIMIT 1));
	END LOOP;
END
$comments$;
REVOKE ALL ON apikey.key_status FROM PUBLIC;
GRANT SELECT ON apikey.key_status TO apikey_admin, apikey_manager;

/*
 * Live figures from shared memory: apikey.stats.
 */
CREATE FUNCTION apikey.key_stats(
	OUT key_id bigint, OUT unflushed_uses bigint, OUT last_used_at timestamptz,
	OUT rate_limit integer, OUT bucket_tokens double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'apikey_key_stats'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION apikey.key_stats() IS
	'live figures of this database''s keys in shared memory (use the view apikey.stats)';
CREATE FUNCTION apikey.server_stats(
	OUT verifications jsonb, OUT queue_depth integer, OUT queue_size integer,
	OUT dropped bigint, OUT untracked bigint, OUT started_at timestamptz,
	OUT cache_hits bigint, OUT cache_misses bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'apikey_server_stats'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION apikey.server_stats() IS
	'this server''s verification figures (one row, for superusers and apikey_admin; use the view apikey.stats)';

CREATE VIEW apikey.stats WITH (security_invoker = true) AS
SELECT 'key'::text AS scope, s.key_id, k.name, s.unflushed_uses, s.last_used_at,
	   s.rate_limit, s.bucket_tokens,
	   NULL::jsonb AS verifications, NULL::integer AS queue_depth,
	   NULL::integer AS queue_size, NULL::bigint AS dropped, NULL::bigint AS untracked,
	   NULL::bigint AS cache_hits, NULL::bigint AS cache_misses
  FROM apikey.key_stats() s
  JOIN apikey.keys k ON k.id OPERATOR(pg_catalog.=) s.key_id
UNION ALL
SELECT 'server', NULL, NULL, NULL, NULL, NULL, NULL,
	   v.verifications, v.queue_depth, v.queue_size, v.dropped, v.untracked,
	   v.cache_hits, v.cache_misses
  FROM apikey.server_stats() v;
COMMENT ON VIEW apikey.stats IS
	'live figures from shared memory: per key (scope key) usage not yet flushed and the bucket level; per server (scope server, admins only) verifications by code, the log queue, what was dropped and the verified-key cache''s hits and misses';
COMMENT ON COLUMN apikey.stats.scope IS 'key: one tracked key; server: this server';
COMMENT ON COLUMN apikey.stats.key_id IS 'the key';
COMMENT ON COLUMN apikey.stats.name IS 'the key''s name';
COMMENT ON COLUMN apikey.stats.unflushed_uses IS 'VALID verifications not yet written to apikey.usage';
COMMENT ON COLUMN apikey.stats.last_used_at IS 'last VALID verification not yet written to apikey.usage';
COMMENT ON COLUMN apikey.stats.rate_limit IS 'the bucket''s capacity, as last seen by a verification';
COMMENT ON COLUMN apikey.stats.bucket_tokens IS 'tokens in the bucket now: verifications that would be VALID at once';
COMMENT ON COLUMN apikey.stats.verifications IS 'verifications by code on this server since it started';
COMMENT ON COLUMN apikey.stats.queue_depth IS 'verification outcomes waiting for the worker';
COMMENT ON COLUMN apikey.stats.queue_size IS 'capacity of the queue (apikey.queue_size)';
COMMENT ON COLUMN apikey.stats.dropped IS 'outcomes not logged because the queue was full';
COMMENT ON COLUMN apikey.stats.untracked IS 'uses not counted because apikey.max_tracked_keys was reached';
COMMENT ON COLUMN apikey.stats.cache_hits IS 'verifications that found the key in their backend''s verified-key cache (apikey.cache_size)';
COMMENT ON COLUMN apikey.stats.cache_misses IS 'verifications of a well-formed key that had to look it up in apikey.keys';
REVOKE ALL ON FUNCTION apikey.key_stats(), apikey.server_stats() FROM PUBLIC;
REVOKE ALL ON apikey.stats FROM PUBLIC;
GRANT EXECUTE ON FUNCTION apikey.key_stats(), apikey.server_stats() TO apikey_admin, apikey_manager;
GRANT SELECT ON apikey.stats TO apikey_admin, apikey_manager;

/*
 * Bounded stored values: a key can never be made expensive to verify.  The
 * update fails, changing nothing, if a 1.0 key is over a limit.
 */
/* The rules apikey_create enforces for names and resource ids, for the CHECKs. */
CREATE FUNCTION apikey.name_valid(name text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'apikey_name_valid'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION apikey.name_valid(text) IS
	'true if a key name has 1 to 256 characters and not only white space or invisible ones (the CHECK on apikey.keys.name)';
CREATE FUNCTION apikey.meta_valid(meta jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'apikey_meta_valid'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION apikey.meta_valid(jsonb) IS
	'true if meta is a JSON object of at most 8 kB uncompressed (the CHECK on apikey.keys.meta)';
CREATE FUNCTION apikey.resources_valid(resources text[])
RETURNS boolean
AS 'MODULE_PATHNAME', 'apikey_resources_valid'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION apikey.resources_valid(text[]) IS
	'true if resources is a one-dimensional list of 1 to 256 ids of 1 to 256 bytes (the CHECK on apikey.keys.resources)';
REVOKE ALL ON FUNCTION apikey.name_valid(text), apikey.resources_valid(text[]), apikey.meta_valid(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION apikey.name_valid(text), apikey.resources_valid(text[]), apikey.meta_valid(jsonb)
	TO apikey_manager, apikey_admin;
ALTER TABLE apikey.keys
	DROP CONSTRAINT keys_name_check,
	DROP CONSTRAINT keys_resources_check,
	DROP CONSTRAINT keys_allowed_cidrs_check,
	DROP CONSTRAINT keys_meta_check,
	ADD CONSTRAINT keys_name_check CHECK (apikey.name_valid(name)),
	ADD CONSTRAINT keys_resources_check CHECK (apikey.resources_valid(resources)),
	ADD CONSTRAINT keys_allowed_cidrs_check CHECK (pg_catalog.array_ndims(allowed_cidrs) OPERATOR(pg_catalog.=) 1
			   AND pg_catalog.cardinality(allowed_cidrs) OPERATOR(pg_catalog.>) 0
			   AND pg_catalog.cardinality(allowed_cidrs) OPERATOR(pg_catalog.<=) 64
			   AND pg_catalog.array_position(allowed_cidrs, NULL) IS NULL),
	ADD CONSTRAINT keys_meta_check CHECK (apikey.meta_valid(meta));
COMMENT ON COLUMN apikey.keys.name IS 'human-readable name, 1 to 256 characters, not only white space or invisible ones';
COMMENT ON COLUMN apikey.keys.resources IS 'resource ids the key is bound to (at most 256, of at most 256 bytes); NULL: all resources';
COMMENT ON COLUMN apikey.keys.allowed_cidrs IS 'client networks the key may be used from (at most 64); NULL: any';
COMMENT ON COLUMN apikey.keys.meta IS 'free-form JSON object returned by apikey_verify, at most 8 kB';
COMMENT ON COLUMN apikey.key_status.name IS 'human-readable name, 1 to 256 characters, not only white space or invisible ones';
COMMENT ON COLUMN apikey.key_status.resources IS 'resource ids the key is bound to (at most 256, of at most 256 bytes); NULL: all resources';
COMMENT ON COLUMN apikey.key_status.allowed_cidrs IS 'client networks the key may be used from (at most 64); NULL: any';

/*
 * apikey.keys_guard(): keys are created only by apikey_create; hashes, the
 * grace period, the hint and rotated_at change only by apikey_rotate; id,
 * prefix and created_* never; superusers excepted.
 */
CREATE FUNCTION apikey.keys_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'apikey_keys_guard'
LANGUAGE C;
COMMENT ON FUNCTION apikey.keys_guard() IS
	'trigger: only apikey_create inserts keys and only apikey_rotate changes hashes and grace periods (superusers excepted), also for roles that bypass privileges';
REVOKE ALL ON FUNCTION apikey.keys_guard() FROM PUBLIC;
CREATE TRIGGER keys_guard
	BEFORE INSERT OR UPDATE ON apikey.keys
	FOR EACH ROW EXECUTE FUNCTION apikey.keys_guard();
COMMENT ON TRIGGER keys_guard ON apikey.keys IS
	'keys are made by apikey_create and given new secrets by apikey_rotate, never by hand';

/*
 * apikey.schema_guard(): the extension's schema keeps its name and owner.
 * Statements that apikey_create, apikey_rotate and the audit trigger run
 * as the table owner name apikey's objects by schema; after a rename, a
 * role allowed to create schemas could make a new "apikey" of its own.
 */
CREATE FUNCTION apikey.schema_guard()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT c.classid, c.objid FROM pg_catalog.pg_event_trigger_ddl_commands() c LOOP
		IF r.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
		   AND r.objid OPERATOR(pg_catalog.=) (SELECT e.extnamespace FROM pg_catalog.pg_extension e
												WHERE e.extname OPERATOR(pg_catalog.=) 'apikey') THEN
			RAISE EXCEPTION 'the schema of extension apikey cannot be renamed or given to another owner'
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  HINT = 'apikey runs statements on its own schema as its owner; keep it named apikey and owned by a superuser.';
		END IF;
	END LOOP;
END
$$;
COMMENT ON FUNCTION apikey.schema_guard() IS
	'event trigger: refuses ALTER SCHEMA ... RENAME TO / OWNER TO on the schema of apikey';
REVOKE ALL ON FUNCTION apikey.schema_guard() FROM PUBLIC;
CREATE EVENT TRIGGER apikey_schema_guard ON ddl_command_end
	WHEN TAG IN ('ALTER SCHEMA')
	EXECUTE FUNCTION apikey.schema_guard();
COMMENT ON EVENT TRIGGER apikey_schema_guard IS
	'keeps the schema of apikey named apikey and owned by its superuser';

/*
 * apikey.drop_guard(): dropping apikey deletes every key and the audit
 * history; while keys exist it takes SET apikey.allow_drop = on first.
 */
CREATE FUNCTION apikey.drop_guard()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'apikey_drop_guard'
LANGUAGE C;
COMMENT ON FUNCTION apikey.drop_guard() IS
	'event trigger: refuses DROP EXTENSION apikey, DROP SCHEMA of its schema and DROP OWNED BY its owner while keys exist, unless apikey.allow_drop is on';
REVOKE ALL ON FUNCTION apikey.drop_guard() FROM PUBLIC;
CREATE EVENT TRIGGER apikey_drop_guard ON ddl_command_start
	WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA', 'DROP OWNED')
	EXECUTE FUNCTION apikey.drop_guard();
COMMENT ON EVENT TRIGGER apikey_drop_guard IS
	'losing every key takes a deliberate step: SET apikey.allow_drop = on';

/*
 * The guards hold in every replication role: session_replication_role =
 * replica (which only superusers set, as data-only restores and
 * replication workers do) must not switch them off.
 */
ALTER TABLE apikey.keys ENABLE ALWAYS TRIGGER keys_guard;
ALTER TABLE apikey.keys ENABLE ALWAYS TRIGGER keys_audit;
ALTER TABLE apikey.keys ENABLE ALWAYS TRIGGER keys_db_role_guard;
ALTER TABLE apikey.audit ENABLE ALWAYS TRIGGER audit_immutable;
ALTER TABLE apikey.audit ENABLE ALWAYS TRIGGER audit_no_truncate;
ALTER EVENT TRIGGER apikey_drop_guard ENABLE ALWAYS;
ALTER EVENT TRIGGER apikey_schema_guard ENABLE ALWAYS;

/* TRUNCATE apikey.keys loses every key at once, with no audit row */
CREATE FUNCTION apikey.truncate_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'apikey_truncate_guard'
LANGUAGE C;
COMMENT ON FUNCTION apikey.truncate_guard() IS
	'trigger: refuses TRUNCATE apikey.keys while keys exist, unless apikey.allow_drop is on';
REVOKE ALL ON FUNCTION apikey.truncate_guard() FROM PUBLIC;
CREATE TRIGGER keys_no_truncate
	BEFORE TRUNCATE ON apikey.keys
	FOR EACH STATEMENT EXECUTE FUNCTION apikey.truncate_guard();
COMMENT ON TRIGGER keys_no_truncate ON apikey.keys IS
	'losing every key takes a deliberate step: SET apikey.allow_drop = on';
ALTER TABLE apikey.keys ENABLE ALWAYS TRIGGER keys_no_truncate;

/*
 * The verified-key cache (apikey.cache_size) of every backend, on standbys
 * too, follows every committed change to a key: a relcache invalidation of
 * apikey.keys for every row changed or removed.  A row trigger, since
 * logical replication's apply worker fires no statement triggers; in every
 * replication role, like the guards.  Without it firing ALWAYS, backends
 * do not cache.
 */
CREATE FUNCTION apikey.keys_cache_invalidate()
RETURNS trigger
AS 'MODULE_PATHNAME', 'apikey_keys_cache_invalidate'
LANGUAGE C;
COMMENT ON FUNCTION apikey.keys_cache_invalidate() IS
	'trigger: makes every backend''s verified-key cache forget apikey.keys when the change commits';
REVOKE ALL ON FUNCTION apikey.keys_cache_invalidate() FROM PUBLIC;
CREATE TRIGGER keys_cache_invalidate
	BEFORE UPDATE OR DELETE ON apikey.keys
	FOR EACH ROW EXECUTE FUNCTION apikey.keys_cache_invalidate();
COMMENT ON TRIGGER keys_cache_invalidate ON apikey.keys IS
	'keeps the verified-key caches coherent; while it is disabled, no backend caches keys';
ALTER TABLE apikey.keys ENABLE ALWAYS TRIGGER keys_cache_invalidate;
