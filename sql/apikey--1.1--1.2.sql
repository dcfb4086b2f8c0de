/* apikey--1.1--1.2.sql: version 1.2 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION apikey UPDATE TO '1.2'" to load this file. \quit

/*
 * How apikey's SQL is written from 1.2 on, as contrib's modules do: one full
 * script, apikey--1.0.sql, and a chain of update scripts.  A fresh install
 * of 1.2 runs apikey--1.0.sql, apikey--1.0--1.1.sql and this file; an
 * installed 1.0 or 1.1 runs the rest of the chain.  Every object is
 * written once, in the script of the version that brought it.  (1.1's own
 * full script, which repeated apikey--1.0--1.1.sql, is gone: 1.0 plus the
 * update equals it, as test/shell/upgrade.sh checks object by object.)
 *
 * 1.2's library builds and runs on PostgreSQL 15, 17 and 18; the schema
 * objects of 1.2 follow below this line.
 */

/*
 * Every limit written once: the CHECKs on apikey.keys that still spelled a
 * rule out in SQL (the prefix as a regular expression, the owner's and the
 * networks' sizes) call the C functions apikey_create uses, as the name,
 * scopes, resources and meta CHECKs already do.
 */
CREATE FUNCTION apikey.prefix_valid(prefix text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'apikey_prefix_valid'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION apikey.prefix_valid(text) IS
	'true if a key prefix is 2 to 32 characters: a lower-case letter, then lower-case letters, digits or underscores, ending in a letter or digit (the CHECK on apikey.keys.prefix)';
CREATE FUNCTION apikey.owner_valid(owner text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'apikey_owner_valid'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION apikey.owner_valid(text) IS
	'true if an owner id has at most 256 characters (the CHECK on apikey.keys.owner)';
CREATE FUNCTION apikey.cidrs_valid(allowed_cidrs cidr[])
RETURNS boolean
AS 'MODULE_PATHNAME', 'apikey_cidrs_valid'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION apikey.cidrs_valid(cidr[]) IS
	'true if allowed_cidrs is a one-dimensional list of 1 to 64 networks without NULLs (the CHECK on apikey.keys.allowed_cidrs)';
REVOKE ALL ON FUNCTION apikey.prefix_valid(text), apikey.owner_valid(text), apikey.cidrs_valid(cidr[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION apikey.prefix_valid(text), apikey.owner_valid(text), apikey.cidrs_valid(cidr[])
	TO apikey_manager, apikey_admin;
ALTER TABLE apikey.keys
	DROP CONSTRAINT keys_prefix_check,
	DROP CONSTRAINT keys_owner_check,
	DROP CONSTRAINT keys_allowed_cidrs_check,
	ADD CONSTRAINT keys_prefix_check CHECK (apikey.prefix_valid(prefix)),
	ADD CONSTRAINT keys_owner_check CHECK (apikey.owner_valid(owner)),
	ADD CONSTRAINT keys_allowed_cidrs_check CHECK (apikey.cidrs_valid(allowed_cidrs));

/*
 * apikey_verify's probe goes through hash indexes on the hash's first 8
 * bytes: one bucket page instead of a descent through a B-tree's levels
 * (a miss costs about a tenth less).  The unique B-tree on the whole hash
 * stays: it keeps hashes unique.
 */
DROP INDEX apikey.keys_hash_prefix_idx;
CREATE INDEX keys_hash_prefix_idx ON apikey.keys USING hash (apikey.hash_prefix(secret_hash));
DROP INDEX apikey.keys_grace_hash_prefix_idx;
CREATE INDEX keys_grace_hash_prefix_idx ON apikey.keys USING hash (apikey.hash_prefix(grace_secret_hash))
	WHERE grace_secret_hash IS NOT NULL;

/*
 * No statistics that tell one tenant about another's keys.  pg_stats shows
 * an index's expression statistics to anyone who may read the index, and
 * pg_read_all_data may read every relation: after ANALYZE it saw the
 * first 8 bytes of key hashes (the hash prefix index).  And the planner
 * uses a column's most common values and histogram through leakproof
 * operators even where row-level security hides the rows: a manager's
 * EXPLAIN of "WHERE owner = 'acme'" estimated how many of another
 * tenant's keys had that owner, and likewise for names, hints and
 * prefixes.  ANALYZE keeps no statistics of these columns from now on
 * (the lookups go through the hash and the owner_role indexes, which need
 * none), and the ones kept so far go.
 */
ALTER INDEX apikey.keys_hash_prefix_idx ALTER COLUMN 1 SET STATISTICS 0;
ALTER INDEX apikey.keys_grace_hash_prefix_idx ALTER COLUMN 1 SET STATISTICS 0;
ALTER TABLE apikey.keys
	ALTER COLUMN secret_hash SET STATISTICS 0,
	ALTER COLUMN grace_secret_hash SET STATISTICS 0,
	ALTER COLUMN name SET STATISTICS 0,
	ALTER COLUMN owner SET STATISTICS 0,
	ALTER COLUMN hint SET STATISTICS 0,
	ALTER COLUMN prefix SET STATISTICS 0;
DELETE FROM pg_catalog.pg_statistic
 WHERE starelid OPERATOR(pg_catalog.=) ANY (ARRAY['apikey.keys_hash_prefix_idx'::pg_catalog.regclass,
											'apikey.keys_grace_hash_prefix_idx'::pg_catalog.regclass])
	OR (starelid OPERATOR(pg_catalog.=) 'apikey.keys'::pg_catalog.regclass
		AND staattnum OPERATOR(pg_catalog.=) ANY (ARRAY(
			SELECT attnum FROM pg_catalog.pg_attribute
			 WHERE attrelid OPERATOR(pg_catalog.=) 'apikey.keys'::pg_catalog.regclass
			   AND attname OPERATOR(pg_catalog.=) ANY (ARRAY['secret_hash', 'grace_secret_hash', 'name',
															 'owner', 'hint', 'prefix']::pg_catalog.name[]))));

/*
 * The rules of a usage plan, shared by keys and owners (plan.c): what a
 * plan may hold, and when its refills fall due.
 */
CREATE FUNCTION apikey.plan_valid(credits bigint, refill_amount bigint,
								  refill_interval text, refill_day integer)
RETURNS boolean
AS 'MODULE_PATHNAME', 'apikey_plan_valid'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION apikey.plan_valid(bigint, bigint, text, integer) IS
	'true if a plan''s credits and refill obey the rules of apikey_create: credits and refill_amount from 0 to 10^15, refill_interval day or month with refill_amount and credits, refill_day 1 to 31 for a monthly refill only (the CHECK on apikey.keys)';
CREATE FUNCTION apikey.next_refill(refill_interval text, refill_day integer, after timestamptz)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'apikey_next_refill'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION apikey.next_refill(text, integer, timestamptz) IS
	'the first refill after a time: 00:00 UTC of the next day, or of refill_day of a month (its last day when shorter; NULL refill_day: the 1st); NULL without a refill';
REVOKE ALL ON FUNCTION apikey.plan_valid(bigint, bigint, text, integer),
	apikey.next_refill(text, integer, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION apikey.plan_valid(bigint, bigint, text, integer),
	apikey.next_refill(text, integer, timestamptz) TO apikey_manager, apikey_admin;

/*
 * Owners.  apikey.current_owner() is an identity row-level security
 * trusts, so no tenant may give its keys another's owner: a manager sets
 * a key's owner (at creation or by UPDATE) only to NULL or to an owner
 * registered to it here (managed_by = its current_user).  Only
 * apikey_admin registers owners and sets any owner.
 */
CREATE TABLE apikey.owners (
	owner			text PRIMARY KEY
		CONSTRAINT owners_owner_check
		CHECK (owner OPERATOR(pg_catalog.<>) '' AND apikey.owner_valid(owner)),
	managed_by		name,
	rate_limit		integer
		CONSTRAINT owners_rate_limit_check
		CHECK (rate_limit OPERATOR(pg_catalog.>) 0),
	rate_window		interval
		CONSTRAINT owners_rate_window_check
		CHECK (rate_window OPERATOR(pg_catalog.>) '0'::pg_catalog.interval),
	credits			bigint,
	refill_amount	bigint,
	refill_interval text,
	refill_day		integer,
	meta			jsonb NOT NULL DEFAULT '{}'::jsonb
		CONSTRAINT owners_meta_check
		CHECK (pg_catalog.jsonb_typeof(meta) OPERATOR(pg_catalog.=) 'object'),
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	credits_set_at	timestamptz,
	id				bigint GENERATED ALWAYS AS IDENTITY
		CONSTRAINT owners_id_key UNIQUE,
	CONSTRAINT owners_rate_pair_check
		CHECK ((rate_limit IS NULL) OPERATOR(pg_catalog.=) (rate_window IS NULL)),
	CONSTRAINT owners_plan_check
		CHECK (apikey.plan_valid(credits, refill_amount, refill_interval, refill_day))
);
COMMENT ON TABLE apikey.owners IS
	'owners (customers, tenants) of keys and the manager role each is registered to: a manager gives its keys only its own owners';
COMMENT ON COLUMN apikey.owners.owner IS 'the owner id, as in apikey.keys.owner';
COMMENT ON COLUMN apikey.owners.managed_by IS 'the manager role that may give its keys this owner; NULL: only administrators';
COMMENT ON COLUMN apikey.owners.meta IS 'free-form, for the application';
COMMENT ON COLUMN apikey.owners.created_at IS 'when the owner was registered';
COMMENT ON COLUMN apikey.owners.rate_limit IS 'token bucket capacity shared by all the owner''s keys; NULL: no limit';
COMMENT ON COLUMN apikey.owners.rate_window IS 'time in which rate_limit tokens are refilled';
COMMENT ON COLUMN apikey.owners.credits IS
	'credits all the owner''s keys draw on, as well as their own; the balance from credits_set_at on; NULL: unmetered';
COMMENT ON COLUMN apikey.owners.refill_amount IS 'the balance each refill sets (not adds); NULL: no refill';
COMMENT ON COLUMN apikey.owners.refill_interval IS 'day or month: refills at 00:00 UTC of every day, or of refill_day of every month';
COMMENT ON COLUMN apikey.owners.refill_day IS 'the day of a monthly refill, 1 to 31 (a shorter month refills on its last day); NULL: the 1st';
COMMENT ON COLUMN apikey.owners.credits_set_at IS
	'when credits was last set (an INSERT or an UPDATE naming it): uses before it do not count against it (set by the extension)';
COMMENT ON COLUMN apikey.owners.id IS 'the owner''s number in shared memory and apikey.owner_usage (set by the extension)';
ALTER TABLE apikey.owners ENABLE ROW LEVEL SECURITY;
CREATE POLICY owners_admin ON apikey.owners TO apikey_admin
	USING (true) WITH CHECK (true);
CREATE POLICY owners_manager ON apikey.owners FOR SELECT TO apikey_manager
	USING (managed_by OPERATOR(pg_catalog.=) CURRENT_USER);
COMMENT ON POLICY owners_admin ON apikey.owners IS 'admins register, change and remove every owner';
COMMENT ON POLICY owners_manager ON apikey.owners IS 'managers see the owners registered to them';
REVOKE ALL ON apikey.owners FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON apikey.owners TO apikey_admin;
GRANT UPDATE (owner, managed_by, rate_limit, rate_window, credits, refill_amount, refill_interval,
			  refill_day, meta) ON apikey.owners TO apikey_admin;
GRANT SELECT ON apikey.owners TO apikey_manager;
SELECT pg_catalog.pg_extension_config_dump('apikey.owners', '');
SELECT pg_catalog.pg_extension_config_dump('apikey.owners_id_seq', '');
REVOKE ALL ON SEQUENCE apikey.owners_id_seq FROM PUBLIC;
ALTER TABLE apikey.owners ALTER COLUMN owner SET STATISTICS 0, ALTER COLUMN managed_by SET STATISTICS 0;

CREATE FUNCTION apikey.owner_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'apikey_owner_guard'
LANGUAGE C;
COMMENT ON FUNCTION apikey.owner_guard() IS
	'trigger: a key''s owner set by anyone but an administrator must be NULL or registered to the acting role in apikey.owners';
REVOKE ALL ON FUNCTION apikey.owner_guard() FROM PUBLIC;
CREATE TRIGGER keys_owner_guard
	BEFORE INSERT OR UPDATE OF owner ON apikey.keys
	FOR EACH ROW
	WHEN (NEW.owner IS NOT NULL)
	EXECUTE FUNCTION apikey.owner_guard();
COMMENT ON TRIGGER keys_owner_guard ON apikey.keys IS
	'a manager gives its keys only NULL or the owners registered to it';

/*
 * Registering the owners keys use already: an owner used by the keys of
 * exactly one owner_role is registered to that role; one used by several
 * roles' keys is registered to none (only administrators may then give
 * it), and named in a WARNING so an administrator decides.
 */
INSERT INTO apikey.owners (owner, managed_by)
SELECT k.owner, pg_catalog.min(k.owner_role::text)::name
  FROM apikey.keys k
 WHERE k.owner IS NOT NULL
 GROUP BY k.owner
HAVING pg_catalog.count(DISTINCT k.owner_role) OPERATOR(pg_catalog.=) 1;
INSERT INTO apikey.owners (owner, managed_by)
SELECT k.owner, NULL
  FROM apikey.keys k
 WHERE k.owner IS NOT NULL
 GROUP BY k.owner
HAVING pg_catalog.count(DISTINCT k.owner_role) OPERATOR(pg_catalog.>) 1;
DO $$
DECLARE
	o record;
BEGIN
	FOR o IN SELECT owner FROM apikey.owners WHERE managed_by IS NULL ORDER BY owner LOOP
		RAISE WARNING 'apikey: owner % is used by the keys of several roles and is registered to none of them',
			pg_catalog.quote_literal(o.owner)
			USING HINT = 'An apikey_admin may register it to one role: UPDATE apikey.owners SET managed_by = ... WHERE owner = ...';
	END LOOP;
END
$$;

/*
 * The shared verified-key cache (apikey.shared_cache_size): its figures and
 * each backend's lookups in apikey.stats, which gains the rows of scope
 * backend and four columns (appended: the view's other columns keep their
 * comments and its grants stay).
 */
CREATE FUNCTION apikey.cache_stats(
	OUT keys bigint, OUT capacity bigint, OUT bytes bigint,
	OUT variable_bytes bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'apikey_shared_cache_stats'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION apikey.cache_stats() IS
	'the shared verified-key cache: keys in it now, how many it holds, the shared memory it takes, the part of it holding keys'' variable fields now (one row, for superusers and apikey_admin; use the view apikey.stats)';
CREATE FUNCTION apikey.backend_stats(
	OUT pid integer, OUT cache_hits bigint, OUT cache_misses bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'apikey_backend_stats'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION apikey.backend_stats() IS
	'each running backend''s lookups in the verified-key cache (for superusers and apikey_admin; use the view apikey.stats)';
REVOKE ALL ON FUNCTION apikey.cache_stats(), apikey.backend_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION apikey.cache_stats(), apikey.backend_stats() TO apikey_admin, apikey_manager;


/*
 * Usage plans, on keys: a balance of credits that VALID calls draw on
 * (apikey_verify's cost, 1 for the four-argument form), set by an
 * administrator and refilled on a calendar (00:00 UTC of the due day).
 * The balance lives in shared memory and is written by the worker into
 * apikey.usage, never into apikey.keys: a call changes no key's row, so
 * no cache is invalidated.  credits_set_at, stamped by a trigger whenever
 * an UPDATE names credits, tells the balance that an administrator set it
 * again: from that commit on the balance is the new credits, whatever was
 * used before.
 */
ALTER TABLE apikey.keys
	ADD COLUMN credits bigint,
	ADD COLUMN refill_amount bigint,
	ADD COLUMN refill_interval text,
	ADD COLUMN refill_day integer,
	ADD COLUMN credits_set_at timestamptz,
	ADD CONSTRAINT keys_plan_check
		CHECK (apikey.plan_valid(credits, refill_amount, refill_interval, refill_day));
COMMENT ON COLUMN apikey.keys.credits IS
	'credits a VALID verification draws on (apikey_verify''s cost); the balance from credits_set_at on; NULL: unmetered';
COMMENT ON COLUMN apikey.keys.refill_amount IS 'the balance each refill sets (not adds); NULL: no refill';
COMMENT ON COLUMN apikey.keys.refill_interval IS 'day or month: refills at 00:00 UTC of every day, or of refill_day of every month';
COMMENT ON COLUMN apikey.keys.refill_day IS 'the day of a monthly refill, 1 to 31 (a shorter month refills on its last day); NULL: the 1st';
COMMENT ON COLUMN apikey.keys.credits_set_at IS
	'when credits was last set (by apikey_create or an UPDATE naming it): uses before it do not count against it (set by the extension)';
GRANT SELECT (credits, refill_amount, refill_interval, refill_day, credits_set_at)
	ON apikey.keys TO apikey_admin, apikey_manager;
GRANT UPDATE (credits, refill_amount, refill_interval, refill_day) ON apikey.keys TO apikey_admin;

CREATE FUNCTION apikey.plan_stamp()
RETURNS trigger
AS 'MODULE_PATHNAME', 'apikey_plan_stamp'
LANGUAGE C;
COMMENT ON FUNCTION apikey.plan_stamp() IS
	'trigger: stamps credits_set_at when credits is set, and refuses credits without apikey in shared_preload_libraries';
REVOKE ALL ON FUNCTION apikey.plan_stamp() FROM PUBLIC;
/* named to fire after keys_guard, which refuses a credits_set_at set by hand */
CREATE TRIGGER keys_plan_stamp
	BEFORE INSERT OR UPDATE OF credits ON apikey.keys
	FOR EACH ROW EXECUTE FUNCTION apikey.plan_stamp();
COMMENT ON TRIGGER keys_plan_stamp ON apikey.keys IS
	'credits set (even to the same value) starts a new balance from this commit on';
ALTER TABLE apikey.keys ENABLE ALWAYS TRIGGER keys_plan_stamp;

/*
 * The balance of each metered key, written by the worker with the usage
 * (in place, like the counts): the credits left as of the last flush, the
 * grant they count from and the last refill applied.  NOT NULL, so that
 * rows keep the layout the in-place write needs.
 */
ALTER TABLE apikey.usage
	ADD COLUMN credits_remaining bigint NOT NULL DEFAULT 0,
	ADD COLUMN credits_set_at timestamptz NOT NULL DEFAULT '-infinity',
	ADD COLUMN credits_refilled_at timestamptz NOT NULL DEFAULT '-infinity';
COMMENT ON COLUMN apikey.usage.credits_remaining IS
	'a metered key''s balance as of the worker''s last flush (counts from credits_set_at)';
COMMENT ON COLUMN apikey.usage.credits_set_at IS
	'the apikey.keys.credits_set_at the balance counts from (-infinity: never metered)';
COMMENT ON COLUMN apikey.usage.credits_refilled_at IS
	'the last refill applied to the balance, or when its credits were set';

/* apikey_create gains the plan */
DROP FUNCTION apikey.apikey_create(text, text[], timestamptz, text, text, text[], jsonb, integer, interval, cidr[], name);
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
	db_role name DEFAULT NULL,
	credits bigint DEFAULT NULL,
	refill_amount bigint DEFAULT NULL,
	refill_interval text DEFAULT NULL,
	refill_day integer DEFAULT NULL)
RETURNS TABLE (key_id bigint, key text)
AS 'MODULE_PATHNAME', 'apikey_create'
LANGUAGE C VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION apikey.apikey_create(text, text[], timestamptz, text, text, text[], jsonb, integer, interval, cidr[], name, bigint, bigint, text, integer) IS
	'create an API key owned by the current role; returns its id and the key, shown only this once (credits and refills: apikey_admin only)';
REVOKE ALL ON FUNCTION apikey.apikey_create(text, text[], timestamptz, text, text, text[], jsonb, integer, interval, cidr[], name, bigint, bigint, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION apikey.apikey_create(text, text[], timestamptz, text, text, text[], jsonb, integer, interval, cidr[], name, bigint, bigint, text, integer)
	TO apikey_manager, apikey_admin;

/* what a verification tells of the balance and of missing scopes */
ALTER TYPE apikey.verification
	ADD ATTRIBUTE credits_remaining bigint,
	ADD ATTRIBUTE missing_scopes text[];
COMMENT ON COLUMN apikey.verification.credits_remaining IS
	'the smallest balance that applied to this call, after it (the key''s or its owner''s); NULL when neither is metered';
COMMENT ON COLUMN apikey.verification.missing_scopes IS
	'for INSUFFICIENT_SCOPE, the required scopes the key was not granted; NULL otherwise';

CREATE FUNCTION apikey.apikey_verify(key text, required_scopes text[], resource text,
									 client_addr inet, cost integer)
RETURNS apikey.verification
AS 'MODULE_PATHNAME', 'apikey_verify'
LANGUAGE C VOLATILE CALLED ON NULL INPUT;
COMMENT ON FUNCTION apikey.apikey_verify(text, text[], text, inet, integer) IS
	'check an API key as the four-argument form does, and take cost credits (0 to 1000000) from a metered balance when VALID; never raises for a bad key';
REVOKE ALL ON FUNCTION apikey.apikey_verify(text, text[], text, inet, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION apikey.apikey_verify(text, text[], text, inet, integer)
	TO apikey_verifier, apikey_manager, apikey_admin;

/*
 * Plans shared by all the keys of one owner (apikey.owners): a rate limit
 * and credits drawn on by every key whose owner is the row's owner, across
 * all backends, besides the key's own.  Set by administrators only (the
 * table's grants), each change an audit row of action "plan".  A change
 * of a plan empties the verified-key caches at commit (a key's cached copy
 * carries its owner's plan).  The owner's balance is kept like a key's and
 * written by the worker into apikey.owner_usage.
 */
CREATE TRIGGER owners_plan_stamp
	BEFORE INSERT OR UPDATE OF credits ON apikey.owners
	FOR EACH ROW EXECUTE FUNCTION apikey.plan_stamp();
COMMENT ON TRIGGER owners_plan_stamp ON apikey.owners IS
	'credits set (even to the same value) starts a new balance from this commit on';
CREATE TRIGGER owners_rate_limit_guard
	BEFORE INSERT OR UPDATE OF rate_limit, rate_window ON apikey.owners
	FOR EACH ROW
	WHEN (NEW.rate_limit IS NOT NULL)
	EXECUTE FUNCTION apikey.rate_limit_guard();
COMMENT ON TRIGGER owners_rate_limit_guard ON apikey.owners IS
	'an owner''s rate limit must be enforceable, as a key''s';

ALTER TABLE apikey.audit DROP CONSTRAINT audit_action_check;
ALTER TABLE apikey.audit ADD CONSTRAINT audit_action_check
	CHECK (action OPERATOR(pg_catalog.=) ANY
		   (ARRAY['create', 'rotate', 'enable', 'disable', 'update', 'delete', 'verify', 'plan']::text[]));
COMMENT ON COLUMN apikey.audit.action IS
	'create, rotate, enable, disable, update, delete, verify (a verification outcome, per apikey.log_verifications), or plan (a change of apikey.owners: key_id NULL, key_owner_role the owner''s managed_by)';
CREATE FUNCTION apikey.owners_audit_row(op text, o apikey.owners, n apikey.owners)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	oj		jsonb := pg_catalog.to_jsonb(o);
	nj		jsonb := pg_catalog.to_jsonb(n);
	old_c	jsonb := '{}';
	new_c	jsonb := '{}';
	col		text;
BEGIN
	IF op = 'UPDATE' THEN
		FOR col IN SELECT k FROM pg_catalog.jsonb_object_keys(nj) AS k ORDER BY k LOOP
			IF (oj OPERATOR(pg_catalog.->) col) IS DISTINCT FROM (nj OPERATOR(pg_catalog.->) col) THEN
				old_c := old_c OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(col, oj OPERATOR(pg_catalog.->) col);
				new_c := new_c OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(col, nj OPERATOR(pg_catalog.->) col);
			END IF;
		END LOOP;
		IF old_c OPERATOR(pg_catalog.=) '{}' THEN
			RETURN;
		END IF;
		oj := old_c;
		nj := new_c;
	END IF;
	INSERT INTO apikey.audit (action, key_id, key_owner_role, actor_current_user, acting_key_id, detail)
	VALUES ('plan', NULL, COALESCE(n.managed_by, o.managed_by), apikey.acting_role(),
			NULLIF(pg_catalog.current_setting('apikey.key_id', true), '')::pg_catalog.int8,
			pg_catalog.jsonb_build_object('owner', COALESCE(n.owner, o.owner), 'op', pg_catalog.lower(op))
			OPERATOR(pg_catalog.||) CASE WHEN oj IS NULL THEN '{}' ELSE pg_catalog.jsonb_build_object('old', oj) END
			OPERATOR(pg_catalog.||) CASE WHEN nj IS NULL THEN '{}' ELSE pg_catalog.jsonb_build_object('new', nj) END);
END
$$;
COMMENT ON FUNCTION apikey.owners_audit_row(text, apikey.owners, apikey.owners) IS
	'append the apikey.audit row (action plan) for one change of apikey.owners (called by the owners_audit trigger)';
REVOKE ALL ON FUNCTION apikey.owners_audit_row(text, apikey.owners, apikey.owners) FROM PUBLIC;
CREATE TRIGGER owners_audit
	AFTER INSERT OR UPDATE OR DELETE ON apikey.owners
	FOR EACH ROW EXECUTE FUNCTION apikey.keys_audit();
COMMENT ON TRIGGER owners_audit ON apikey.owners IS 'writes a plan row of the audit trail for each change';

CREATE FUNCTION apikey.owners_cache_invalidate()
RETURNS trigger
AS 'MODULE_PATHNAME', 'apikey_owners_cache_invalidate'
LANGUAGE C;
COMMENT ON FUNCTION apikey.owners_cache_invalidate() IS
	'trigger: a changed owner plan empties every verified-key cache when the change commits';
REVOKE ALL ON FUNCTION apikey.owners_cache_invalidate() FROM PUBLIC;
CREATE TRIGGER owners_cache_invalidate
	AFTER INSERT OR UPDATE OR DELETE ON apikey.owners
	FOR EACH ROW EXECUTE FUNCTION apikey.owners_cache_invalidate();
CREATE TRIGGER owners_cache_invalidate_truncate
	AFTER TRUNCATE ON apikey.owners
	FOR EACH STATEMENT EXECUTE FUNCTION apikey.owners_cache_invalidate();
COMMENT ON TRIGGER owners_cache_invalidate ON apikey.owners IS
	'keys cached with their owner''s plan are read again after a change of a plan';
COMMENT ON TRIGGER owners_cache_invalidate_truncate ON apikey.owners IS
	'keys cached with their owner''s plan are read again after a TRUNCATE';
ALTER TABLE apikey.owners ENABLE ALWAYS TRIGGER owners_plan_stamp;
ALTER TABLE apikey.owners ENABLE ALWAYS TRIGGER owners_rate_limit_guard;
ALTER TABLE apikey.owners ENABLE ALWAYS TRIGGER owners_audit;
ALTER TABLE apikey.owners ENABLE ALWAYS TRIGGER owners_cache_invalidate;
ALTER TABLE apikey.owners ENABLE ALWAYS TRIGGER owners_cache_invalidate_truncate;

CREATE TABLE apikey.owner_usage (
	owner_id		bigint PRIMARY KEY,
	credits_remaining bigint NOT NULL,
	credits_set_at	timestamptz NOT NULL,
	credits_refilled_at timestamptz NOT NULL
);
COMMENT ON TABLE apikey.owner_usage IS
	'the balance of each metered owner, written by the apikey worker from shared memory (needs shared_preload_libraries)';
COMMENT ON COLUMN apikey.owner_usage.owner_id IS 'the owner (apikey.owners.id; no foreign key: writing never locks an owner''s row)';
COMMENT ON COLUMN apikey.owner_usage.credits_remaining IS 'the balance as of the worker''s last flush (counts from credits_set_at)';
COMMENT ON COLUMN apikey.owner_usage.credits_set_at IS 'the apikey.owners.credits_set_at the balance counts from';
COMMENT ON COLUMN apikey.owner_usage.credits_refilled_at IS 'the last refill applied to the balance, or when its credits were set';
ALTER TABLE apikey.owner_usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_usage_admin ON apikey.owner_usage FOR SELECT TO apikey_admin
	USING (true);
-- a manager sees the balances of the owners row-level security shows it
CREATE POLICY owner_usage_manager ON apikey.owner_usage FOR SELECT TO apikey_manager
	USING (owner_id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT o.id FROM apikey.owners o)));
COMMENT ON POLICY owner_usage_admin ON apikey.owner_usage IS 'admins read every owner''s balance';
COMMENT ON POLICY owner_usage_manager ON apikey.owner_usage IS 'managers read the balances of the owners registered to them';
REVOKE ALL ON apikey.owner_usage FROM PUBLIC;
GRANT SELECT ON apikey.owner_usage TO apikey_admin, apikey_manager;
SELECT pg_catalog.pg_extension_config_dump('apikey.owner_usage', '');

/*
 * Usage history: per key, hour (UTC) and code, how many verifications,
 * counted in shared memory and added by the worker every flush, kept
 * apikey.usage_retention (90 days by default).  Codes without a key
 * (MALFORMED, NOT_FOUND) have no row: they are in apikey.stats and, per
 * apikey.log_verifications, in apikey.audit.
 */
CREATE TABLE apikey.usage_hourly (
	key_id			bigint NOT NULL,
	hour			timestamptz NOT NULL,
	code			text NOT NULL,
	count			bigint NOT NULL
		CONSTRAINT usage_hourly_count_check CHECK (count OPERATOR(pg_catalog.>) 0),
	CONSTRAINT usage_hourly_pkey PRIMARY KEY (key_id, hour, code)
);
CREATE INDEX usage_hourly_hour_idx ON apikey.usage_hourly (hour);
COMMENT ON TABLE apikey.usage_hourly IS
	'verifications per key, hour and code, written by the apikey worker from shared memory (needs shared_preload_libraries), kept apikey.usage_retention';
COMMENT ON COLUMN apikey.usage_hourly.key_id IS 'the key (no foreign key: writing never locks a key''s row)';
COMMENT ON COLUMN apikey.usage_hourly.hour IS 'the hour, from its start (UTC)';
COMMENT ON COLUMN apikey.usage_hourly.code IS 'the verification code (VALID, DISABLED, ..., QUOTA_EXCEEDED)';
COMMENT ON COLUMN apikey.usage_hourly.count IS 'how many verifications of the key had that code in that hour';
ALTER TABLE apikey.usage_hourly ENABLE ROW LEVEL SECURITY;
CREATE POLICY usage_hourly_admin ON apikey.usage_hourly FOR SELECT TO apikey_admin
	USING (true);
-- a manager sees the history of the keys row-level security shows it
CREATE POLICY usage_hourly_manager ON apikey.usage_hourly FOR SELECT TO apikey_manager
	USING (key_id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT k.id FROM apikey.keys k)));
COMMENT ON POLICY usage_hourly_admin ON apikey.usage_hourly IS 'admins read the history of every key';
COMMENT ON POLICY usage_hourly_manager ON apikey.usage_hourly IS 'managers read the history of their own keys';
REVOKE ALL ON apikey.usage_hourly FROM PUBLIC;
GRANT SELECT ON apikey.usage_hourly TO apikey_admin, apikey_manager;
SELECT pg_catalog.pg_extension_config_dump('apikey.usage_hourly', '');

/*
 * What the DBA's views show of plans: apikey.stats the live balance in
 * shared memory, apikey.key_status the plan and the balance as of the
 * worker's last flush, with any refill due since applied.  (apikey.stats
 * was replaced once in 1.2 for the shared cache: it is written here once,
 * with both.)
 */
CREATE FUNCTION apikey.key_balances(OUT key_id bigint, OUT credits_remaining bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'apikey_key_balances'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION apikey.key_balances() IS
	'live balances of this database''s metered keys in shared memory (use the view apikey.stats)';
CREATE FUNCTION apikey.owner_stats(OUT owner_id bigint, OUT rate_limit integer,
								   OUT bucket_tokens double precision, OUT credits_remaining bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'apikey_owner_stats'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION apikey.owner_stats() IS
	'live figures of this database''s owners with a plan in shared memory: bucket level, balance (use the view apikey.stats)';
REVOKE ALL ON FUNCTION apikey.key_balances(), apikey.owner_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION apikey.key_balances(), apikey.owner_stats() TO apikey_admin, apikey_manager;

CREATE OR REPLACE VIEW apikey.stats WITH (security_invoker = true) AS
SELECT 'key'::text AS scope, s.key_id, k.name, s.unflushed_uses, s.last_used_at,
	   s.rate_limit, s.bucket_tokens,
	   NULL::jsonb AS verifications, NULL::integer AS queue_depth,
	   NULL::integer AS queue_size, NULL::bigint AS dropped, NULL::bigint AS untracked,
	   NULL::bigint AS cache_hits, NULL::bigint AS cache_misses,
	   NULL::integer AS pid, NULL::bigint AS cache_keys,
	   NULL::bigint AS cache_capacity, NULL::bigint AS cache_bytes,
	   b.credits_remaining
  FROM apikey.key_stats() s
  JOIN apikey.keys k ON k.id OPERATOR(pg_catalog.=) s.key_id
  LEFT JOIN apikey.key_balances() b ON b.key_id OPERATOR(pg_catalog.=) s.key_id
UNION ALL
SELECT 'server', NULL, NULL, NULL, NULL, NULL, NULL,
	   v.verifications, v.queue_depth, v.queue_size, v.dropped, v.untracked,
	   v.cache_hits, v.cache_misses, NULL, c.keys, c.capacity, c.bytes, NULL
  FROM apikey.server_stats() v
  LEFT JOIN apikey.cache_stats() c ON true
UNION ALL
SELECT 'backend', NULL, NULL, NULL, NULL, NULL, NULL,
	   NULL, NULL, NULL, NULL, NULL,
	   b.cache_hits, b.cache_misses, b.pid, NULL, NULL, NULL, NULL
  FROM apikey.backend_stats() b
UNION ALL
SELECT 'owner', NULL, o.owner, NULL, NULL, s.rate_limit, s.bucket_tokens,
	   NULL, NULL, NULL, NULL, NULL,
	   NULL, NULL, NULL, NULL, NULL, NULL, s.credits_remaining
  FROM apikey.owner_stats() s
  JOIN apikey.owners o ON o.id OPERATOR(pg_catalog.=) s.owner_id;
COMMENT ON VIEW apikey.stats IS
	'live figures from shared memory: per key (scope key) usage not yet flushed and the bucket level; per server (scope server, admins only) verifications by code, the log queue, what was dropped and the verified-key cache''s hits, misses and size; per backend (scope backend, admins only) its cache hits and misses; per owner with a plan (scope owner) its bucket level and balance';
COMMENT ON COLUMN apikey.stats.scope IS 'key: one tracked key; server: this server; backend: one running backend; owner: an owner with a plan (its name in name)';
COMMENT ON COLUMN apikey.stats.name IS 'the key''s name, or the owner (scope owner)';
COMMENT ON COLUMN apikey.stats.cache_hits IS 'verifications (of the server, or of the backend) that found the key in the verified-key cache: the shared one (apikey.shared_cache_size), or the backend''s own (apikey.cache_size) on a standby or with the shared one off';
COMMENT ON COLUMN apikey.stats.pid IS 'the backend''s process id (scope backend)';
COMMENT ON COLUMN apikey.stats.cache_keys IS 'keys in the shared verified-key cache now';
COMMENT ON COLUMN apikey.stats.cache_capacity IS 'keys the shared verified-key cache holds (apikey.shared_cache_size, rounded up)';
COMMENT ON COLUMN apikey.stats.cache_bytes IS 'shared memory the shared verified-key cache takes';
COMMENT ON COLUMN apikey.stats.credits_remaining IS 'a metered key''s or owner''s balance now (scopes key and owner)';

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
	   k.grace_until, u.last_used_at, COALESCE(u.use_count, 0) AS use_count,
	   k.created_at, k.created_by, k.db_role,
	   k.credits, k.refill_amount, k.refill_interval, k.refill_day,
	   CASE WHEN k.credits IS NOT NULL THEN
		   CASE WHEN apikey.next_refill(k.refill_interval, k.refill_day, b.period)
					 OPERATOR(pg_catalog.<=) pg_catalog.now()
				THEN k.refill_amount ELSE b.balance END
	   END AS credits_remaining,
	   CASE WHEN k.credits IS NOT NULL THEN
		   apikey.next_refill(k.refill_interval, k.refill_day, pg_catalog.now())
	   END AS next_refill
  FROM apikey.keys k
  LEFT JOIN apikey.usage u ON u.key_id OPERATOR(pg_catalog.=) k.id
  CROSS JOIN LATERAL (
	SELECT CASE WHEN u.credits_set_at OPERATOR(pg_catalog.>=) k.credits_set_at
				THEN u.credits_refilled_at ELSE k.credits_set_at END AS period,
		   CASE WHEN u.credits_set_at OPERATOR(pg_catalog.>=) k.credits_set_at
				THEN u.credits_remaining ELSE k.credits END AS balance) b;
COMMENT ON COLUMN apikey.key_status.credits IS 'the key''s credits as last set; NULL: unmetered';
COMMENT ON COLUMN apikey.key_status.refill_amount IS 'the balance each refill sets';
COMMENT ON COLUMN apikey.key_status.refill_interval IS 'day or month';
COMMENT ON COLUMN apikey.key_status.refill_day IS 'the day of a monthly refill (NULL: the 1st)';
COMMENT ON COLUMN apikey.key_status.credits_remaining IS
	'the balance as of the worker''s last flush, with a refill due since applied (apikey.stats has the live one)';
COMMENT ON COLUMN apikey.key_status.next_refill IS 'when the balance is next refilled; NULL: no refill';
