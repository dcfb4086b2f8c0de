-- audit.sql: the audit trail (SPEC "Audit").
--
-- Every change to apikey.keys writes exactly one apikey.audit row with the
-- right action (create, rotate, enable, disable, update, delete), key,
-- key_owner_role, actors (session_user and the role acting, which is the
-- caller inside apikey_create/apikey_rotate) and detail:
--   create  {"new": row}            rotate  {"old_hint", "new_hint", "grace_until"}
--   update/enable/disable {"old": {changed columns}, "new": {changed columns}}
--   delete  {"old": row}
-- where "row" is the key without its hashes.  A change that changes nothing,
-- or only the usage bookkeeping, writes nothing; a change rolled back (to a
-- savepoint, or by a failing statement) leaves nothing.  Audit rows cannot
-- be changed or removed by anyone but a superuser, and no detail ever holds
-- a key or a hash.
--
-- Rate limits are not updated here: without shared_preload_libraries they
-- are refused, which another suite covers.
--
-- Needs: CREATE EXTENSION pgtap, pgcrypto, apikey; run as a superuser.
BEGIN;
SELECT plan(59);

SET LOCAL application_name = 'pt-audit';

CREATE ROLE pt_aud_admin NOLOGIN IN ROLE apikey_admin;
CREATE ROLE pt_aud_mgr NOLOGIN IN ROLE apikey_manager;
CREATE ROLE pt_aud_mgr2 NOLOGIN IN ROLE apikey_manager;
-- may bypass RLS and holds UPDATE/DELETE/TRUNCATE on the audit: only the
-- append-only trigger stands in its way
CREATE ROLE pt_aud_writer NOLOGIN BYPASSRLS;
GRANT USAGE ON SCHEMA apikey TO pt_aud_writer;
GRANT SELECT, UPDATE, DELETE, TRUNCATE ON apikey.audit TO pt_aud_writer;

-- every key minted here (raw), for the leak checks
CREATE TEMP TABLE pt_k (
	label	text PRIMARY KEY,
	key_id	bigint NOT NULL,
	key		text NOT NULL
) ON COMMIT DROP;
GRANT SELECT, INSERT ON pt_k TO PUBLIC;

-- snapshots of keys (without hashes), taken by the superuser
CREATE TEMP TABLE pt_state (
	label	text PRIMARY KEY,
	r		jsonb NOT NULL
) ON COMMIT DROP;

-- audit rows up to this id are "old"
CREATE TEMP TABLE pt_mark ON COMMIT DROP AS
SELECT COALESCE(max(id), 0) AS id, COALESCE(max(id), 0) AS first FROM apikey.audit;
GRANT SELECT ON pt_mark TO PUBLIC;

CREATE FUNCTION pg_temp.kid(label text) RETURNS bigint
LANGUAGE sql STABLE
AS $$ SELECT key_id FROM pg_temp.pt_k WHERE label = $1 $$;

-- the key row as the audit shows it: without its hashes (superuser only)
CREATE FUNCTION pg_temp.row_of(id bigint) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
	SELECT pg_catalog.to_jsonb(k) - ARRAY['secret_hash', 'grace_secret_hash']
	  FROM apikey.keys k WHERE k.id = $1
$$;

-- audit rows written since the mark
CREATE FUNCTION pg_temp.fresh() RETURNS SETOF apikey.audit
LANGUAGE sql STABLE
AS $$ SELECT * FROM apikey.audit WHERE id > (SELECT id FROM pg_temp.pt_mark) ORDER BY id $$;

-- exactly one fresh audit row, with these values
CREATE FUNCTION pg_temp.audit_is(act text, label text, owner text, actor text,
								 detail jsonb, descr text)
RETURNS text
LANGUAGE sql
AS $$
	SELECT results_eq(
		'SELECT action, key_id, key_owner_role::text COLLATE "default",
		        actor_current_user::text COLLATE "default",
		        actor_session_user::text COLLATE "default", acting_key_id, detail
		   FROM pg_temp.fresh()',
		format('VALUES (%L, %s::bigint, %L, %L, %L, NULL::bigint, %L::jsonb)',
			   act, pg_temp.kid(label), owner, actor, session_user, detail),
		descr)
$$;

-- {"old": {col: old}, "new": {col: new}} for the columns that differ
CREATE FUNCTION pg_temp.diff(o jsonb, n jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $$
	SELECT jsonb_build_object(
		'old', COALESCE(jsonb_object_agg(k, o -> k), '{}'),
		'new', COALESCE(jsonb_object_agg(k, n -> k), '{}'))
	  FROM jsonb_object_keys(n) AS k
	 WHERE (o -> k) IS DISTINCT FROM (n -> k)
$$;

------------------------------------------------------------------------
-- create (5)
------------------------------------------------------------------------
-- the owner a manager gives its key is registered to it (1.2)
INSERT INTO apikey.owners (owner, managed_by) VALUES ('org-1', 'pt_aud_mgr'), ('org-2', 'pt_aud_mgr');
-- (their own audit rows, action plan, are sql/plans.sql's)
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);
SET ROLE pt_aud_mgr;
INSERT INTO pg_temp.pt_k
SELECT 'k1', key_id, key
  FROM apikey.apikey_create('pt audit k1', ARRAY['jobs:read'], owner => 'org-1',
                            meta => '{"tier": "gold"}');
RESET ROLE;

SELECT pg_temp.audit_is('create', 'k1', 'pt_aud_mgr', 'pt_aud_mgr',
	jsonb_build_object('new', pg_temp.row_of(pg_temp.kid('k1'))),
	'create by a manager: one row, action create, the manager as actor and owner, detail {"new": row without hashes}');
SELECT is((SELECT detail -> 'new' ->> 'name' FROM pg_temp.fresh()), 'pt audit k1',
	'create: detail->new has the name');
SELECT ok((SELECT detail::text NOT LIKE '%secret_hash%' FROM pg_temp.fresh()),
	'create: no secret_hash or grace_secret_hash key anywhere in detail');
SELECT results_eq(
	$$SELECT at, application_name, client_addr FROM pg_temp.fresh()$$,
	$$SELECT now(), 'pt-audit'::text, inet_client_addr()$$,
	'create: at is the transaction time, application_name and client_addr are the session''s');
SELECT is((SELECT count(*) FROM apikey.keys WHERE id = pg_temp.kid('k1')), 1::bigint,
	'the key exists');
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);

------------------------------------------------------------------------
-- rotate without and with a grace period (4)
------------------------------------------------------------------------
INSERT INTO pg_temp.pt_state VALUES ('k1 before rotate', pg_temp.row_of(pg_temp.kid('k1')));
SET ROLE pt_aud_mgr;
INSERT INTO pg_temp.pt_k SELECT 'k1 rot1', pg_temp.kid('k1'), apikey.apikey_rotate(pg_temp.kid('k1'));
RESET ROLE;
SELECT pg_temp.audit_is('rotate', 'k1', 'pt_aud_mgr', 'pt_aud_mgr',
	jsonb_build_object('old_hint', (SELECT r ->> 'hint' FROM pg_temp.pt_state WHERE label = 'k1 before rotate'),
	                   'new_hint', pg_temp.row_of(pg_temp.kid('k1')) ->> 'hint',
	                   'grace_until', NULL),
	'rotate by a manager: one row, action rotate, detail {old_hint, new_hint, grace_until: null}');
SELECT isnt((SELECT detail ->> 'old_hint' FROM pg_temp.fresh()), (SELECT detail ->> 'new_hint' FROM pg_temp.fresh()),
	'rotate: old_hint and new_hint differ');
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);

INSERT INTO pg_temp.pt_state VALUES ('k1 before rotate 2', pg_temp.row_of(pg_temp.kid('k1')));
SET ROLE pt_aud_mgr;
INSERT INTO pg_temp.pt_k SELECT 'k1 rot2', pg_temp.kid('k1'), apikey.apikey_rotate(pg_temp.kid('k1'), '2 hours');
RESET ROLE;
SELECT pg_temp.audit_is('rotate', 'k1', 'pt_aud_mgr', 'pt_aud_mgr',
	jsonb_build_object('old_hint', (SELECT r ->> 'hint' FROM pg_temp.pt_state WHERE label = 'k1 before rotate 2'),
	                   'new_hint', pg_temp.row_of(pg_temp.kid('k1')) ->> 'hint',
	                   'grace_until', now() + interval '2 hours'),
	'rotate with a grace: detail {old_hint, new_hint, grace_until}');
SELECT is((SELECT (detail ->> 'grace_until')::timestamptz FROM pg_temp.fresh()), now() + interval '2 hours',
	'rotate with a grace: grace_until is now() + grace');
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);

------------------------------------------------------------------------
-- disable, enable, and updates of each column (1 each: 9)
------------------------------------------------------------------------
SET ROLE pt_aud_mgr;
UPDATE apikey.keys SET enabled = false WHERE id = pg_temp.kid('k1');
RESET ROLE;
SELECT pg_temp.audit_is('disable', 'k1', 'pt_aud_mgr', 'pt_aud_mgr',
	'{"old": {"enabled": true}, "new": {"enabled": false}}',
	'disable: one row, action disable, detail old/new enabled');
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);

SET ROLE pt_aud_mgr;
UPDATE apikey.keys SET enabled = true WHERE id = pg_temp.kid('k1');
RESET ROLE;
SELECT pg_temp.audit_is('enable', 'k1', 'pt_aud_mgr', 'pt_aud_mgr',
	'{"old": {"enabled": false}, "new": {"enabled": true}}',
	'enable: one row, action enable, detail old/new enabled');
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);

SET ROLE pt_aud_mgr;
UPDATE apikey.keys SET scopes = ARRAY['jobs:read', 'jobs:write'] WHERE id = pg_temp.kid('k1');
RESET ROLE;
SELECT pg_temp.audit_is('update', 'k1', 'pt_aud_mgr', 'pt_aud_mgr',
	'{"old": {"scopes": ["jobs:read"]}, "new": {"scopes": ["jobs:read", "jobs:write"]}}',
	'update scopes: one row, detail old/new scopes only');
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);

SET ROLE pt_aud_mgr;
UPDATE apikey.keys SET resources = ARRAY['db-1', 'db-2'] WHERE id = pg_temp.kid('k1');
RESET ROLE;
SELECT pg_temp.audit_is('update', 'k1', 'pt_aud_mgr', 'pt_aud_mgr',
	'{"old": {"resources": null}, "new": {"resources": ["db-1", "db-2"]}}',
	'update resources: one row, detail old/new resources only');
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);

SET ROLE pt_aud_mgr;
UPDATE apikey.keys SET expires_at = '2100-01-01 00:00:00+00' WHERE id = pg_temp.kid('k1');
RESET ROLE;
SELECT pg_temp.audit_is('update', 'k1', 'pt_aud_mgr', 'pt_aud_mgr',
	jsonb_build_object('old', jsonb_build_object('expires_at', NULL),
	                   'new', jsonb_build_object('expires_at', '2100-01-01 00:00:00+00'::timestamptz)),
	'update expires_at: one row, detail old/new expires_at only');
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);

SET ROLE pt_aud_mgr;
UPDATE apikey.keys SET name = 'pt audit k1 renamed' WHERE id = pg_temp.kid('k1');
RESET ROLE;
SELECT pg_temp.audit_is('update', 'k1', 'pt_aud_mgr', 'pt_aud_mgr',
	'{"old": {"name": "pt audit k1"}, "new": {"name": "pt audit k1 renamed"}}',
	'update name: one row, detail old/new name only');
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);

SET ROLE pt_aud_mgr;
UPDATE apikey.keys SET meta = '{"tier": "silver", "n": 2}' WHERE id = pg_temp.kid('k1');
RESET ROLE;
SELECT pg_temp.audit_is('update', 'k1', 'pt_aud_mgr', 'pt_aud_mgr',
	'{"old": {"meta": {"tier": "gold"}}, "new": {"meta": {"tier": "silver", "n": 2}}}',
	'update meta: one row, detail old/new meta only');
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);

SET ROLE pt_aud_mgr;
UPDATE apikey.keys SET allowed_cidrs = ARRAY['10.0.0.0/8']::cidr[], owner = 'org-2' WHERE id = pg_temp.kid('k1');
RESET ROLE;
SELECT pg_temp.audit_is('update', 'k1', 'pt_aud_mgr', 'pt_aud_mgr',
	'{"old": {"allowed_cidrs": null, "owner": "org-1"}, "new": {"allowed_cidrs": ["10.0.0.0/8"], "owner": "org-2"}}',
	'update allowed_cidrs and owner: one row, detail old/new of both');
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);

-- several columns at once, one of them back to NULL
INSERT INTO pg_temp.pt_state VALUES ('k1 before multi', pg_temp.row_of(pg_temp.kid('k1')));
SET ROLE pt_aud_mgr;
UPDATE apikey.keys SET scopes = ARRAY['jobs:*'], name = 'pt audit k1', expires_at = NULL,
                       meta = meta, enabled = enabled
 WHERE id = pg_temp.kid('k1');
RESET ROLE;
SELECT pg_temp.audit_is('update', 'k1', 'pt_aud_mgr', 'pt_aud_mgr',
	pg_temp.diff((SELECT r FROM pg_temp.pt_state WHERE label = 'k1 before multi'), pg_temp.row_of(pg_temp.kid('k1'))),
	'update of several columns: one row, detail holds exactly the changed columns');
SELECT is((SELECT detail FROM pg_temp.fresh()),
	jsonb_build_object('old', jsonb_build_object('name', 'pt audit k1 renamed', 'scopes', ARRAY['jobs:read', 'jobs:write'],
	                                             'expires_at', '2100-01-01 00:00:00+00'::timestamptz),
	                   'new', jsonb_build_object('name', 'pt audit k1', 'scopes', ARRAY['jobs:*'], 'expires_at', NULL)),
	'update of several columns: name, scopes and expires_at, not the unchanged meta and enabled');
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);

------------------------------------------------------------------------
-- changes that change nothing write nothing (3)
------------------------------------------------------------------------
SET ROLE pt_aud_mgr;
UPDATE apikey.keys SET name = name WHERE id = pg_temp.kid('k1');
RESET ROLE;
SELECT is_empty('SELECT id, action, detail FROM pg_temp.fresh()',
	'UPDATE SET name = name writes no audit row');

SET ROLE pt_aud_mgr;
UPDATE apikey.keys SET scopes = ARRAY['jobs:*'], enabled = true, meta = '{"n": 2, "tier": "silver"}'
 WHERE id = pg_temp.kid('k1');
RESET ROLE;
SELECT is_empty('SELECT id, action, detail FROM pg_temp.fresh()',
	'an UPDATE setting every column to its current value writes no audit row');

-- usage bookkeeping (what the background worker writes) is not audited
INSERT INTO apikey.usage (key_id, last_used_at, use_count) VALUES (pg_temp.kid('k1'), now(), 5)
	ON CONFLICT (key_id) DO UPDATE SET use_count = apikey.usage.use_count + 5;
SELECT is_empty('SELECT id, action, detail FROM pg_temp.fresh()',
	'writing apikey.usage (as the worker does) writes no audit row');

------------------------------------------------------------------------
-- the admin acting on a manager's key (4)
------------------------------------------------------------------------
SET ROLE pt_aud_admin;
UPDATE apikey.keys SET enabled = false WHERE id = pg_temp.kid('k1');
RESET ROLE;
SELECT pg_temp.audit_is('disable', 'k1', 'pt_aud_mgr', 'pt_aud_admin',
	'{"old": {"enabled": true}, "new": {"enabled": false}}',
	'the admin disables a manager''s key: actor is the admin, key_owner_role the manager');
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);

INSERT INTO pg_temp.pt_state VALUES ('k1 before admin rotate', pg_temp.row_of(pg_temp.kid('k1')));
SET ROLE pt_aud_admin;
INSERT INTO pg_temp.pt_k SELECT 'k1 rot3', pg_temp.kid('k1'), apikey.apikey_rotate(pg_temp.kid('k1'));
RESET ROLE;
SELECT pg_temp.audit_is('rotate', 'k1', 'pt_aud_mgr', 'pt_aud_admin',
	jsonb_build_object('old_hint', (SELECT r ->> 'hint' FROM pg_temp.pt_state WHERE label = 'k1 before admin rotate'),
	                   'new_hint', pg_temp.row_of(pg_temp.kid('k1')) ->> 'hint',
	                   'grace_until', NULL),
	'the admin rotates a manager''s key: actor is the admin (the caller of apikey_rotate), not the table owner');
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);

SET ROLE pt_aud_admin;
UPDATE apikey.keys SET owner_role = 'pt_aud_mgr2' WHERE id = pg_temp.kid('k1');
RESET ROLE;
SELECT pg_temp.audit_is('update', 'k1', 'pt_aud_mgr2', 'pt_aud_admin',
	'{"old": {"owner_role": "pt_aud_mgr"}, "new": {"owner_role": "pt_aud_mgr2"}}',
	'the admin moves a key to another manager: update of owner_role, key_owner_role is the new owner');
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);

SET ROLE pt_aud_admin;
INSERT INTO pg_temp.pt_k SELECT 'adm', key_id, key FROM apikey.apikey_create('pt audit adm', '{}');
RESET ROLE;
SELECT pg_temp.audit_is('create', 'adm', 'pt_aud_admin', 'pt_aud_admin',
	jsonb_build_object('new', pg_temp.row_of(pg_temp.kid('adm'))),
	'the admin creates a key: actor and owner are the admin');
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);

------------------------------------------------------------------------
-- delete (3)
------------------------------------------------------------------------
INSERT INTO pg_temp.pt_state VALUES ('k1 last', pg_temp.row_of(pg_temp.kid('k1')));
SET ROLE pt_aud_mgr2;
DELETE FROM apikey.keys WHERE id = pg_temp.kid('k1');
RESET ROLE;
SELECT pg_temp.audit_is('delete', 'k1', 'pt_aud_mgr2', 'pt_aud_mgr2',
	jsonb_build_object('old', (SELECT r FROM pg_temp.pt_state WHERE label = 'k1 last')),
	'delete by a manager: one row, action delete, detail {"old": last state without hashes}');
SELECT ok((SELECT detail::text NOT LIKE '%secret_hash%' FROM pg_temp.fresh()),
	'delete: no secret_hash or grace_secret_hash key anywhere in detail');
SELECT is_empty(format('SELECT id FROM apikey.keys WHERE id = %s', pg_temp.kid('k1')),
	'the key is gone');
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);

------------------------------------------------------------------------
-- acting_key_id (3)
------------------------------------------------------------------------
SELECT is_empty(format('SELECT id, acting_key_id FROM apikey.audit WHERE id > %s AND acting_key_id IS NOT NULL',
	(SELECT first FROM pg_temp.pt_mark)),
	'acting_key_id is NULL on every row written outside a request');
-- The request context (apikey.key_id, set only by postgrest_pre_request)
-- cannot be set from SQL, not even by a superuser.  sql/postgrest.sql shows
-- acting_key_id naming the key of a request that changes a key.
SELECT throws_ok($$SELECT set_config('apikey.key_id', '42', true)$$, '55P02',
	'parameter "apikey.key_id" can only be set by apikey.postgrest_pre_request()',
	'set_config(''apikey.key_id'') is refused: only the hook sets it');
SELECT throws_ok($$SET LOCAL apikey.key_id = '42'$$, '55P02',
	'parameter "apikey.key_id" can only be set by apikey.postgrest_pre_request()',
	'SET LOCAL apikey.key_id is refused: only the hook sets it');

------------------------------------------------------------------------
-- rolled back changes leave nothing (7)
------------------------------------------------------------------------
SET ROLE pt_aud_mgr;
INSERT INTO pg_temp.pt_k SELECT 'k2', key_id, key FROM apikey.apikey_create('pt audit k2', ARRAY['jobs:read']);
RESET ROLE;
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);

SET ROLE pt_aud_mgr;
SAVEPOINT pt_sp;
UPDATE apikey.keys SET name = 'pt audit k2 rolled back', enabled = false WHERE id = pg_temp.kid('k2');
CREATE TEMP TABLE pt_lost ON COMMIT DROP AS
SELECT apikey.apikey_rotate(pg_temp.kid('k2')) AS key
 UNION ALL
SELECT key FROM apikey.apikey_create('pt audit rolled back', '{}');
DELETE FROM apikey.keys WHERE id = pg_temp.kid('k2');
ROLLBACK TO SAVEPOINT pt_sp;
RESET ROLE;
SELECT is_empty('SELECT id, action, key_id FROM pg_temp.fresh()',
	'update, rotate, create and delete rolled back to a savepoint leave no audit row');
SELECT results_eq(format('SELECT name, enabled FROM apikey.keys WHERE id = %s', pg_temp.kid('k2')),
	$$VALUES ('pt audit k2'::text, true)$$,
	'and the key is as before');

SET ROLE pt_aud_mgr;
SELECT throws_ok(format($$UPDATE apikey.keys SET name = ' ' WHERE id = %s$$, pg_temp.kid('k2')), '23514', NULL,
	'a failing UPDATE raises');
SELECT throws_ok(format('SELECT apikey.apikey_rotate(%s)', pg_temp.kid('adm')), 'P0002', NULL,
	'rotating someone else''s key raises P0002 (after switching to the table owner)');
SELECT is(current_user::text, 'pt_aud_mgr', 'the manager is itself again after the failed rotation');
RESET ROLE;
SELECT is_empty('SELECT id, action, key_id FROM pg_temp.fresh()',
	'failed statements leave no audit row');

-- the next change is still attributed to the manager, not the table owner
SET ROLE pt_aud_mgr;
UPDATE apikey.keys SET name = 'pt audit k2 after' WHERE id = pg_temp.kid('k2');
RESET ROLE;
SELECT pg_temp.audit_is('update', 'k2', 'pt_aud_mgr', 'pt_aud_mgr',
	'{"old": {"name": "pt audit k2"}, "new": {"name": "pt audit k2 after"}}',
	'after failures and rollbacks the acting role is the manager again');
UPDATE pg_temp.pt_mark SET id = (SELECT max(id) FROM apikey.audit);

------------------------------------------------------------------------
-- append-only (14)
------------------------------------------------------------------------
SET ROLE pt_aud_admin;
SELECT throws_ok($$UPDATE apikey.audit SET detail = '{}'$$, '42501', NULL, 'the admin cannot UPDATE audit rows');
SELECT throws_ok('DELETE FROM apikey.audit', '42501', NULL, 'the admin cannot DELETE audit rows');
SELECT throws_ok('TRUNCATE apikey.audit', '42501', NULL, 'the admin cannot TRUNCATE the audit');
SELECT throws_ok($$INSERT INTO apikey.audit (action, key_id, actor_current_user) VALUES ('delete', 1, 'someone')$$,
	'42501', NULL, 'the admin cannot forge audit rows');
SET ROLE pt_aud_mgr;
SELECT throws_ok($$UPDATE apikey.audit SET detail = '{}'$$, '42501', NULL, 'a manager cannot UPDATE audit rows');
SELECT throws_ok('DELETE FROM apikey.audit', '42501', NULL, 'a manager cannot DELETE audit rows');
SELECT throws_ok('TRUNCATE apikey.audit', '42501', NULL, 'a manager cannot TRUNCATE the audit');
SELECT throws_ok($$INSERT INTO apikey.audit (action, key_id, actor_current_user) VALUES ('delete', 1, 'someone')$$,
	'42501', NULL, 'a manager cannot forge audit rows');
-- a role holding the privileges (and BYPASSRLS) is still stopped by the trigger
SET ROLE pt_aud_writer;
SELECT throws_ok($$UPDATE apikey.audit SET detail = '{}'$$, '42501', 'apikey.audit is append-only',
	'a non-superuser granted UPDATE is refused by the append-only trigger');
SELECT throws_ok('DELETE FROM apikey.audit', '42501', 'apikey.audit is append-only',
	'a non-superuser granted DELETE is refused by the append-only trigger');
SELECT throws_ok('TRUNCATE apikey.audit', '42501', 'apikey.audit is append-only',
	'a non-superuser granted TRUNCATE is refused by the append-only trigger');
RESET ROLE;
SELECT is((SELECT count(*) FROM apikey.audit WHERE id > (SELECT first FROM pg_temp.pt_mark) AND detail = '{}'),
	0::bigint, 'no audit row was changed by the attempts');

------------------------------------------------------------------------
-- no key and no hash in any detail (3), checked before the superuser
-- part below removes rows
------------------------------------------------------------------------
SELECT is_empty($$
	SELECT a.id, k.label FROM apikey.audit a, pg_temp.pt_k k
	 WHERE strpos(a.detail::text, k.key) > 0
	    OR strpos(a.detail::text, substr(k.key, length(split_part(k.key, '_', 1)) + 2)) > 0
$$, 'no audit detail contains any key made here, nor its secret part');
SELECT is_empty($$
	WITH h(hash) AS (
		SELECT sha256(convert_to(key, 'UTF8')) FROM pg_temp.pt_k
		UNION SELECT secret_hash FROM apikey.keys
		UNION SELECT grace_secret_hash FROM apikey.keys WHERE grace_secret_hash IS NOT NULL)
	SELECT a.id FROM apikey.audit a, h
	 WHERE strpos(a.detail::text, encode(h.hash, 'hex')) > 0
	    OR strpos(a.detail::text, encode(h.hash, 'base64')) > 0
$$, 'no audit detail contains the hex or base64 of any hash');
SELECT is_empty($$SELECT id FROM apikey.audit WHERE detail::text ~ 'secret_hash|grace_secret_hash'$$,
	'no audit detail has a hash column');

------------------------------------------------------------------------
-- a superuser may change and remove audit rows (3)
------------------------------------------------------------------------
SELECT lives_ok(format($$UPDATE apikey.audit SET application_name = 'pt-audit edited' WHERE id = %s$$,
	(SELECT max(id) FROM apikey.audit)), 'a superuser can UPDATE an audit row');
SELECT lives_ok(format('DELETE FROM apikey.audit WHERE id = %s', (SELECT max(id) FROM apikey.audit)),
	'a superuser can DELETE an audit row');
SELECT lives_ok('TRUNCATE apikey.audit', 'a superuser can TRUNCATE the audit');
SELECT is((SELECT count(*) FROM apikey.audit), 0::bigint, 'after the superuser''s TRUNCATE the audit is empty');

-- roles that bypass table privileges and RLS still cannot write the log
CREATE ROLE pt_aud_allwriter NOLOGIN BYPASSRLS IN ROLE pg_write_all_data;
GRANT USAGE ON SCHEMA apikey TO pt_aud_allwriter;
SET ROLE pt_aud_allwriter;
SELECT throws_ok($$INSERT INTO apikey.audit (action, key_id, actor_current_user) VALUES ('create', 1, 'forged')$$,
	'42501', 'only the extension writes apikey.audit',
	'pg_write_all_data + BYPASSRLS cannot forge an audit row');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
