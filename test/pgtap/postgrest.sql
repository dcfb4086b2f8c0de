-- postgrest.sql: properties of the PostgREST hook and the identity helpers
-- (SPEC "PostgREST"): how they are declared, who may change the hook's
-- settings, has_scope() agreeing with apikey_verify on every pair of a
-- scope table, and row-level security through current_owner() keeping
-- tenants apart.  The exact responses are in sql/postgrest.sql; whole
-- PostgREST transactions in test/postgrest.
--
-- Needs: CREATE EXTENSION pgtap, apikey; run as a superuser.
BEGIN;
SELECT plan(31);
-- load the library, so its settings are defined (identity_forgery.sh shows
-- what happens to values set before it loads)
SELECT apikey.current_key_id();

-- pg_temp.explain_lines(q): the plan of q, one line per row
CREATE FUNCTION pg_temp.explain_lines(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	l text;
BEGIN
	FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		RETURN NEXT l;
	END LOOP;
END
$$;

-- pg_temp.hook(key): the request PostgREST would send, then the hook.  The
-- whole file is one transaction and the hook runs once per transaction: a
-- superuser may RESET the identity (never set it) before the next request.
CREATE FUNCTION pg_temp.hook(key text) RETURNS void LANGUAGE sql AS $$
	RESET apikey.key_id;
	RESET apikey.owner;
	RESET apikey.scopes;
	SELECT set_config('request.method', 'GET', true),
		   set_config('request.path', '/things', true),
		   set_config('request.jwt.claims', '{"role":"anon"}', true),
		   set_config('request.headers', jsonb_build_object('x-api-key', key)::text, true);
	SELECT apikey.postgrest_pre_request();
$$;

------------------------------------------------------------------------
-- declarations (9)
------------------------------------------------------------------------
SELECT function_returns('apikey', 'postgrest_pre_request', ARRAY[]::name[], 'void');
SELECT isnt_definer('apikey', 'postgrest_pre_request', ARRAY[]::name[],
	'the hook is not SECURITY DEFINER (SET ROLE to a db_role must stay possible)');
SELECT volatility_is('apikey', 'postgrest_pre_request', ARRAY[]::name[], 'volatile');
SELECT is(ARRAY(SELECT p.proname || ' ' || p.provolatile::text || p.proparallel::text || p.prosecdef::int
				  FROM pg_proc p WHERE p.pronamespace = 'apikey'::regnamespace
				   AND p.proname IN ('current_key_id', 'current_owner', 'has_scope') ORDER BY 1),
	ARRAY['current_key_id ss0', 'current_owner ss0', 'has_scope ss0'],
	'helpers are STABLE, PARALLEL SAFE (workers get the identity), not SECURITY DEFINER');
SELECT function_returns('apikey', 'current_key_id', ARRAY[]::name[], 'bigint');
SELECT function_returns('apikey', 'current_owner', ARRAY[]::name[], 'text');
SELECT function_returns('apikey', 'has_scope', ARRAY['text'], 'boolean');
SELECT is_strict('apikey', 'has_scope', ARRAY['text'], 'has_scope is STRICT (NULL scope: NULL, not granted)');
SELECT is(pg_get_function_arguments('apikey.has_scope'::regproc), 'scope text', 'has_scope(scope text)');

------------------------------------------------------------------------
-- settings: who may set what (4)
------------------------------------------------------------------------
SELECT results_eq($$SELECT name, context, setting FROM pg_settings WHERE name LIKE 'apikey.%' ORDER BY name$$,
	$$VALUES ('apikey.allow_drop'::text, 'superuser'::text, 'off'::text),
			 ('apikey.cache_size', 'superuser', '1024'),
			 ('apikey.client_addr_header', 'superuser', ''),
			 ('apikey.debug_now', 'superuser', ''),
			 ('apikey.default_prefix', 'user', 'ak'),
			 ('apikey.flush_interval', 'sighup', '1000'),
			 ('apikey.header', 'superuser', 'x-api-key'),
			 ('apikey.key_id', 'superuser', ''),
			 ('apikey.log_verifications', 'superuser', 'failures'),
			 ('apikey.owner', 'superuser', ''),
			 ('apikey.postgrest_costs', 'superuser', ''),
			 ('apikey.postgrest_errors', 'superuser', 'pgrst'),
			 ('apikey.postgrest_scopes', 'superuser', 'off'),
			 ('apikey.refund_on_abort', 'superuser', 'on'),
			 ('apikey.require_key', 'superuser', 'on'),
			 ('apikey.scopes', 'superuser', ''),
			 ('apikey.usage_retention', 'sighup', '129600')$$,
	'every apikey setting of a server without preload: the identity and the hook''s settings superuser-only, with their defaults');
SELECT is((SELECT array_agg(enumvals ORDER BY name) FROM pg_settings WHERE name IN ('apikey.postgrest_errors', 'apikey.postgrest_scopes'))::text,
	'{{pgrst,plain},{off,path}}', 'the enum settings offer pgrst|plain and off|path');
CREATE ROLE pt_pgrst_plain LOGIN;
SET LOCAL ROLE pt_pgrst_plain;
SELECT throws_ok($$SET apikey.require_key = off$$, '42501', NULL, 'an ordinary role cannot turn require_key off');
SELECT throws_ok($$SELECT set_config('apikey.postgrest_scopes', 'off', true)$$, '42501', NULL,
	'nor turn path scopes off by set_config');
RESET ROLE;

------------------------------------------------------------------------
-- has_scope() agrees with apikey_verify (1 + 1)
------------------------------------------------------------------------
CREATE TEMP TABLE pairs (granted text[], required text);
INSERT INTO pairs VALUES
	('{jobs:read}', 'jobs:read'), ('{jobs:read}', 'jobs:write'), ('{jobs:write}', 'jobs:read'),
	('{write:databases}', 'read:databases'), ('{read:databases}', 'write:databases'),
	('{jobs:*}', 'jobs:read'), ('{jobs:*}', 'jobs'), ('{*}', 'anything:at:all'), ('{*:read}', 'jobs:read'),
	('{admin}', 'jobs:read'), ('{}', 'jobs:read'), ('{jobs:read,rpc:whoami}', 'rpc:whoami'),
	('{jobs:read:own}', 'jobs:read'), ('{jobs}', 'jobs:read'), ('{write}', 'read'), ('{read}', 'write');
CREATE TEMP TABLE pair_keys AS
	SELECT p.granted, p.required, k.key
	  FROM pairs p, LATERAL apikey.apikey_create('pt pgrst pair', p.granted) k;
CREATE FUNCTION pg_temp.has_scope_with(key text, scope text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_temp.hook(key);
	RETURN apikey.has_scope(scope);
END
$$;
SELECT is_empty($$
	SELECT granted, required FROM pair_keys
	 WHERE pg_temp.has_scope_with(key, required)
		   IS DISTINCT FROM ((apikey.apikey_verify(key, ARRAY[required])).code = 'VALID')
$$, 'for every pair of the table, has_scope(required) = apikey_verify(key, {required}) is VALID');
SELECT is((SELECT count(*) FILTER (WHERE pg_temp.has_scope_with(key, required))::int FROM pair_keys), 8,
	'and the table has both outcomes (8 granted of 16)');

------------------------------------------------------------------------
-- row-level security through current_owner() (8)
------------------------------------------------------------------------
CREATE ROLE pt_pgrst_anon NOLOGIN IN ROLE apikey_verifier;
CREATE TABLE public.pt_things (id int, tenant text DEFAULT apikey.current_owner(), v text);
ALTER TABLE public.pt_things ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON public.pt_things USING (tenant = apikey.current_owner())
	WITH CHECK (tenant = apikey.current_owner());
GRANT SELECT, INSERT, UPDATE, DELETE ON public.pt_things TO pt_pgrst_anon;
INSERT INTO public.pt_things VALUES (1, 'a', 'a1'), (2, 'a', 'a2'), (3, 'b', 'b1');
SELECT key AS key_a FROM apikey.apikey_create('pt tenant a', '{}', owner => 'a') \gset
SELECT key AS key_b FROM apikey.apikey_create('pt tenant b', '{}', owner => 'b') \gset

SELECT pg_temp.hook(:'key_a');
SET LOCAL ROLE pt_pgrst_anon;
SELECT results_eq($$SELECT id FROM public.pt_things ORDER BY id$$, ARRAY[1, 2], 'tenant a reads only its rows');
SELECT is((SELECT count(*)::int FROM public.pt_things WHERE tenant = 'b'), 0, 'not even when asking for b''s');
SELECT lives_ok($$UPDATE public.pt_things SET v = 'x' WHERE id = 3$$, 'an UPDATE of b''s row runs');
SELECT throws_ok($$INSERT INTO public.pt_things VALUES (4, 'b', 'forged')$$, '42501', NULL,
	'inserting a row for tenant b is refused');
SELECT lives_ok($$INSERT INTO public.pt_things (id, v) VALUES (5, 'a3')$$, 'inserting its own row works (tenant defaults to the key''s owner)');
RESET ROLE;
SELECT pg_temp.hook(:'key_b');
SET LOCAL ROLE pt_pgrst_anon;
SELECT results_eq($$SELECT id || ':' || v FROM public.pt_things ORDER BY id$$, ARRAY['3:b1'],
	'tenant b sees its row untouched by a''s UPDATE, and none of a''s');
WITH d AS (DELETE FROM public.pt_things WHERE id IN (1, 2, 5) RETURNING 1)
SELECT is(count(*)::int, 0, 'tenant b deletes none of a''s rows') FROM d;
RESET ROLE;
SELECT is((SELECT string_agg(id || tenant, ',' ORDER BY id) FROM public.pt_things), '1a,2a,3b,5a',
	'the table holds exactly what the tenants were allowed to write');

------------------------------------------------------------------------
-- no key, no rows (2)
------------------------------------------------------------------------
RESET apikey.key_id;
SELECT lives_ok($$SELECT set_config('request.jwt.claims', '{"role":"anon","sub":"u"}', true),
	set_config('request.headers', '{}', true), apikey.postgrest_pre_request()$$,
	'a JWT request without a key passes the hook');
SET LOCAL ROLE pt_pgrst_anon;
SELECT is((SELECT count(*)::int FROM public.pt_things), 0, 'and sees no tenant''s rows (current_owner() is NULL)');
RESET ROLE;

------------------------------------------------------------------------
-- parallel workers see the identity (3)
------------------------------------------------------------------------
CREATE TABLE public.pt_many AS
	SELECT g, CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END AS tenant FROM generate_series(1, 20000) g;
ANALYZE public.pt_many;
SELECT pg_temp.hook(:'key_a');
-- force_parallel_mode is called debug_parallel_query from PostgreSQL 16 on
SELECT CASE WHEN current_setting('server_version_num')::int >= 160000
			THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END AS parallel_guc \gset
SET LOCAL :parallel_guc = on;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SELECT ok((SELECT count(*) FROM pg_temp.explain_lines(
	'SELECT count(*) FROM public.pt_many WHERE tenant = apikey.current_owner()') AS e(line)
	WHERE e.line ~ 'Gather') > 0, 'a scan filtered by current_owner() runs in parallel workers');
SELECT is((SELECT count(*)::int FROM public.pt_many WHERE tenant = apikey.current_owner()), 10000,
	'and the workers see the key''s owner');
SELECT is((SELECT count(*)::int FROM public.pt_many WHERE tenant = current_setting('apikey.owner', true)
	AND apikey.has_scope('things:read') IS NOT NULL), 10000,
	'current_setting() too');
RESET :parallel_guc;

------------------------------------------------------------------------
-- a db_role is used exactly (3)
------------------------------------------------------------------------
CREATE ROLE pt_pgrst_ro NOLOGIN IN ROLE apikey_verifier;
GRANT SELECT ON public.pt_things TO pt_pgrst_ro;
SELECT key AS key_ro FROM apikey.apikey_create('pt ro', '{*}', owner => 'a', db_role => 'pt_pgrst_ro') \gset
SELECT pg_temp.hook(:'key_ro');
SELECT is(current_user::text, 'pt_pgrst_ro', 'the hook switched to the key''s db_role');
SELECT is((SELECT count(*)::int FROM public.pt_things), 3, 'which reads tenant a''s rows');
SELECT throws_ok($$INSERT INTO public.pt_things (id, v) VALUES (6, 'no')$$, '42501', NULL,
	'and has no INSERT privilege, whatever scopes the key holds');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
