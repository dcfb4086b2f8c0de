-- hostile.sql: every callable against hostile input: NULL in every
-- position, empty, 1 MB and 100 MB strings, huge and multi-dimensional
-- arrays, arrays with NULLs, Unicode look-alikes, one-character changes
-- and truncations of a valid key, odd intervals and timestamps.  Each call
-- gets a verification code or a clear standard SQLSTATE: never XX000
-- (internal error), a crash or a partial write; no changed key is VALID.
--
-- Needs: CREATE EXTENSION pgtap, apikey; run as a superuser.
BEGIN;
SELECT plan(18);

-- pg_temp.outcome(sql): 'ok' or the SQLSTATE the statement raised
CREATE FUNCTION pg_temp.outcome(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE sql;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
$$;
CREATE TEMP TABLE big AS SELECT repeat('x', 1024 * 1024) AS mb, repeat('y', 100 * 1024 * 1024) AS hmb;
SELECT key_id AS id, key AS k FROM apikey.apikey_create('pt hostile', '{jobs:read}') \gset
CREATE TEMP TABLE calls (what text, sql text);

-- apikey_create: NULL in each position, then hostile values
INSERT INTO calls SELECT 'create null arg ' || i,
	format('SELECT * FROM apikey.apikey_create(%s)',
		   (SELECT string_agg(CASE WHEN j = i THEN 'NULL' ELSE v END, ', ' ORDER BY j)
			  FROM unnest(ARRAY[$$'n'$$, $$'{}'::text[]$$, $$now() + interval '1 day'$$, $$'ak'$$, $$'o'$$,
							   $$'{r}'::text[]$$, $$'{}'::jsonb$$, 'NULL::int', 'NULL::interval',
							   $$'{10.0.0.0/8}'::cidr[]$$, 'NULL::name']) WITH ORDINALITY AS a(v, j)))
  FROM generate_series(1, 11) i;
INSERT INTO calls VALUES
	('create empty name', $$SELECT * FROM apikey.apikey_create('', '{}')$$),
	('create 1 MB name', $$SELECT * FROM apikey.apikey_create((SELECT mb FROM big), '{}')$$),
	('create 100 MB name', $$SELECT * FROM apikey.apikey_create((SELECT hmb FROM big), '{}')$$),
	('create 100 MB owner', $$SELECT * FROM apikey.apikey_create('n', '{}', owner => (SELECT hmb FROM big))$$),
	('create 100 MB prefix', $$SELECT * FROM apikey.apikey_create('n', '{}', prefix => (SELECT hmb FROM big))$$),
	('create 1 MB scope', $$SELECT * FROM apikey.apikey_create('n', ARRAY[(SELECT mb FROM big)])$$),
	('create 1M scopes', $$SELECT * FROM apikey.apikey_create('n', array_fill('a'::text, ARRAY[1000000]))$$),
	('create 2-D scopes', $$SELECT * FROM apikey.apikey_create('n', '{{a},{b}}')$$),
	('create scopes with NULL', $$SELECT * FROM apikey.apikey_create('n', ARRAY['a', NULL])$$),
	('create Cyrillic prefix', $$SELECT * FROM apikey.apikey_create('n', '{}', prefix => 'аk')$$),
	('create prefix with NUL-like escape', $$SELECT * FROM apikey.apikey_create('n', '{}', prefix => E'a\\x01k')$$),
	('create expires infinity', $$SELECT * FROM apikey.apikey_create('n', '{}', expires_at => 'infinity')$$),
	('create expires -infinity', $$SELECT * FROM apikey.apikey_create('n', '{}', expires_at => '-infinity')$$),
	('create expires far', $$SELECT * FROM apikey.apikey_create('n', '{}', expires_at => '294276-12-31')$$),
	('create rate limit max int', $$SELECT * FROM apikey.apikey_create('n', '{}', rate_limit => 2147483647, rate_window => '1 s')$$),
	('create rate window negative', $$SELECT * FROM apikey.apikey_create('n', '{}', rate_limit => 1, rate_window => '-1 s')$$),
	('create rate window months', $$SELECT * FROM apikey.apikey_create('n', '{}', rate_limit => 1, rate_window => '1000000 years')$$),
	('create 1M resources', $$SELECT * FROM apikey.apikey_create('n', '{}', resources => array_fill('r'::text, ARRAY[1000000]))$$),
	('create 1 MB resource', $$SELECT * FROM apikey.apikey_create('n', '{}', resources => ARRAY[(SELECT mb FROM big)])$$),
	('create 2-D cidrs', $$SELECT * FROM apikey.apikey_create('n', '{}', allowed_cidrs => '{{10.0.0.0/8},{10.0.0.0/8}}')$$),
	('create meta 1 MB', $$SELECT * FROM apikey.apikey_create('n', '{}', meta => jsonb_build_object('x', (SELECT mb FROM big)))$$),
	('create meta array', $$SELECT * FROM apikey.apikey_create('n', '{}', meta => '[1]')$$),
	('create empty db_role', $$SELECT * FROM apikey.apikey_create('n', '{}', db_role => '')$$),
	('create db_role pg_monitor', $$SELECT * FROM apikey.apikey_create('n', '{}', db_role => 'pg_read_all_data')$$);

-- apikey_verify: hostile arguments (codes, or 22004/22023 for the caller's errors)
INSERT INTO calls VALUES
	('verify NULL key', $$SELECT * FROM apikey.apikey_verify(NULL)$$),
	('verify NULL scopes', format($$SELECT * FROM apikey.apikey_verify(%L, NULL)$$, :'k')),
	('verify 1 MB key', $$SELECT * FROM apikey.apikey_verify((SELECT mb FROM big))$$),
	('verify 100 MB key', $$SELECT * FROM apikey.apikey_verify((SELECT hmb FROM big))$$),
	('verify 10M required scopes', format($$SELECT * FROM apikey.apikey_verify(%L, array_fill('a'::text, ARRAY[10000000]))$$, :'k')),
	('verify 3-D scopes', format($$SELECT * FROM apikey.apikey_verify(%L, '{{{a}}}')$$, :'k')),
	('verify scope NULL element', format($$SELECT * FROM apikey.apikey_verify(%L, ARRAY[NULL]::text[])$$, :'k')),
	('verify 1 MB scope', format($$SELECT * FROM apikey.apikey_verify(%L, ARRAY[(SELECT mb FROM big)])$$, :'k')),
	('verify 100 MB resource', format($$SELECT * FROM apikey.apikey_verify(%L, '{}', (SELECT hmb FROM big))$$, :'k')),
	('verify odd client', format($$SELECT * FROM apikey.apikey_verify(%L, '{}', NULL, '::ffff:0.0.0.0/0')$$, :'k')),
	-- rotate: odd ids and intervals
	('rotate NULL id', $$SELECT apikey.apikey_rotate(NULL)$$),
	('rotate NULL grace', format($$SELECT apikey.apikey_rotate(%s, NULL)$$, :id)),
	('rotate negative id', $$SELECT apikey.apikey_rotate(-1)$$),
	('rotate max id', $$SELECT apikey.apikey_rotate(9223372036854775807)$$),
	('rotate grace 1000 years', format($$SELECT apikey.apikey_rotate(%s, '1000 years')$$, :id)),
	('rotate grace negative', format($$SELECT apikey.apikey_rotate(%s, '-1 day')$$, :id)),
	('rotate grace months minus days', format($$SELECT apikey.apikey_rotate(%s, '120000 mons -3599993 days')$$, :id)),
	('rotate grace max', format($$SELECT apikey.apikey_rotate(%s, '178000000 years')$$, :id)),
	-- the helpers and the CHECK functions
	('has_scope NULL', $$SELECT apikey.has_scope(NULL)$$),
	('has_scope empty', $$SELECT apikey.has_scope('')$$),
	('has_scope 100 MB', $$SELECT apikey.has_scope((SELECT hmb FROM big))$$),
	('name_valid 100 MB', $$SELECT apikey.name_valid((SELECT hmb FROM big))$$),
	('scopes_valid 10M', $$SELECT apikey.scopes_valid(array_fill('a'::text, ARRAY[10000000]))$$),
	('resources_valid 10M', $$SELECT apikey.resources_valid(array_fill('a'::text, ARRAY[10000000]))$$),
	('hash_prefix empty', $$SELECT apikey.hash_prefix('')$$),
	-- the hook with hostile request settings
	('hook 100 MB headers', $$SELECT set_config('request.headers', json_build_object('x-api-key', (SELECT hmb FROM big))::text, true), apikey.postgrest_pre_request()$$),
	('hook deep JSON', $$SELECT set_config('request.headers', repeat('[', 100000), true), apikey.postgrest_pre_request()$$),
	('hook headers not JSON', $$SELECT set_config('request.headers', E'\\x01\\x02', true), apikey.postgrest_pre_request()$$),
	('hook claims array', $$SELECT set_config('request.headers', '{}', true), set_config('request.jwt.claims', '[1,2]', true), apikey.postgrest_pre_request()$$),
	('hook path 100 MB', $$SELECT set_config('apikey.postgrest_scopes', 'path', true), set_config('request.method', 'GET', true), set_config('request.path', '/' || (SELECT mb FROM big), true), set_config('request.headers', '{"x-api-key": "ak_x"}', true), apikey.postgrest_pre_request()$$);

CREATE TEMP TABLE outcomes AS
SELECT what, pg_temp.outcome(sql) AS got FROM calls;
SELECT count(*) AS keys_before FROM apikey.keys \gset

SELECT is_empty($$SELECT what, got FROM outcomes WHERE got = 'XX000' OR got LIKE '58%' OR got LIKE 'F0%'$$,
	'no call raises an internal error');
SELECT is_empty($$SELECT what, got FROM outcomes
	 WHERE got NOT IN ('ok', '22004', '22023', '22P02', '22007', '22008', '22015', '54000', '54001', '23514',
					   '42501', '42704', '55000', 'P0002', 'PGRST', '2201X', '22003')$$,
	'every call answers or raises a standard SQLSTATE for bad input');
SELECT is((SELECT string_agg(substr(what, 17), ',' ORDER BY substr(what, 17)::int) FROM outcomes
			 WHERE what LIKE 'create null arg%' AND got = 'ok'), '3,4,5,6,8,9,10,11',
	'NULL is accepted exactly where it means something (expiry, prefix, owner, resources, limits, cidrs, db_role)');
SELECT is((SELECT got FROM outcomes WHERE what = 'verify NULL key'), 'ok', 'a NULL key is a code (MALFORMED), not an error');
SELECT is((SELECT got FROM outcomes WHERE what = 'verify 100 MB key'), 'ok', 'so is a 100 MB key');
SELECT is((SELECT got FROM outcomes WHERE what = 'rotate grace months minus days'), '22023', 'a grace that compares small but ends late is refused');

-- no partial write: failed creates left no key behind
SELECT is((SELECT count(*)::int FROM apikey.keys WHERE name = 'n'),
	(SELECT count(*)::int FROM outcomes WHERE what LIKE 'create%' AND got = 'ok'),
	'every failed create left nothing behind');

-- a valid key changed in any one character, or truncated, never verifies
SELECT key AS k2 FROM apikey.apikey_create('pt hostile 2', '{}', prefix => 'dbaudit_live') \gset
CREATE TEMP TABLE changed AS
SELECT overlay(:'k2' placing c from i for 1) AS key
  FROM generate_series(1, length(:'k2')) i,
       unnest(string_to_array('0 9 A Z a z _ - é а', ' ')) c
 WHERE substr(:'k2', i, 1) <> c;
SELECT is((SELECT count(*)::int FROM changed, apikey.apikey_verify(key) v WHERE v.valid), 0,
	'no one-character change of a valid key verifies');
SELECT is((SELECT count(*)::int FROM changed, apikey.apikey_verify(key) v WHERE v.code NOT IN ('MALFORMED', 'NOT_FOUND')), 0,
	'every one is MALFORMED or NOT_FOUND');
SELECT is((SELECT count(*)::int FROM generate_series(0, length(:'k2') - 1) n,
				  apikey.apikey_verify(left(:'k2', n)) v WHERE v.code <> 'MALFORMED'), 0,
	'every truncation is MALFORMED');
SELECT is((SELECT count(*)::int FROM apikey.apikey_verify(:'k2' || ' ') v WHERE v.valid)
		+ (SELECT count(*)::int FROM apikey.apikey_verify(upper(:'k2')) v WHERE v.valid)
		+ (SELECT count(*)::int FROM apikey.apikey_verify(translate(:'k2', 'ao', 'ао')) v WHERE v.valid), 0,
	'nor a trailing space, an upper-cased copy or Cyrillic look-alikes');
SELECT is((SELECT code FROM apikey.apikey_verify(:'k2')), 'VALID', 'the key itself still verifies');

-- a table a superuser altered: verification never crashes on any row the
-- table can hold; a row or a layout it cannot read is refused with a
-- clear error (each case in a subtransaction, undone afterwards)
SELECT key_id AS hid, key AS hk FROM apikey.apikey_create('pt altered', '{jobs:read}') \gset
SET apikey.cache_size = 0;
SAVEPOINT altered;
ALTER TABLE apikey.keys ALTER COLUMN meta DROP NOT NULL;
UPDATE apikey.keys SET meta = NULL WHERE id = :hid;
SELECT throws_ok(format('SELECT * FROM apikey.apikey_verify(%L)', :'hk'), '23502',
	format('apikey.keys row %s has a null meta', :'hid'),
	'a NULL meta (NOT NULL dropped by a superuser) is refused with 23502, no crash');
SELECT is(pg_temp.outcome(format('SELECT * FROM apikey.apikey_verify(%L)', :'k2')), 'ok',
	'and the other keys still verify');
ROLLBACK TO SAVEPOINT altered;
ALTER TABLE apikey.keys ALTER COLUMN name DROP NOT NULL;
UPDATE apikey.keys SET name = NULL WHERE id = :hid;
SELECT throws_ok(format('SELECT * FROM apikey.apikey_verify(%L)', :'hk'), '23502',
	format('apikey.keys row %s has a null name', :'hid'), 'a NULL name likewise');
ROLLBACK TO SAVEPOINT altered;
ALTER TABLE apikey.keys RENAME COLUMN meta TO meta_old;
ALTER TABLE apikey.keys ADD COLUMN meta integer;
SELECT throws_ok(format('SELECT * FROM apikey.apikey_verify(%L)', :'hk'), '42P16',
	'column "meta" of apikey.keys has type integer, not jsonb',
	'a meta column of another type (RENAME, then ADD COLUMN) is refused with 42P16, no crash');
ROLLBACK TO SAVEPOINT altered;
ALTER TABLE apikey.keys RENAME COLUMN name TO name_old;
SELECT throws_ok(format('SELECT * FROM apikey.apikey_verify(%L)', :'hk'), '55000',
	'column "name" of apikey.keys is missing', 'a renamed name column is refused with 55000');
ROLLBACK TO SAVEPOINT altered;
SELECT is((SELECT code FROM apikey.apikey_verify(:'hk')), 'VALID', 'undone, the key verifies again');
RESET apikey.cache_size;

SELECT * FROM finish();
ROLLBACK;
