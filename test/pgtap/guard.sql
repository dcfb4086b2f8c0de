-- guard.sql: what only the extension writes in apikey.keys stays out of
-- reach of plain SQL even for roles that bypass privileges
-- (pg_write_all_data): no forged key, no hidden second secret, no rewritten
-- identity; a superuser's change of a grace period is audited.
--
-- Needs: CREATE EXTENSION pgtap, apikey; run as a superuser.
BEGIN;
SELECT plan(31);

CREATE ROLE pt_guard_writer NOLOGIN IN ROLE pg_write_all_data, pg_read_all_data, apikey_admin;
SELECT key_id AS id FROM apikey.apikey_create('pt guard', '{jobs:read}') \gset
SELECT key_id AS other FROM apikey.apikey_create('pt guard other', '{jobs:read}') \gset

SET ROLE pt_guard_writer;
SELECT throws_ok($$INSERT INTO apikey.keys (name, prefix, hint, owner_role, scopes, secret_hash, db_role)
	VALUES ('forged', 'ak', 'ak_forg…ed00', 'postgres', '{*}',
	        '\x00000000000000000000000000000000000000000000000000000000000000aa'::bytea, 'postgres')$$,
	'42501', 'api keys are created only by apikey.apikey_create()',
	'a role with pg_write_all_data cannot INSERT a key');
SELECT throws_ok(format($$UPDATE apikey.keys SET grace_secret_hash = secret_hash, grace_until = now() + interval '10 years' WHERE id = %s$$, :other),
	'42501', 'column "grace_secret_hash" of apikey.keys changes only through apikey.apikey_rotate()',
	'nor plant a second secret with a grace period ten years out');
SELECT throws_ok(format($$UPDATE apikey.keys SET secret_hash = '\x00000000000000000000000000000000000000000000000000000000000000bb'::bytea WHERE id = %s$$, :other),
	'42501', 'column "secret_hash" of apikey.keys changes only through apikey.apikey_rotate()',
	'nor replace a key''s hash');
SELECT throws_ok(format($$UPDATE apikey.keys SET grace_until = now() + interval '1 year' WHERE id = %s$$, :other),
	'42501', NULL, 'nor stretch a grace period');
SELECT throws_ok(format($$UPDATE apikey.keys SET prefix = 'zz' WHERE id = %s$$, :other),
	'42501', 'column "prefix" of apikey.keys cannot be changed', 'nor change the prefix');
SELECT throws_ok(format($$UPDATE apikey.keys SET created_by = 'someone' WHERE id = %s$$, :other),
	'42501', 'column "created_by" of apikey.keys cannot be changed', 'nor who created the key');
SELECT throws_ok(format($$UPDATE apikey.keys SET hint = 'ak_xxxx…xxxx' WHERE id = %s$$, :other),
	'42501', NULL, 'nor its hint');
SELECT lives_ok(format($$UPDATE apikey.keys SET name = 'pt guard renamed' WHERE id = %s$$, :other),
	'it can still do what an admin may: rename a key');
RESET ROLE;

SELECT is((SELECT count(*)::int FROM apikey.keys WHERE name = 'forged' OR grace_secret_hash IS NOT NULL), 0,
	'nothing forged is there');
SELECT lives_ok(format('SELECT apikey.apikey_rotate(%s, %L)', :id, '1 hour'), 'apikey_rotate still sets a grace period');

-- a superuser may change a grace period by hand, and the audit says so
UPDATE apikey.keys SET grace_until = grace_until + interval '1 hour' WHERE id = :id;
SELECT is((SELECT action || ' ' || (detail -> 'new' ->> 'grace_secret') || ' ' || (detail::text ~ 'hash')::text
             FROM apikey.audit WHERE key_id = :id ORDER BY id DESC LIMIT 1),
	'update set false', 'a superuser''s change of a grace period is audited, without the hash');
UPDATE apikey.keys SET grace_until = NULL, grace_secret_hash = NULL WHERE id = :id;
SELECT is((SELECT detail -> 'old' ->> 'grace_secret' || '>' || (detail -> 'new' ->> 'grace_secret')
             FROM apikey.audit WHERE key_id = :id ORDER BY id DESC LIMIT 1),
	'set>none', 'and so is ending one');

-- the schema keeps its name and owner (an event trigger: with or without preload)
SELECT throws_ok('ALTER SCHEMA apikey RENAME TO apikey_old', '55000',
	'the schema of extension apikey cannot be renamed or given to another owner',
	'the schema of apikey cannot be renamed');
SELECT throws_ok('ALTER SCHEMA apikey OWNER TO pt_guard_writer', '55000', NULL,
	'nor given to another owner');
SELECT is(has_schema_privilege('pt_guard_writer', 'apikey', 'CREATE'), false, 'so nobody else may create objects in it');

-- no tenant-wide lock (the library is loaded in this session)
CREATE ROLE pt_guard_mgr NOLOGIN IN ROLE apikey_manager;
SET ROLE pt_guard_mgr;
SELECT throws_ok('LOCK TABLE apikey.keys IN ACCESS EXCLUSIVE MODE', '42501',
	'LOCK TABLE in a mode stronger than ROW EXCLUSIVE on keys is reserved to its owner and superusers',
	'a manager cannot take a lock that would stop every verification');
SELECT lives_ok('LOCK TABLE apikey.keys IN ROW EXCLUSIVE MODE', 'the lock its own UPDATEs take is allowed');
RESET ROLE;

-- the guards hold in replica mode too (data-only restores, replication workers)
SET LOCAL session_replication_role = replica;
SELECT throws_ok('DROP EXTENSION apikey', '2BP01', NULL, 'in replica mode DROP EXTENSION is still refused');
UPDATE apikey.keys SET name = 'pt guard in replica mode' WHERE id = :other;
SELECT is((SELECT detail -> 'new' ->> 'name' FROM apikey.audit WHERE key_id = :other ORDER BY id DESC LIMIT 1),
	'pt guard in replica mode', 'and a change is still audited');
SET LOCAL session_replication_role = origin;
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid IN ('apikey.keys'::regclass, 'apikey.audit'::regclass)
			 AND tgname IN ('keys_guard', 'keys_audit', 'keys_db_role_guard', 'audit_immutable', 'audit_no_truncate')
			 AND tgenabled = 'A'), 5, 'the guard and audit triggers fire ALWAYS');

-- the verified-key cache's invalidation: every statement that can change a
-- row, in every replication role, beyond the reach of non-owners
SELECT is((SELECT tgenabled::text || ' ' || (tgtype::int & 1 = 1) || ' ' || (tgtype::int & (8 | 16) = 8 | 16)
			   || ' ' || (tgtype::int & (4 | 32) = 0) || ' ' || (tgtype::int & 2 = 2)
			 FROM pg_trigger WHERE tgrelid = 'apikey.keys'::regclass AND tgname = 'keys_cache_invalidate'),
	'A true true true true', 'keys_cache_invalidate: ALWAYS, per row, on UPDATE and DELETE, not INSERT or TRUNCATE, BEFORE');
SELECT ok(NOT has_function_privilege('public', 'apikey.keys_cache_invalidate()', 'EXECUTE'),
	'PUBLIC cannot execute keys_cache_invalidate()');
SELECT throws_ok('SELECT apikey.keys_cache_invalidate()', '39P01', NULL,
	'keys_cache_invalidate() cannot be called outside a trigger');
SET ROLE pt_guard_writer;
SELECT throws_ok('ALTER TABLE apikey.keys DISABLE TRIGGER keys_cache_invalidate', '42501', NULL,
	'a role with apikey_admin and pg_write_all_data cannot disable the cache invalidation');
RESET ROLE;

-- losing every key takes a deliberate step
SELECT throws_ok('DROP EXTENSION apikey', '2BP01', NULL, 'DROP EXTENSION apikey is refused while keys exist');
SELECT throws_ok('DROP SCHEMA apikey CASCADE', '2BP01', NULL, 'so is DROP SCHEMA apikey CASCADE');
SELECT throws_ok(format('DROP OWNED BY %I CASCADE', (SELECT extowner::regrole::text FROM pg_extension WHERE extname = 'apikey')),
	'2BP01', NULL, 'and DROP OWNED BY the extension''s owner');
SELECT throws_ok('TRUNCATE apikey.keys', '2BP01', NULL, 'and TRUNCATE apikey.keys, even by a superuser');
CREATE SCHEMA pt_guard_other;
SELECT lives_ok('DROP SCHEMA pt_guard_other', 'other schemas drop as usual');
SET ROLE pt_guard_mgr;
SELECT throws_ok('SET apikey.allow_drop = on', '42501', NULL, 'only a superuser may allow it');
RESET ROLE;
SET LOCAL apikey.allow_drop = on;
SELECT lives_ok('DROP EXTENSION apikey', 'with apikey.allow_drop = on the extension drops (rolled back here)');

SELECT * FROM finish();
ROLLBACK;
