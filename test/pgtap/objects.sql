-- objects.sql: the extension's catalog contract (SPEC "Objects",
-- "Functions", "Privileges"): schema, table, columns and types, the unique
-- hash index, exact function signatures and results, the composite type,
-- roles, comments, volatility and pinned search_path, privileges, and the
-- control-file facts.
--
-- Needs: CREATE EXTENSION pgtap, pgcrypto, apikey; run as a superuser.
BEGIN;
SELECT plan(142);

-- argument type lists, as pgTAP wants them
CREATE TEMP TABLE sig (fn name PRIMARY KEY, args name[] NOT NULL, regproc text NOT NULL) ON COMMIT DROP;
INSERT INTO sig VALUES
	('apikey_create',
	 ARRAY['text', 'text[]', 'timestamp with time zone', 'text', 'text', 'text[]', 'jsonb',
		   'integer', 'interval', 'cidr[]', 'name', 'bigint', 'bigint', 'text', 'integer'],
	 'apikey.apikey_create(text, text[], timestamptz, text, text, text[], jsonb, integer, interval, cidr[], name, bigint, bigint, text, integer)'),
	('apikey_verify', ARRAY['text', 'text[]', 'text', 'inet'],
	 'apikey.apikey_verify(text, text[], text, inet)'),
	('apikey_rotate', ARRAY['bigint', 'interval'],
	 'apikey.apikey_rotate(bigint, interval)');

------------------------------------------------------------------------
-- Extension and control file
------------------------------------------------------------------------
SELECT has_schema('apikey');
SELECT has_extension('apikey');
SELECT is((SELECT extrelocatable FROM pg_extension WHERE extname = 'apikey'), false,
          'extension is not relocatable');
SELECT is((SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'apikey'), 'apikey',
          'extension namespace is apikey');
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'apikey'), '1.2',
          'extension version is 1.2');
SELECT is((SELECT ROW(superuser, trusted, relocatable, schema::text)::text
             FROM pg_available_extension_versions WHERE name = 'apikey' AND version = '1.2'),
          ROW(true, false, false, 'apikey')::text,
          'control file: superuser = true, not trusted, not relocatable, schema = apikey');
SELECT is((SELECT default_version FROM pg_available_extensions WHERE name = 'apikey'), '1.2',
          'control file: default_version = 1.2');
SELECT is(ARRAY(
	SELECT o.what FROM (
		SELECT 'pg_proc'::regclass AS classid, p.oid, 'function ' || p.proname AS what
		  FROM pg_proc p WHERE p.pronamespace = 'apikey'::regnamespace
		UNION ALL
		SELECT 'pg_class'::regclass, c.oid, 'table ' || c.relname
		  FROM pg_class c WHERE c.relnamespace = 'apikey'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
		UNION ALL
		SELECT 'pg_type'::regclass, t.oid, 'type ' || t.typname
		  FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid
		 WHERE t.typnamespace = 'apikey'::regnamespace AND t.typtype = 'c' AND c.relkind = 'c') o
	 WHERE NOT EXISTS (SELECT 1 FROM pg_depend d
	                    WHERE d.classid = o.classid AND d.objid = o.oid AND d.deptype = 'e'
	                      AND d.refclassid = 'pg_extension'::regclass
	                      AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'apikey'))
	 ORDER BY 1),
	'{}'::text[],
	'every function, table and composite type in schema apikey belongs to the extension');

------------------------------------------------------------------------
-- apikey.keys
------------------------------------------------------------------------
SELECT has_table('apikey', 'keys', 'table apikey.keys exists');

CREATE TEMP TABLE want_cols (n int, col name, typ text) ON COMMIT DROP;
INSERT INTO want_cols VALUES
	(1, 'id', 'bigint'),
	(2, 'name', 'text'),
	(3, 'prefix', 'text'),
	(4, 'hint', 'text'),
	(5, 'owner', 'text'),
	(6, 'owner_role', 'name'),
	(7, 'scopes', 'text[]'),
	(8, 'resources', 'text[]'),
	(9, 'allowed_cidrs', 'cidr[]'),
	(10, 'meta', 'jsonb'),
	(11, 'enabled', 'boolean'),
	(12, 'expires_at', 'timestamp with time zone'),
	(13, 'rate_limit', 'integer'),
	(14, 'rate_window', 'interval'),
	(15, 'created_at', 'timestamp with time zone'),
	(16, 'created_by', 'name'),
	(17, 'rotated_at', 'timestamp with time zone'),
	(18, 'db_role', 'name'),
	(19, 'secret_hash', 'bytea');

SELECT has_column('apikey', 'keys', col, format('apikey.keys has column %s', col))
  FROM want_cols ORDER BY n;
SELECT col_type_is('apikey', 'keys', col, typ, format('apikey.keys.%s is %s', col, typ))
  FROM want_cols ORDER BY n;

SELECT col_not_null('apikey', 'keys', c, format('apikey.keys.%s is NOT NULL', c))
  FROM unnest(ARRAY['id', 'name', 'prefix', 'hint', 'owner_role', 'scopes', 'meta', 'enabled',
                    'created_at', 'created_by', 'secret_hash']::name[]) WITH ORDINALITY AS u(c, i)
 ORDER BY i;
SELECT col_is_null('apikey', 'keys', c, format('apikey.keys.%s is nullable (NULL has a meaning)', c))
  FROM unnest(ARRAY['owner', 'resources', 'allowed_cidrs', 'expires_at', 'rate_limit', 'rate_window',
                    'rotated_at', 'db_role']::name[]) WITH ORDINALITY AS u(c, i)
 ORDER BY i;

SELECT col_is_pk('apikey', 'keys', 'id', 'apikey.keys.id is the primary key');
SELECT ok((SELECT attidentity IN ('a', 'd') FROM pg_attribute
            WHERE attrelid = 'apikey.keys'::regclass AND attname = 'id'),
          'apikey.keys.id is an identity column');

SELECT has_index('apikey', 'keys', 'keys_secret_hash_idx', 'secret_hash', 'index on apikey.keys(secret_hash)');
SELECT index_is_unique('apikey', 'keys', 'keys_secret_hash_idx', 'the secret_hash index is unique');
SELECT ok(EXISTS (
	SELECT 1 FROM pg_index i
	 WHERE i.indrelid = 'apikey.keys'::regclass AND i.indisunique AND i.indisvalid
	   AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnkeyatts = 1
	   AND i.indkey[0] = (SELECT attnum FROM pg_attribute
	                       WHERE attrelid = 'apikey.keys'::regclass AND attname = 'secret_hash')),
	'a unique, non-partial index covers exactly secret_hash (whatever its name)');

------------------------------------------------------------------------
-- apikey.verification
------------------------------------------------------------------------
SELECT has_composite('apikey', 'verification', 'composite type apikey.verification exists');
SELECT is(ARRAY(SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                  FROM pg_attribute a
                 WHERE a.attrelid = (SELECT typrelid FROM pg_type
                                      WHERE oid = 'apikey.verification'::regtype)
                   AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum),
          ARRAY['valid boolean', 'code text', 'http_status integer', 'key_id bigint', 'name text',
                'owner text', 'scopes text[]', 'resources text[]', 'meta jsonb',
                'expires_at timestamp with time zone', 'retry_after interval',
                'grace_until timestamp with time zone', 'credits_remaining bigint',
                'missing_scopes text[]'],
          'apikey.verification has the SPEC columns, types and order');

------------------------------------------------------------------------
-- Functions: exact signatures, results, properties
------------------------------------------------------------------------
SELECT has_function('apikey', fn, args, format('function apikey.%s(%s) exists', fn, array_to_string(args, ', ')))
  FROM sig ORDER BY fn;
SELECT is((SELECT array_agg(DISTINCT p.proname ORDER BY p.proname) FILTER (WHERE n > 1)
             FROM (SELECT proname, count(*) OVER (PARTITION BY proname) AS n
                     FROM pg_proc WHERE pronamespace = 'apikey'::regnamespace) p),
          ARRAY['apikey_verify']::name[],
          'no apikey function is overloaded but apikey_verify (its five-argument metered form)');
-- the metered form: a separate overload whose cost has no default, so
-- every four-argument call resolves as before
SELECT has_function('apikey', 'apikey_verify', ARRAY['text', 'text[]', 'text', 'inet', 'integer'],
                    'function apikey.apikey_verify(text, text[], text, inet, integer) exists');
SELECT function_returns('apikey', 'apikey_verify', ARRAY['text', 'text[]', 'text', 'inet', 'integer'],
                        'apikey.verification', 'the metered apikey_verify returns apikey.verification');
SELECT is(pg_get_function_arguments('apikey.apikey_verify(text, text[], text, inet, integer)'::regprocedure),
          'key text, required_scopes text[], resource text, client_addr inet, cost integer',
          'the metered apikey_verify: parameter names, no defaults');
SELECT is((SELECT ROW(provolatile, proisstrict, prosecdef)::text FROM pg_proc
            WHERE oid = 'apikey.apikey_verify(text, text[], text, inet, integer)'::regprocedure),
          ROW('v'::"char", false, false)::text,
          'the metered apikey_verify is VOLATILE, CALLED ON NULL INPUT, not SECURITY DEFINER');
SELECT is((SELECT count(*)::int FROM pg_proc p, pg_type t
            WHERE p.pronamespace = 'apikey'::regnamespace AND p.proname = 'apikey_verify'
              AND t.oid = p.prorettype AND t.typname = 'verification'
              AND p.prosrc = 'apikey_verify'), 2,
          'both forms of apikey_verify are the same C function');

SELECT function_returns('apikey', 'apikey_create', (SELECT args FROM sig WHERE fn = 'apikey_create'),
                        'setof record', 'apikey_create returns a set of records');
SELECT is(pg_get_function_result('apikey.apikey_create'::regproc), 'TABLE(key_id bigint, key text)',
          'apikey_create RETURNS TABLE (key_id bigint, key text)');
SELECT function_returns('apikey', 'apikey_verify', (SELECT args FROM sig WHERE fn = 'apikey_verify'),
                        'apikey.verification', 'apikey_verify returns apikey.verification');
SELECT function_returns('apikey', 'apikey_rotate', (SELECT args FROM sig WHERE fn = 'apikey_rotate'),
                        'text', 'apikey_rotate returns text');

-- parameter names and defaults are part of the contract (named notation)
SELECT is(pg_get_function_arguments('apikey.apikey_create'::regproc),
          'name text, scopes text[], expires_at timestamp with time zone DEFAULT NULL::timestamp with time zone, '
          'prefix text DEFAULT NULL::text, owner text DEFAULT NULL::text, resources text[] DEFAULT NULL::text[], '
          'meta jsonb DEFAULT ''{}''::jsonb, rate_limit integer DEFAULT NULL::integer, '
          'rate_window interval DEFAULT NULL::interval, allowed_cidrs cidr[] DEFAULT NULL::cidr[], '
          'db_role name DEFAULT NULL::name, credits bigint DEFAULT NULL::bigint, '
          'refill_amount bigint DEFAULT NULL::bigint, refill_interval text DEFAULT NULL::text, '
          'refill_day integer DEFAULT NULL::integer',
          'apikey_create parameter names and defaults');
SELECT is(pg_get_function_arguments('apikey.apikey_verify(text, text[], text, inet)'::regprocedure),
          'key text, required_scopes text[] DEFAULT ''{}''::text[], resource text DEFAULT NULL::text, '
          'client_addr inet DEFAULT NULL::inet',
          'apikey_verify parameter names and defaults');
SELECT is(pg_get_function_arguments('apikey.apikey_rotate'::regproc),
          'key_id bigint, grace interval DEFAULT ''00:00:00''::interval',
          'apikey_rotate parameter names and defaults');

SELECT volatility_is('apikey', fn, args, 'volatile', format('apikey.%s is VOLATILE', fn))
  FROM sig ORDER BY fn;
SELECT isnt_strict('apikey', fn, args, format('apikey.%s is CALLED ON NULL INPUT (NULL is handled, not ignored)', fn))
  FROM sig ORDER BY fn;
SELECT ok('search_path=pg_catalog, pg_temp' = ANY (p.proconfig),
          format('apikey.%s has SET search_path = pg_catalog, pg_temp', s.fn))
  FROM sig s JOIN pg_proc p ON p.oid = s.regproc::regprocedure
 WHERE s.fn IN ('apikey_create', 'apikey_rotate') ORDER BY s.fn;
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.pronamespace = 'apikey'::regnamespace AND p.prosecdef
                   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%')
                 ORDER BY 1),
          '{}'::text[], 'every SECURITY DEFINER function in apikey pins search_path');

------------------------------------------------------------------------
-- Comments
------------------------------------------------------------------------
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.pronamespace = 'apikey'::regnamespace
                   AND obj_description(p.oid, 'pg_proc') IS NULL ORDER BY 1),
          '{}'::text[], 'every function in apikey has a comment');
SELECT is(ARRAY(SELECT c.oid::regclass::text FROM pg_class c
                 WHERE c.relnamespace = 'apikey'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
                   AND obj_description(c.oid, 'pg_class') IS NULL ORDER BY 1),
          '{}'::text[], 'every table and view in apikey has a comment');
SELECT is(ARRAY(SELECT t.oid::regtype::text FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid
                 WHERE t.typnamespace = 'apikey'::regnamespace AND c.relkind = 'c'
                   AND obj_description(t.oid, 'pg_type') IS NULL ORDER BY 1),
          '{}'::text[], 'every composite type in apikey has a comment');
SELECT isnt(obj_description('apikey.verification'::regtype, 'pg_type'), NULL,
            'apikey.verification has a comment');
SELECT isnt(obj_description('apikey.keys'::regclass, 'pg_class'), NULL, 'apikey.keys has a comment');
SELECT is(ARRAY(SELECT c.oid::regclass::text || '.' || a.attname
                  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
                 WHERE c.relnamespace = 'apikey'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'c')
                   AND a.attnum > 0 AND NOT a.attisdropped
                   AND col_description(c.oid, a.attnum) IS NULL
                 ORDER BY 1),
          '{}'::text[], 'every column of every apikey table, view and composite type has a comment');
SELECT isnt(obj_description(s.regproc::regprocedure, 'pg_proc'), NULL, format('apikey.%s has a comment', s.fn))
  FROM sig s ORDER BY s.fn;

------------------------------------------------------------------------
-- Roles
------------------------------------------------------------------------
SELECT has_role(r, format('role %s exists', r))
  FROM unnest(ARRAY['apikey_admin', 'apikey_manager', 'apikey_verifier']::name[]) r ORDER BY r;
SELECT is((SELECT rolcanlogin FROM pg_roles WHERE rolname = r), false, format('role %s cannot log in', r))
  FROM unnest(ARRAY['apikey_admin', 'apikey_manager', 'apikey_verifier']::name[]) r ORDER BY r;
SELECT is((SELECT ARRAY[rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls]
             FROM pg_roles WHERE rolname = r),
          ARRAY[false, false, false, false, false],
          format('role %s has no superuser, createrole, createdb, replication or bypassrls', r))
  FROM unnest(ARRAY['apikey_admin', 'apikey_manager', 'apikey_verifier']::name[]) r ORDER BY r;

------------------------------------------------------------------------
-- Privileges: PUBLIC gets nothing
------------------------------------------------------------------------
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.pronamespace = 'apikey'::regnamespace
                   AND has_function_privilege('public', p.oid, 'EXECUTE') ORDER BY 1),
          '{}'::text[], 'PUBLIC has EXECUTE on no apikey function');
SELECT function_privs_are('apikey', fn, args, 'public', '{}'::name[], format('PUBLIC has no privilege on apikey.%s', fn))
  FROM sig ORDER BY fn;
SELECT table_privs_are('apikey', 'keys', 'public', '{}'::name[], 'PUBLIC has no privilege on apikey.keys');
SELECT is(ARRAY(SELECT c.oid::regclass::text || ':' || pr FROM pg_class c
                 CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) pr
                 WHERE c.relnamespace = 'apikey'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
                   AND (has_table_privilege('public', c.oid, pr)
                        OR (pr IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
                            AND has_any_column_privilege('public', c.oid, pr)))
                 ORDER BY 1),
          '{}'::text[], 'PUBLIC has no table or column privilege on any relation in apikey');
SELECT schema_privs_are('apikey', 'public', '{}'::name[], 'PUBLIC has no privilege on schema apikey');

------------------------------------------------------------------------
-- Privileges: apikey_verifier
------------------------------------------------------------------------
SELECT function_privs_are('apikey', 'apikey_verify', (SELECT args FROM sig WHERE fn = 'apikey_verify'),
                          'apikey_verifier', ARRAY['EXECUTE']::name[], 'apikey_verifier has EXECUTE on apikey_verify');
SELECT function_privs_are('apikey', 'apikey_create', (SELECT args FROM sig WHERE fn = 'apikey_create'),
                          'apikey_verifier', '{}'::name[], 'apikey_verifier has no privilege on apikey_create');
SELECT function_privs_are('apikey', 'apikey_rotate', (SELECT args FROM sig WHERE fn = 'apikey_rotate'),
                          'apikey_verifier', '{}'::name[], 'apikey_verifier has no privilege on apikey_rotate');
SELECT ok(has_function_privilege('apikey_verifier', 'apikey.apikey_verify(text, text[], text, inet)', 'EXECUTE'),
          'has_function_privilege(apikey_verifier, apikey_verify, EXECUTE)');
SELECT ok(NOT has_function_privilege('apikey_verifier', (SELECT regproc FROM sig WHERE fn = 'apikey_create'), 'EXECUTE'),
          'NOT has_function_privilege(apikey_verifier, apikey_create, EXECUTE)');
SELECT ok(NOT has_function_privilege('apikey_verifier', (SELECT regproc FROM sig WHERE fn = 'apikey_rotate'), 'EXECUTE'),
          'NOT has_function_privilege(apikey_verifier, apikey_rotate, EXECUTE)');
SELECT table_privs_are('apikey', 'keys', 'apikey_verifier', '{}'::name[], 'apikey_verifier has no privilege on apikey.keys');
SELECT ok(NOT has_table_privilege('apikey_verifier', 'apikey.keys', 'SELECT')
          AND NOT has_any_column_privilege('apikey_verifier', 'apikey.keys', 'SELECT'),
          'apikey_verifier cannot SELECT apikey.keys, not even one column');
SELECT is(ARRAY(SELECT c.oid::regclass::text || ':' || pr FROM pg_class c
                 CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) pr
                 WHERE c.relnamespace = 'apikey'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
                   AND (has_table_privilege('apikey_verifier', c.oid, pr)
                        OR (pr IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
                            AND has_any_column_privilege('apikey_verifier', c.oid, pr)))
                 ORDER BY 1),
          '{}'::text[], 'apikey_verifier has no table access at all in schema apikey');
SELECT schema_privs_are('apikey', 'apikey_verifier', ARRAY['USAGE']::name[],
                        'apikey_verifier has USAGE (only) on schema apikey');

------------------------------------------------------------------------
-- Privileges: apikey_manager and apikey_admin may call all three
------------------------------------------------------------------------
SELECT function_privs_are('apikey', s.fn, s.args, r, ARRAY['EXECUTE']::name[], format('%s has EXECUTE on %s', r, s.fn))
  FROM sig s CROSS JOIN unnest(ARRAY['apikey_manager', 'apikey_admin']::name[]) r
 ORDER BY r, s.fn;
SELECT schema_privs_are('apikey', r, ARRAY['USAGE']::name[], format('%s has USAGE (only) on schema apikey', r))
  FROM unnest(ARRAY['apikey_admin', 'apikey_manager']::name[]) r ORDER BY r;

-- the secret's hash is readable by no role but superusers
SELECT is(ARRAY(SELECT r || ':' || a.attname
                  FROM unnest(ARRAY['apikey_admin', 'apikey_manager', 'apikey_verifier']::name[]) r
                 CROSS JOIN pg_attribute a
                 WHERE a.attrelid = 'apikey.keys'::regclass AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.atttypid = 'bytea'::regtype
                   AND has_column_privilege(r, 'apikey.keys'::regclass, a.attnum, 'SELECT')
                 ORDER BY 1),
          '{}'::text[], 'no apikey role can read a hash column of apikey.keys');

SELECT * FROM finish();
ROLLBACK;
