-- privileges.sql: the privilege matrix (SPEC "Privileges and row-level
-- security", "Objects").
--
-- Roles, created inside the transaction:
--   pt_priv_admin     member of apikey_admin
--   pt_priv_mgr_a     member of apikey_manager
--   pt_priv_mgr_b     member of apikey_manager
--   pt_priv_verifier  member of apikey_verifier
--   pt_priv_plain     no grant at all (what PUBLIC gets)
-- Objects: apikey.keys (and its hash columns), apikey.audit, the view
-- apikey.key_status, every function, both sequences, the schema.
--
-- Each cell of the matrix is asserted twice: by pgTAP's privilege
-- assertions (has_*_privilege, run as the superuser) and by a real attempt
-- under SET ROLE (42501, 0 rows through row-level security, or success).
--
-- Values cross role switches in temp tables granted to PUBLIC; temp
-- helpers read them.  Everything is rolled back.
--
-- Needs: CREATE EXTENSION pgtap, pgcrypto, apikey; run as a superuser.
BEGIN;
SELECT plan(424);

CREATE ROLE pt_priv_admin NOLOGIN IN ROLE apikey_admin;
CREATE ROLE pt_priv_mgr_a NOLOGIN IN ROLE apikey_manager;
CREATE ROLE pt_priv_mgr_b NOLOGIN IN ROLE apikey_manager;
CREATE ROLE pt_priv_verifier NOLOGIN IN ROLE apikey_verifier;
CREATE ROLE pt_priv_plain NOLOGIN;

-- keys made in this file: label -> id, raw key
CREATE TEMP TABLE pt_k (
	label	text PRIMARY KEY,
	key_id	bigint NOT NULL,
	key		text NOT NULL
) ON COMMIT DROP;
GRANT SELECT, INSERT ON pt_k TO PUBLIC;

-- ids a role saw (compared by the superuser afterwards)
CREATE TEMP TABLE pt_seen (
	who		text NOT NULL,
	what	text NOT NULL,
	id		bigint NOT NULL
) ON COMMIT DROP;
GRANT SELECT, INSERT ON pt_seen TO PUBLIC;

CREATE FUNCTION pg_temp.kid(label text) RETURNS bigint
LANGUAGE sql STABLE
AS $$ SELECT key_id FROM pg_temp.pt_k WHERE label = $1 $$;

CREATE FUNCTION pg_temp.kkey(label text) RETURNS text
LANGUAGE sql STABLE
AS $$ SELECT key FROM pg_temp.pt_k WHERE label = $1 $$;

-- the number of rows sql affected, or "SQLSTATE: message" if it raised
CREATE FUNCTION pg_temp.affected(sql text) RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
	n bigint;
BEGIN
	EXECUTE sql;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n::text;
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- the verification code of a key, as the current role
CREATE FUNCTION pg_temp.code_of(key text) RETURNS text
LANGUAGE sql
AS $$ SELECT (apikey.apikey_verify(key)).code $$;

------------------------------------------------------------------------
-- The three roles (1)
------------------------------------------------------------------------
SELECT results_eq(
	$$SELECT rolname::text COLLATE "default", rolcanlogin, rolsuper, rolbypassrls, rolcreaterole
	    FROM pg_catalog.pg_roles
	   WHERE rolname IN ('apikey_admin', 'apikey_manager', 'apikey_verifier')
	   ORDER BY rolname$$,
	$$VALUES ('apikey_admin', false, false, false, false),
	         ('apikey_manager', false, false, false, false),
	         ('apikey_verifier', false, false, false, false)$$,
	'apikey_admin, apikey_manager, apikey_verifier exist, are NOLOGIN, not superuser, no BYPASSRLS, no CREATEROLE');

------------------------------------------------------------------------
-- Catalog: what each role holds (pgTAP privilege assertions)
------------------------------------------------------------------------

-- schema (5)
SELECT schema_privs_are('apikey', 'apikey_admin', ARRAY['USAGE']);
SELECT schema_privs_are('apikey', 'apikey_manager', ARRAY['USAGE']);
SELECT schema_privs_are('apikey', 'apikey_verifier', ARRAY['USAGE']);
SELECT schema_privs_are('apikey', 'pt_priv_plain', ARRAY[]::name[]);
SELECT schema_privs_are('apikey', 'public', ARRAY[]::name[]);

-- apikey.keys, table-level: DELETE only; SELECT/UPDATE are per column (5)
SELECT table_privs_are('apikey', 'keys', 'apikey_admin', ARRAY['DELETE']);
SELECT table_privs_are('apikey', 'keys', 'apikey_manager', ARRAY['DELETE']);
SELECT table_privs_are('apikey', 'keys', 'apikey_verifier', ARRAY[]::name[]);
SELECT table_privs_are('apikey', 'keys', 'pt_priv_plain', ARRAY[]::name[]);
SELECT table_privs_are('apikey', 'keys', 'public', ARRAY[]::name[]);

-- apikey.keys, any column (5)
SELECT any_column_privs_are('apikey', 'keys', 'apikey_admin', ARRAY['SELECT', 'UPDATE']);
SELECT any_column_privs_are('apikey', 'keys', 'apikey_manager', ARRAY['SELECT', 'UPDATE']);
SELECT any_column_privs_are('apikey', 'keys', 'apikey_verifier', ARRAY[]::name[]);
SELECT any_column_privs_are('apikey', 'keys', 'pt_priv_plain', ARRAY[]::name[]);
SELECT any_column_privs_are('apikey', 'keys', 'public', ARRAY[]::name[]);

-- the column list the matrix below covers (1)
SELECT columns_are('apikey', 'keys', ARRAY[
	'id', 'name', 'prefix', 'hint', 'owner', 'owner_role', 'scopes', 'resources',
	'allowed_cidrs', 'meta', 'enabled', 'expires_at', 'rate_limit', 'rate_window',
	'created_at', 'created_by', 'rotated_at',
	'secret_hash', 'grace_secret_hash', 'grace_until', 'db_role',
	'credits', 'refill_amount', 'refill_interval', 'refill_day', 'credits_set_at'],
	'apikey.keys has exactly the columns of the privilege matrix');

-- apikey.keys, every column x every role (26 x 5 = 130).
--   sel: admins and managers may SELECT it
--   upd: admins and managers may UPDATE it; upd_admin: admins only
-- Nobody may INSERT or REFERENCES anything; nobody reads or writes a hash.
SELECT column_privs_are('apikey', 'keys', c.col::name, r.rol::name,
	(CASE WHEN (r.adm OR r.mgr) AND c.sel THEN ARRAY['SELECT']::name[] ELSE '{}'::name[] END) ||
	(CASE WHEN (r.adm AND (c.upd OR c.upd_admin)) OR (r.mgr AND c.upd)
		  THEN ARRAY['UPDATE']::name[] ELSE '{}'::name[] END))
  FROM (VALUES ('apikey_admin', true, false),
               ('apikey_manager', false, true),
               ('apikey_verifier', false, false),
               ('pt_priv_plain', false, false),
               ('public', false, false)) AS r(rol, adm, mgr)
 CROSS JOIN
       (VALUES ('id',                true,  false, false),
               ('name',              true,  true,  false),
               ('prefix',            true,  false, false),
               ('hint',              true,  false, false),
               ('owner',             true,  true,  false),
               ('owner_role',        true,  false, true),
               ('scopes',            true,  true,  false),
               ('resources',         true,  true,  false),
               ('allowed_cidrs',     true,  true,  false),
               ('meta',              true,  true,  false),
               ('enabled',           true,  true,  false),
               ('expires_at',        true,  true,  false),
               ('rate_limit',        true,  true,  false),
               ('rate_window',       true,  true,  false),
               ('created_at',        true,  false, false),
               ('created_by',        true,  false, false),
               ('rotated_at',        true,  false, false),
               ('secret_hash',       false, false, false),
               ('grace_secret_hash', false, false, false),
               ('grace_until',       true,  false, false),
               ('db_role',           true,  true,  false),
               ('credits',           true,  false, true),
               ('refill_amount',     true,  false, true),
               ('refill_interval',   true,  false, true),
               ('refill_day',        true,  false, true),
               ('credits_set_at',    true,  false, false)) AS c(col, sel, upd, upd_admin);

-- apikey.audit: read-only for admins and managers (5)
SELECT table_privs_are('apikey', 'audit', 'apikey_admin', ARRAY['SELECT']);
SELECT table_privs_are('apikey', 'audit', 'apikey_manager', ARRAY['SELECT']);
SELECT table_privs_are('apikey', 'audit', 'apikey_verifier', ARRAY[]::name[]);
SELECT table_privs_are('apikey', 'audit', 'pt_priv_plain', ARRAY[]::name[]);
SELECT table_privs_are('apikey', 'audit', 'public', ARRAY[]::name[]);

-- apikey.key_status (5)
SELECT table_privs_are('apikey', 'key_status', 'apikey_admin', ARRAY['SELECT']);
SELECT table_privs_are('apikey', 'key_status', 'apikey_manager', ARRAY['SELECT']);
SELECT table_privs_are('apikey', 'key_status', 'apikey_verifier', ARRAY[]::name[]);
SELECT table_privs_are('apikey', 'key_status', 'pt_priv_plain', ARRAY[]::name[]);
SELECT table_privs_are('apikey', 'key_status', 'public', ARRAY[]::name[]);

-- apikey.usage, apikey.stats and apikey.usage_hourly: read-only for admins and managers (15)
SELECT table_privs_are('apikey', t, r, CASE WHEN r IN ('apikey_admin', 'apikey_manager')
	THEN ARRAY['SELECT'] ELSE ARRAY[]::name[] END)
  FROM unnest(ARRAY['usage', 'stats', 'usage_hourly']::name[]) AS t,
       unnest(ARRAY['apikey_admin', 'apikey_manager', 'apikey_verifier', 'pt_priv_plain', 'public']::name[]) AS r;

-- sequences: nobody (2 x 5 = 10)
SELECT sequence_privs_are('apikey', s.seq::name, r.rol::name, ARRAY[]::name[])
  FROM (VALUES ('keys_id_seq'), ('audit_id_seq')) AS s(seq)
 CROSS JOIN (VALUES ('apikey_admin'), ('apikey_manager'), ('apikey_verifier'),
                    ('pt_priv_plain'), ('public')) AS r(rol);

-- functions x roles (18 x 5 = 90)
SELECT function_privs_are('apikey', f.fn::name, f.args::name[], r.rol::name,
	CASE WHEN (r.rol = 'apikey_admin' AND f.adm) OR (r.rol = 'apikey_manager' AND f.mgr)
	       OR (r.rol = 'apikey_verifier' AND f.ver)
		 THEN ARRAY['EXECUTE']::name[] ELSE '{}'::name[] END)
  FROM (VALUES
		('apikey_create', ARRAY['text', 'text[]', 'timestamptz', 'text', 'text', 'text[]', 'jsonb',
		                        'integer', 'interval', 'cidr[]', 'name', 'bigint', 'bigint', 'text',
		                        'integer'], true, true, false),
		('apikey_verify', ARRAY['text', 'text[]', 'text', 'inet'], true, true, true),
		('apikey_verify', ARRAY['text', 'text[]', 'text', 'inet', 'integer'], true, true, true),
		('plan_stamp', ARRAY[]::text[], false, false, false),
		('key_balances', ARRAY[]::text[], true, true, false),
		('apikey_rotate', ARRAY['bigint', 'interval'], true, true, false),
		('acting_role', ARRAY[]::text[], false, false, false),
		('keys_audit_row', ARRAY['text', 'apikey.keys', 'apikey.keys'], false, false, false),
		('keys_audit', ARRAY[]::text[], false, false, false),
		('audit_immutable', ARRAY[]::text[], false, false, false),
		('db_role_guard', ARRAY[]::text[], false, false, false),
		('postgrest_pre_request', ARRAY[]::text[], true, true, true),
		('current_key_id', ARRAY[]::text[], true, true, true),
		('current_owner', ARRAY[]::text[], true, true, true),
		('has_scope', ARRAY['text'], true, true, true),
		('rate_limit_guard', ARRAY[]::text[], false, false, false),
		('key_stats', ARRAY[]::text[], true, true, false),
		('server_stats', ARRAY[]::text[], true, true, false)) AS f(fn, args, adm, mgr, ver)
 CROSS JOIN (VALUES ('apikey_admin'), ('apikey_manager'), ('apikey_verifier'),
                    ('pt_priv_plain'), ('public')) AS r(rol);

-- PUBLIC holds no privilege on anything of the extension (1)
SELECT is_empty($$
	SELECT 'schema apikey' FROM pg_catalog.pg_namespace n,
	       pg_catalog.aclexplode(COALESCE(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) a
	 WHERE n.nspname = 'apikey' AND a.grantee = 0
	UNION ALL
	SELECT c.oid::regclass::text || ' ' || a.privilege_type
	  FROM pg_catalog.pg_class c,
	       pg_catalog.aclexplode(COALESCE(c.relacl, pg_catalog.acldefault(
	           CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a
	 WHERE c.relnamespace = 'apikey'::regnamespace AND a.grantee = 0
	UNION ALL
	SELECT c.oid::regclass::text || '.' || att.attname || ' ' || a.privilege_type
	  FROM pg_catalog.pg_class c
	  JOIN pg_catalog.pg_attribute att ON att.attrelid = c.oid AND att.attacl IS NOT NULL,
	       pg_catalog.aclexplode(att.attacl) a
	 WHERE c.relnamespace = 'apikey'::regnamespace AND a.grantee = 0
	UNION ALL
	SELECT p.oid::regprocedure::text || ' ' || a.privilege_type
	  FROM pg_catalog.pg_proc p,
	       pg_catalog.aclexplode(COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
	 WHERE p.pronamespace = 'apikey'::regnamespace AND a.grantee = 0
$$, 'PUBLIC holds no privilege on schema apikey, its tables, view, sequences or functions');

-- No role but superusers may touch a hash column.  Predefined roles
-- (pg_read_all_data, pg_write_all_data) are excluded: membership in them
-- is a superuser's explicit decision to bypass table privileges. (1)
SELECT is_empty($$
	SELECT r.rolname || ' ' || c.col || ' ' || p.priv
	  FROM pg_catalog.pg_roles r,
	       (VALUES ('secret_hash'), ('grace_secret_hash')) AS c(col),
	       (VALUES ('SELECT'), ('INSERT'), ('UPDATE'), ('REFERENCES')) AS p(priv)
	 WHERE NOT r.rolsuper AND r.oid >= 16384
	   AND pg_catalog.has_column_privilege(r.oid, 'apikey.keys', c.col, p.priv)
$$, 'no role but a superuser may read, write or reference secret_hash or grace_secret_hash');

-- key_status never shows a hash (2)
SELECT columns_are('apikey', 'key_status', ARRAY[
	'id', 'name', 'prefix', 'hint', 'owner', 'owner_role', 'scopes', 'resources',
	'allowed_cidrs', 'state', 'enabled', 'expires_at', 'rate_limit', 'rate_window',
	'rotated_at', 'grace_until', 'last_used_at', 'use_count', 'created_at', 'created_by',
	'db_role', 'credits', 'refill_amount', 'refill_interval', 'refill_day', 'credits_remaining',
	'next_refill'],
	'apikey.key_status has the documented columns and no hash');
SELECT is_empty($$
	SELECT attname FROM pg_catalog.pg_attribute
	 WHERE attrelid = 'apikey.key_status'::regclass AND attnum > 0 AND NOT attisdropped
	   AND (atttypid = 'bytea'::regtype OR attname ~ 'hash|secret')
$$, 'apikey.key_status has no bytea or hash-like column');

------------------------------------------------------------------------
-- Keys for the real attempts: two per manager, one by the admin (5)
------------------------------------------------------------------------
SET ROLE pt_priv_mgr_a;
SELECT lives_ok($$INSERT INTO pg_temp.pt_k
	SELECT 'a1', key_id, key FROM apikey.apikey_create('pt priv a1', ARRAY['jobs:read'])$$,
	'manager A creates a key');
SELECT lives_ok($$INSERT INTO pg_temp.pt_k
	SELECT 'a2', key_id, key FROM apikey.apikey_create('pt priv a2', ARRAY['jobs:read'])$$,
	'manager A creates a second key');
SET ROLE pt_priv_mgr_b;
SELECT lives_ok($$INSERT INTO pg_temp.pt_k
	SELECT 'b1', key_id, key FROM apikey.apikey_create('pt priv b1', ARRAY['jobs:read'])$$,
	'manager B creates a key');
SELECT lives_ok($$INSERT INTO pg_temp.pt_k
	SELECT 'b2', key_id, key FROM apikey.apikey_create('pt priv b2', ARRAY['jobs:read'])$$,
	'manager B creates a second key');
SET ROLE pt_priv_admin;
SELECT lives_ok($$INSERT INTO pg_temp.pt_k
	SELECT 'adm1', key_id, key FROM apikey.apikey_create('pt priv adm1', ARRAY['jobs:read'])$$,
	'admin creates a key');
RESET ROLE;

-- owner_role and created_by are the creating role (1)
SELECT results_eq(
	$$SELECT t.label, k.owner_role::text COLLATE "default", k.created_by::text COLLATE "default"
	    FROM pg_temp.pt_k t JOIN apikey.keys k ON k.id = t.key_id ORDER BY t.label$$,
	$$VALUES ('a1', 'pt_priv_mgr_a', 'pt_priv_mgr_a'), ('a2', 'pt_priv_mgr_a', 'pt_priv_mgr_a'),
	         ('adm1', 'pt_priv_admin', 'pt_priv_admin'),
	         ('b1', 'pt_priv_mgr_b', 'pt_priv_mgr_b'), ('b2', 'pt_priv_mgr_b', 'pt_priv_mgr_b')$$,
	'a created key has owner_role = created_by = the creating role');

------------------------------------------------------------------------
-- Manager A
------------------------------------------------------------------------
SET ROLE pt_priv_mgr_a;

-- sees only its own keys, in the table and in the view (2)
SELECT results_eq('SELECT id FROM apikey.keys ORDER BY id',
	$$SELECT key_id FROM pg_temp.pt_k WHERE label IN ('a1', 'a2') ORDER BY key_id$$,
	'manager A sees exactly its own keys in apikey.keys');
SELECT results_eq('SELECT id FROM apikey.key_status ORDER BY id',
	$$SELECT key_id FROM pg_temp.pt_k WHERE label IN ('a1', 'a2') ORDER BY key_id$$,
	'manager A sees exactly its own keys in apikey.key_status');

-- never a hash (6)
SELECT throws_ok('SELECT secret_hash FROM apikey.keys', '42501', NULL,
	'manager A cannot SELECT secret_hash');
SELECT throws_ok('SELECT grace_secret_hash FROM apikey.keys', '42501', NULL,
	'manager A cannot SELECT grace_secret_hash');
SELECT throws_ok('SELECT * FROM apikey.keys', '42501', NULL,
	'manager A cannot SELECT * from apikey.keys (it includes the hash)');
SELECT throws_ok('SELECT k FROM apikey.keys k', '42501', NULL,
	'manager A cannot read whole rows of apikey.keys');
SELECT throws_ok($$SELECT id FROM apikey.keys WHERE secret_hash = '\x00'::bytea$$, '42501', NULL,
	'manager A cannot filter on secret_hash (no hash oracle)');
SELECT throws_ok(format('UPDATE apikey.keys SET name = name WHERE id = %s RETURNING *', pg_temp.kid('a1')),
	'42501', NULL, 'manager A cannot read the hash back through UPDATE ... RETURNING *');

-- columns the extension maintains, on its own key (10)
SELECT throws_ok(format('UPDATE apikey.keys SET %I = %s WHERE id = %s', c, v, pg_temp.kid('a1')),
	'42501', NULL, format('manager A cannot UPDATE %s of its own key', c))
  FROM (VALUES ('secret_hash', $$'\x00000000000000000000000000000000000000000000000000000000000000ff'::bytea$$),
               ('grace_secret_hash', 'NULL'),
               ('prefix', $$'zz'$$),
               ('hint', $$'zz_abcd…wxyz'$$),
               ('id', 'DEFAULT'),
               ('created_at', 'now()'),
               ('created_by', 'current_user'),
               ('grace_until', 'NULL'),
               ('rotated_at', 'now()'),
               ('owner_role', $$'pt_priv_mgr_b'$$)) AS t(c, v);

-- no direct INSERT (1)
SELECT throws_ok($$INSERT INTO apikey.keys (name, prefix, hint, owner_role, scopes, secret_hash)
	VALUES ('forged', 'ak', 'ak_forg…ed00', current_user, '{}',
	        '\x00000000000000000000000000000000000000000000000000000000000000aa'::bytea)$$,
	'42501', NULL, 'manager A cannot INSERT into apikey.keys');

-- what it may change on its own key (4)
SELECT is(pg_temp.affected(format($$UPDATE apikey.keys SET name = 'pt priv a1 renamed' WHERE id = %s$$, pg_temp.kid('a1'))),
	'1', 'manager A renames its own key');
SELECT is(pg_temp.affected(format($$UPDATE apikey.keys SET scopes = ARRAY['jobs:read', 'jobs:write'] WHERE id = %s$$, pg_temp.kid('a1'))),
	'1', 'manager A changes the scopes of its own key');
SELECT is(pg_temp.affected(format($$UPDATE apikey.keys SET enabled = false WHERE id = %s$$, pg_temp.kid('a2'))),
	'1', 'manager A disables its own key');
SELECT is(pg_temp.affected(format($$UPDATE apikey.keys SET expires_at = now() + interval '30 days' WHERE id = %s$$, pg_temp.kid('a1'))),
	'1', 'manager A sets the expiry of its own key');

-- another manager's key is invisible (4)
SELECT is(pg_temp.affected(format($$UPDATE apikey.keys SET name = 'stolen' WHERE id = %s$$, pg_temp.kid('b1'))),
	'0', 'manager A renaming manager B''s key affects 0 rows');
SELECT is(pg_temp.affected(format($$UPDATE apikey.keys SET enabled = false, scopes = '{*}' WHERE id = %s$$, pg_temp.kid('b1'))),
	'0', 'manager A disabling / widening manager B''s key affects 0 rows');
SELECT is(pg_temp.affected(format('DELETE FROM apikey.keys WHERE id = %s', pg_temp.kid('b1'))),
	'0', 'manager A deleting manager B''s key affects 0 rows');
SELECT is(pg_temp.affected('UPDATE apikey.keys SET meta = ''{"touched": true}'''),
	'2', 'an UPDATE without WHERE by manager A touches only its own 2 keys');

-- rotation of someone else's key looks like a missing key (4)
SELECT throws_ok(format('SELECT apikey.apikey_rotate(%s)', pg_temp.kid('b1')), 'P0002',
	format('api key %s does not exist', pg_temp.kid('b1')),
	'manager A cannot rotate manager B''s key (P0002, as if missing)');
SELECT throws_ok(format('SELECT apikey.apikey_rotate(%s)', pg_temp.kid('adm1')), 'P0002',
	format('api key %s does not exist', pg_temp.kid('adm1')),
	'manager A cannot rotate the admin''s key (P0002, as if missing)');
SELECT throws_ok('SELECT apikey.apikey_rotate(9223372036854775807)', 'P0002',
	'api key 9223372036854775807 does not exist',
	'a missing key raises the same P0002');
SELECT is(current_user::text, 'pt_priv_mgr_a',
	'after the failed rotations manager A is still itself (the owner switch was undone)');

-- rotating its own key works (3)
SELECT lives_ok(format($$INSERT INTO pg_temp.pt_k SELECT 'a1r', %s, apikey.apikey_rotate(%s)$$,
	pg_temp.kid('a1'), pg_temp.kid('a1')), 'manager A rotates its own key');
SELECT is(pg_temp.code_of(pg_temp.kkey('a1r')), 'VALID', 'the rotated key verifies for manager A');
SELECT is(pg_temp.code_of(pg_temp.kkey('a1')), 'NOT_FOUND', 'the old key no longer verifies');

-- deleting its own key works (1)
SELECT is(pg_temp.affected(format('DELETE FROM apikey.keys WHERE id = %s', pg_temp.kid('a2'))),
	'1', 'manager A deletes its own key');

-- audit: only its own keys' rows (3)
SELECT is_empty('SELECT id, key_id, key_owner_role FROM apikey.audit WHERE key_owner_role <> current_user',
	'manager A reads no audit row of another role''s key');
SELECT is_empty(format('SELECT id FROM apikey.audit WHERE key_id IN (%s, %s, %s)',
	pg_temp.kid('b1'), pg_temp.kid('b2'), pg_temp.kid('adm1')),
	'manager A reads no audit row of manager B''s or the admin''s keys');
SELECT isnt_empty(format('SELECT id FROM apikey.audit WHERE key_id = %s', pg_temp.kid('a1')),
	'manager A reads the audit rows of its own key');
INSERT INTO pg_temp.pt_seen SELECT 'mgr_a', 'audit', id FROM apikey.audit;

-- nothing else (12)
SELECT throws_ok('SELECT apikey.acting_role()', '42501', NULL,
	'manager A cannot execute apikey.acting_role()');
SELECT throws_ok('SELECT apikey.keys_audit_row(''INSERT'', NULL, NULL)', '42501', NULL,
	'manager A cannot execute apikey.keys_audit_row()');
SELECT throws_ok('SELECT apikey.keys_audit()', '42501', NULL,
	'manager A cannot execute apikey.keys_audit()');
SELECT throws_ok('SELECT apikey.audit_immutable()', '42501', NULL,
	'manager A cannot execute apikey.audit_immutable()');
SELECT throws_ok($$SELECT nextval('apikey.keys_id_seq')$$, '42501', NULL,
	'manager A cannot use apikey.keys_id_seq');
SELECT throws_ok($$SELECT nextval('apikey.audit_id_seq')$$, '42501', NULL,
	'manager A cannot use apikey.audit_id_seq');
SELECT throws_ok('TRUNCATE apikey.keys', '42501', NULL,
	'manager A cannot TRUNCATE apikey.keys');
SELECT throws_ok($$INSERT INTO apikey.audit (action, actor_current_user) VALUES ('create', current_user)$$,
	'42501', NULL, 'manager A cannot INSERT into apikey.audit');
SELECT throws_ok($$UPDATE apikey.audit SET action = 'update'$$, '42501', NULL,
	'manager A cannot UPDATE apikey.audit');
SELECT throws_ok('DELETE FROM apikey.audit', '42501', NULL,
	'manager A cannot DELETE from apikey.audit');
SELECT throws_ok('TRUNCATE apikey.audit', '42501', NULL,
	'manager A cannot TRUNCATE apikey.audit');
SELECT throws_ok('CREATE TABLE apikey.pt_priv_intruder ()', '42501', NULL,
	'manager A cannot create objects in schema apikey');
RESET ROLE;

------------------------------------------------------------------------
-- Manager B
------------------------------------------------------------------------
SET ROLE pt_priv_mgr_b;

-- (6)
SELECT results_eq('SELECT id FROM apikey.keys ORDER BY id',
	$$SELECT key_id FROM pg_temp.pt_k WHERE label IN ('b1', 'b2') ORDER BY key_id$$,
	'manager B sees exactly its own keys');
SELECT results_eq(format('SELECT name, enabled, scopes, meta FROM apikey.keys WHERE id = %s', pg_temp.kid('b1')),
	$$VALUES ('pt priv b1', true, ARRAY['jobs:read'], '{}'::jsonb)$$,
	'manager B''s key is untouched by manager A''s attempts');
SELECT is(pg_temp.code_of(pg_temp.kkey('b1')), 'VALID',
	'manager B''s key still verifies (manager A could not rotate it)');
SELECT is_empty(format('SELECT id FROM apikey.audit WHERE key_id IN (%s, %s)', pg_temp.kid('a1'), pg_temp.kid('a2')),
	'manager B reads no audit row of manager A''s keys');
SELECT throws_ok(format('SELECT apikey.apikey_rotate(%s)', pg_temp.kid('a1')), 'P0002',
	format('api key %s does not exist', pg_temp.kid('a1')),
	'manager B cannot rotate manager A''s key');
SELECT throws_ok('SELECT secret_hash FROM apikey.keys', '42501', NULL,
	'manager B cannot SELECT secret_hash');
RESET ROLE;

------------------------------------------------------------------------
-- Admin
------------------------------------------------------------------------
SET ROLE pt_priv_admin;

INSERT INTO pg_temp.pt_seen SELECT 'admin', 'keys', id FROM apikey.keys;
INSERT INTO pg_temp.pt_seen SELECT 'admin', 'audit', id FROM apikey.audit;

-- never a hash (3)
SELECT throws_ok('SELECT secret_hash FROM apikey.keys', '42501', NULL,
	'admin cannot SELECT secret_hash');
SELECT throws_ok('SELECT grace_secret_hash FROM apikey.keys', '42501', NULL,
	'admin cannot SELECT grace_secret_hash');
SELECT throws_ok('SELECT * FROM apikey.keys', '42501', NULL,
	'admin cannot SELECT * from apikey.keys (it includes the hash)');

-- columns the extension maintains, on someone else's key (9)
SELECT throws_ok(format('UPDATE apikey.keys SET %I = %s WHERE id = %s', c, v, pg_temp.kid('b1')),
	'42501', NULL, format('admin cannot UPDATE %s', c))
  FROM (VALUES ('secret_hash', $$'\x00000000000000000000000000000000000000000000000000000000000000ff'::bytea$$),
               ('grace_secret_hash', 'NULL'),
               ('prefix', $$'zz'$$),
               ('hint', $$'zz_abcd…wxyz'$$),
               ('id', 'DEFAULT'),
               ('created_at', 'now()'),
               ('created_by', 'current_user'),
               ('grace_until', 'NULL'),
               ('rotated_at', 'now()')) AS t(c, v);

-- (1)
SELECT throws_ok($$INSERT INTO apikey.keys (name, prefix, hint, owner_role, scopes, secret_hash)
	VALUES ('forged', 'ak', 'ak_forg…ed00', current_user, '{}',
	        '\x00000000000000000000000000000000000000000000000000000000000000bb'::bytea)$$,
	'42501', NULL, 'admin cannot INSERT into apikey.keys');

-- any key (6)
SELECT is(pg_temp.affected(format($$UPDATE apikey.keys SET name = 'pt priv b1 by admin' WHERE id = %s$$, pg_temp.kid('b1'))),
	'1', 'admin renames manager B''s key');
SELECT is(pg_temp.affected(format($$UPDATE apikey.keys SET owner_role = 'pt_priv_mgr_a' WHERE id = %s$$, pg_temp.kid('b2'))),
	'1', 'admin moves manager B''s key to manager A (owner_role)');
SELECT lives_ok(format($$INSERT INTO pg_temp.pt_k SELECT 'b1r', %s, apikey.apikey_rotate(%s)$$,
	pg_temp.kid('b1'), pg_temp.kid('b1')), 'admin rotates manager B''s key');
SELECT is(pg_temp.code_of(pg_temp.kkey('b1r')), 'VALID', 'the key the admin rotated verifies');
SELECT is(pg_temp.affected(format('DELETE FROM apikey.keys WHERE id = %s', pg_temp.kid('adm1'))),
	'1', 'admin deletes a key');
SELECT is(pg_temp.affected(format('DELETE FROM apikey.keys WHERE id = %s', pg_temp.kid('b1'))),
	'1', 'admin deletes manager B''s key');

-- nothing else (10)
SELECT throws_ok('SELECT apikey.acting_role()', '42501', NULL, 'admin cannot execute apikey.acting_role()');
SELECT throws_ok('SELECT apikey.keys_audit_row(''INSERT'', NULL, NULL)', '42501', NULL,
	'admin cannot execute apikey.keys_audit_row()');
SELECT throws_ok('SELECT apikey.keys_audit()', '42501', NULL, 'admin cannot execute apikey.keys_audit()');
SELECT throws_ok('SELECT apikey.audit_immutable()', '42501', NULL, 'admin cannot execute apikey.audit_immutable()');
SELECT throws_ok($$SELECT nextval('apikey.keys_id_seq')$$, '42501', NULL, 'admin cannot use apikey.keys_id_seq');
SELECT throws_ok($$SELECT setval('apikey.audit_id_seq', 1)$$, '42501', NULL, 'admin cannot use apikey.audit_id_seq');
SELECT throws_ok('TRUNCATE apikey.keys', '42501', NULL, 'admin cannot TRUNCATE apikey.keys');
SELECT throws_ok($$INSERT INTO apikey.audit (action, actor_current_user) VALUES ('create', current_user)$$,
	'42501', NULL, 'admin cannot INSERT into apikey.audit');
SELECT throws_ok($$UPDATE apikey.audit SET action = 'update'$$, '42501', NULL, 'admin cannot UPDATE apikey.audit');
SELECT throws_ok('DELETE FROM apikey.audit', '42501', NULL, 'admin cannot DELETE from apikey.audit');
RESET ROLE;

-- the key the admin moved is now manager A's, and only manager A's (2)
SET ROLE pt_priv_mgr_a;
SELECT isnt_empty(format('SELECT id FROM apikey.keys WHERE id = %s', pg_temp.kid('b2')),
	'manager A now sees the key the admin gave it');
SET ROLE pt_priv_mgr_b;
SELECT is_empty(format('SELECT id FROM apikey.keys WHERE id = %s', pg_temp.kid('b2')),
	'manager B no longer sees the key the admin took from it');
RESET ROLE;

------------------------------------------------------------------------
-- Verifier: apikey_verify and nothing else
------------------------------------------------------------------------
SET ROLE pt_priv_verifier;

-- (13)
SELECT is(pg_temp.code_of(pg_temp.kkey('a1r')), 'VALID', 'the verifier verifies a key: VALID');
SELECT is((apikey.apikey_verify('ak_nonsense')).code, 'MALFORMED', 'the verifier gets MALFORMED for garbage');
SELECT throws_ok($$SELECT * FROM apikey.apikey_create('pt priv by verifier', '{}')$$, '42501', NULL,
	'the verifier cannot create keys');
SELECT throws_ok(format('SELECT apikey.apikey_rotate(%s)', pg_temp.kid('a1')), '42501', NULL,
	'the verifier cannot rotate keys');
SELECT throws_ok('SELECT id FROM apikey.keys', '42501', NULL, 'the verifier cannot SELECT apikey.keys');
SELECT throws_ok('SELECT id FROM apikey.audit', '42501', NULL, 'the verifier cannot SELECT apikey.audit');
SELECT throws_ok('SELECT id FROM apikey.key_status', '42501', NULL, 'the verifier cannot SELECT apikey.key_status');
SELECT throws_ok('UPDATE apikey.keys SET enabled = false', '42501', NULL, 'the verifier cannot UPDATE apikey.keys');
SELECT throws_ok('DELETE FROM apikey.keys', '42501', NULL, 'the verifier cannot DELETE from apikey.keys');
SELECT throws_ok($$INSERT INTO apikey.keys (name, prefix, hint, owner_role, scopes, secret_hash)
	VALUES ('forged', 'ak', 'ak_forg…ed00', current_user, '{}',
	        '\x00000000000000000000000000000000000000000000000000000000000000cc'::bytea)$$,
	'42501', NULL, 'the verifier cannot INSERT into apikey.keys');
SELECT throws_ok('SELECT apikey.acting_role()', '42501', NULL, 'the verifier cannot execute apikey.acting_role()');
SELECT throws_ok($$SELECT nextval('apikey.keys_id_seq')$$, '42501', NULL, 'the verifier cannot use apikey.keys_id_seq');
SELECT throws_ok('TRUNCATE apikey.audit', '42501', NULL, 'the verifier cannot TRUNCATE apikey.audit');
RESET ROLE;

------------------------------------------------------------------------
-- A role with no grant (= PUBLIC): not even USAGE on the schema
------------------------------------------------------------------------
SET ROLE pt_priv_plain;

-- (7)
SELECT throws_ok(format('SELECT apikey.apikey_verify(%L)', pg_temp.kkey('a1r')), '42501',
	'permission denied for schema apikey', 'a plain role cannot even call apikey_verify (no USAGE on schema apikey)');
SELECT throws_ok($$SELECT * FROM apikey.apikey_create('pt priv by plain', '{}')$$, '42501', NULL,
	'a plain role cannot create keys');
SELECT throws_ok(format('SELECT apikey.apikey_rotate(%s)', pg_temp.kid('a1')), '42501', NULL,
	'a plain role cannot rotate keys');
SELECT throws_ok('SELECT id FROM apikey.keys', '42501', NULL, 'a plain role cannot SELECT apikey.keys');
SELECT throws_ok('SELECT id FROM apikey.audit', '42501', NULL, 'a plain role cannot SELECT apikey.audit');
SELECT throws_ok('SELECT id FROM apikey.key_status', '42501', NULL, 'a plain role cannot SELECT apikey.key_status');
SELECT throws_ok('DELETE FROM apikey.keys', '42501', NULL, 'a plain role cannot DELETE from apikey.keys');
RESET ROLE;

------------------------------------------------------------------------
-- What the roles saw, compared by the superuser (4)
------------------------------------------------------------------------
SELECT set_eq($$SELECT id FROM pg_temp.pt_seen WHERE who = 'admin' AND what = 'keys'$$,
	$$SELECT id FROM apikey.keys
	   UNION ALL SELECT key_id FROM pg_temp.pt_k WHERE label IN ('adm1', 'b1')$$,
	'the admin saw every key');
SELECT set_eq($$SELECT id FROM pg_temp.pt_seen WHERE who = 'admin' AND what = 'audit'$$,
	$$SELECT id FROM apikey.audit WHERE id <= (SELECT max(id) FROM pg_temp.pt_seen WHERE who = 'admin' AND what = 'audit')$$,
	'the admin saw every audit row');
SELECT set_eq($$SELECT id FROM pg_temp.pt_seen WHERE who = 'mgr_a' AND what = 'audit'$$,
	$$SELECT id FROM apikey.audit WHERE key_owner_role = 'pt_priv_mgr_a'
	     AND id <= (SELECT max(id) FROM pg_temp.pt_seen WHERE who = 'mgr_a')$$,
	'manager A saw exactly the audit rows of its own keys');
SELECT isnt_empty('SELECT secret_hash, grace_secret_hash FROM apikey.keys',
	'a superuser can read the hashes');

-- the group role apikey_manager owns nothing and sees nothing: every manager
-- can SET ROLE to it, so keys owned by it would be shared by all
SET ROLE apikey_manager;
SELECT throws_ok($$SELECT * FROM apikey.apikey_create('group key', '{}')$$, '42501',
	'keys cannot be owned by role "apikey_manager"',
	'apikey_create as the group role apikey_manager is refused');
RESET ROLE;
SELECT key_id AS pt_group_key FROM apikey.apikey_create('to be given to the group', '{}') \gset
UPDATE apikey.keys SET owner_role = 'apikey_manager' WHERE id = :pt_group_key;
SET ROLE apikey_manager;
SELECT is((SELECT count(*) FROM apikey.keys WHERE owner_role = 'apikey_manager'), 0::bigint,
	'as apikey_manager itself, RLS shows no key even if one is owned by the group');
SELECT throws_ok('SELECT apikey.apikey_rotate(' || :pt_group_key || ')', '42501',
	NULL, 'apikey_rotate as the group role apikey_manager is refused');
SELECT is((SELECT count(*) FROM apikey.audit WHERE key_owner_role = 'apikey_manager'), 0::bigint,
	'as apikey_manager itself, no audit row is visible');
RESET ROLE;

-- owners (1.2): a manager gives its keys only NULL or an owner registered
-- to it in apikey.owners; only administrators register owners and give
-- any owner
INSERT INTO apikey.owners (owner, managed_by) VALUES ('pt-own-a', 'pt_priv_mgr_a'), ('pt-own-b', 'pt_priv_mgr_b');
SET ROLE pt_priv_mgr_a;
SELECT throws_ok($$SELECT * FROM apikey.apikey_create('pt own x', '{}', owner => 'pt-own-unregistered')$$, '42501',
	'the owner given is not registered to role "pt_priv_mgr_a"', 'a manager cannot give its key an unregistered owner');
SELECT throws_ok($$SELECT * FROM apikey.apikey_create('pt own x', '{}', owner => 'pt-own-b')$$, '42501', NULL,
	'nor an owner registered to another manager');
SELECT lives_ok($$SELECT * FROM apikey.apikey_create('pt own a', '{}', owner => 'pt-own-a')$$,
	'but an owner registered to it');
SELECT lives_ok($$SELECT * FROM apikey.apikey_create('pt own none', '{}')$$, 'and no owner at all');
SELECT throws_ok($$UPDATE apikey.keys SET owner = 'pt-own-b' WHERE name = 'pt own a'$$, '42501', NULL,
	'an UPDATE cannot give a key another manager''s owner');
SELECT throws_ok($$UPDATE apikey.keys SET owner = 'pt-own-new' WHERE name = 'pt own none'$$, '42501', NULL,
	'nor an unregistered one');
SELECT lives_ok($$UPDATE apikey.keys SET owner = NULL WHERE name = 'pt own a'$$, 'it can clear an owner');
SELECT throws_ok($$INSERT INTO apikey.owners (owner, managed_by) VALUES ('pt-own-mine', 'pt_priv_mgr_a')$$, '42501', NULL,
	'a manager cannot register an owner');
SELECT is(ARRAY(SELECT owner FROM apikey.owners ORDER BY 1), ARRAY['pt-own-a'], 'a manager sees only the owners registered to it');
RESET ROLE;
SET ROLE pt_priv_admin;
SELECT lives_ok($$SELECT * FROM apikey.apikey_create('pt own admin', '{}', owner => 'pt-own-anything')$$,
	'an administrator gives any owner');
SELECT lives_ok($$INSERT INTO apikey.owners (owner, managed_by) VALUES ('pt-own-later', 'pt_priv_mgr_a')$$,
	'and registers owners');
RESET ROLE;
-- a key an administrator gave an unregistered owner: the manager owning it
-- may still change its other columns
UPDATE apikey.keys SET owner = 'pt-own-unregistered', owner_role = 'pt_priv_mgr_a' WHERE name = 'pt own admin';
SET ROLE pt_priv_mgr_a;
SELECT lives_ok($$UPDATE apikey.keys SET meta = '{"x": 1}', owner = 'pt-own-unregistered' WHERE name = 'pt own admin'$$,
	'an UPDATE that leaves an unregistered owner as it was passes');
RESET ROLE;

-- owners' plans (1.2): administrators set them, managers read their own
-- owners' plans and balances; the id and credits_set_at are the
-- extension's (11)
SELECT column_privs_are('apikey', 'owners', c::name, 'apikey_admin',
	CASE WHEN c IN ('id', 'credits_set_at', 'created_at') THEN ARRAY['SELECT', 'INSERT']::name[]
		 ELSE ARRAY['SELECT', 'INSERT', 'UPDATE']::name[] END)
  FROM unnest(ARRAY['rate_limit', 'credits', 'refill_day', 'credits_set_at', 'id']) AS c;
SELECT table_privs_are('apikey', 'owners', 'apikey_manager', ARRAY['SELECT']);
SELECT table_privs_are('apikey', 'owner_usage', r, CASE WHEN r IN ('apikey_admin', 'apikey_manager')
	THEN ARRAY['SELECT'] ELSE ARRAY[]::name[] END)
  FROM unnest(ARRAY['apikey_admin', 'apikey_manager', 'apikey_verifier', 'public']::name[]) AS r;
-- (balances as the worker writes them; credits themselves need shared
-- memory, which this server lacks: sql/plans.sql sets them)
INSERT INTO apikey.owner_usage SELECT id, 7, now(), now() FROM apikey.owners WHERE owner LIKE 'pt-own-%';
SET ROLE pt_priv_mgr_a;
SELECT is(ARRAY(SELECT o.owner || '=' || u.credits_remaining
				  FROM apikey.owner_usage u JOIN apikey.owners o ON o.id = u.owner_id ORDER BY 1),
	ARRAY['pt-own-a=7', 'pt-own-later=7'], 'a manager reads the balances of its own owners only (not pt-own-b''s)');
SELECT throws_ok($$UPDATE apikey.owners SET credits = 1000 WHERE owner = 'pt-own-a'$$, '42501', NULL,
	'a manager cannot top up its owner');
RESET ROLE;

-- no statistics of a hash, for pg_read_all_data or anyone: ANALYZE keeps
-- none of the hash columns or the hash prefix indexes (1.2)
CREATE ROLE regress_reads_all_stats NOLOGIN IN ROLE pg_read_all_data;
ANALYZE apikey.keys;
SET ROLE regress_reads_all_stats;
SELECT is((SELECT count(*)::int FROM pg_catalog.pg_stats
			WHERE schemaname = 'apikey' AND (tablename LIKE '%hash_prefix_idx' OR attname LIKE '%secret_hash')), 0,
	'pg_read_all_data sees no statistics of a hash after ANALYZE');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_catalog.pg_statistic s
			WHERE s.starelid IN ('apikey.keys_hash_prefix_idx'::regclass, 'apikey.keys_grace_hash_prefix_idx'::regclass)
			   OR (s.starelid = 'apikey.keys'::regclass AND s.staattnum IN (
					SELECT attnum FROM pg_attribute WHERE attrelid = 'apikey.keys'::regclass
					   AND attname IN ('secret_hash', 'grace_secret_hash', 'name', 'owner', 'hint', 'prefix')))), 0,
	'ANALYZE stored no statistics of a hash, nor of names, owners, hints or prefixes a tenant could probe with EXPLAIN');
SELECT cmp_ok((SELECT count(*)::int FROM pg_catalog.pg_statistic s WHERE s.starelid = 'apikey.keys'::regclass), '>', 0,
	'(ANALYZE did store statistics of the other columns)');

SELECT * FROM finish();
ROLLBACK;
