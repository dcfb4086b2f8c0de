-- roles.sql: behaviour as real roles (SPEC "Privileges and row-level
-- security").  Roles are created inside the transaction and switched to with
-- SET ROLE (the runner is a superuser); everything is rolled back.
--
--   apikey_verifier: can verify, cannot create, rotate or touch apikey.keys
--   apikey_manager:  creates keys owned by itself, rotates only its own;
--                    another manager's key is reported exactly like a
--                    missing one (P0002 "does not exist")
--   apikey_admin:    sees and rotates anybody's key
--   (both see apikey.keys through row-level security; neither reads the hash)
--   no grant:        cannot even verify
--
-- Values cross role switches in transaction-local custom settings (tap.*),
-- read with current_setting(..., true) so that a failed step fails its
-- assertions instead of aborting the file.
--
-- Needs: CREATE EXTENSION pgtap, pgcrypto, apikey; run as a superuser.
BEGIN;
SELECT plan(50);

SET LOCAL apikey.default_prefix TO DEFAULT;

CREATE ROLE apikey_tap_verifier NOLOGIN;
GRANT apikey_verifier TO apikey_tap_verifier;
CREATE ROLE apikey_tap_mgr1 NOLOGIN;
GRANT apikey_manager TO apikey_tap_mgr1;
CREATE ROLE apikey_tap_mgr2 NOLOGIN;
GRANT apikey_manager TO apikey_tap_mgr2;
CREATE ROLE apikey_tap_admin NOLOGIN;
GRANT apikey_admin TO apikey_tap_admin;
CREATE ROLE apikey_tap_nobody NOLOGIN;

-- "SQLSTATE: message" of the error sql raises, or NULL; with every
-- occurrence of id replaced by N, so errors about different ids compare
CREATE FUNCTION pg_temp.err_of(sql text, id text) RETURNS text
LANGUAGE plpgsql
AS $$
BEGIN
	EXECUTE sql;
	RETURN NULL;
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || replace(SQLERRM, id, 'N');
END
$$;

-- a key created by the superuser, for the verifier to check
DO $$
DECLARE
	r record;
BEGIN
	SELECT * INTO r FROM apikey.apikey_create('roles: superuser key', ARRAY['jobs:read']);
	PERFORM set_config('tap.su_id', r.key_id::text, true);
	PERFORM set_config('tap.su_key', r.key, true);
END
$$;

------------------------------------------------------------------------
-- apikey_verifier
------------------------------------------------------------------------
SET ROLE apikey_tap_verifier;
SELECT is(current_user, 'apikey_tap_verifier'::name, 'now acting as a member of apikey_verifier');
SELECT is((apikey.apikey_verify(current_setting('tap.su_key', true))).code, 'VALID',
          'verifier: apikey_verify of a good key is VALID');
SELECT is((apikey.apikey_verify(current_setting('tap.su_key', true))).key_id,
          current_setting('tap.su_id', true)::bigint, 'verifier: verification returns the key id');
SELECT is((apikey.apikey_verify(current_setting('tap.su_key', true), ARRAY['jobs:read'])).code, 'VALID',
          'verifier: apikey_verify with a granted scope is VALID');
SELECT is((apikey.apikey_verify('ak_nonsense')).code, 'MALFORMED',
          'verifier: a bad key is MALFORMED, not an error');
SELECT throws_ok($$SELECT * FROM apikey.apikey_create('verifier key', '{}')$$, '42501', NULL,
                 'verifier: apikey_create raises 42501');
SELECT throws_ok(format('SELECT apikey.apikey_rotate(%s)', current_setting('tap.su_id', true)), '42501', NULL,
                 'verifier: apikey_rotate raises 42501');
SELECT throws_ok('SELECT * FROM apikey.keys', '42501', NULL, 'verifier: SELECT on apikey.keys raises 42501');
SELECT throws_ok('SELECT id, name FROM apikey.keys', '42501', NULL,
                 'verifier: SELECT of harmless columns of apikey.keys raises 42501');
SELECT throws_ok(format('UPDATE apikey.keys SET enabled = false WHERE id = %s', current_setting('tap.su_id', true)),
                 '42501', NULL, 'verifier: UPDATE on apikey.keys raises 42501');
SELECT throws_ok('DELETE FROM apikey.keys', '42501', NULL, 'verifier: DELETE on apikey.keys raises 42501');
RESET ROLE;

------------------------------------------------------------------------
-- apikey_manager: creates keys owned by itself
------------------------------------------------------------------------
SET ROLE apikey_tap_mgr1;
SELECT lives_ok($$
	DO $do$
	DECLARE
		r record;
	BEGIN
		SELECT * INTO r FROM apikey.apikey_create('roles: manager 1 key', ARRAY['jobs:read']);
		PERFORM set_config('tap.m1_id', r.key_id::text, true);
		PERFORM set_config('tap.m1_key', r.key, true);
	END
	$do$ $$, 'manager 1: apikey_create works');
RESET ROLE;

SET ROLE apikey_tap_mgr2;
SELECT lives_ok($$
	DO $do$
	DECLARE
		r record;
	BEGIN
		SELECT * INTO r FROM apikey.apikey_create('roles: manager 2 key', '{}', prefix => 'dbm');
		PERFORM set_config('tap.m2_id', r.key_id::text, true);
		PERFORM set_config('tap.m2_key', r.key, true);
	END
	$do$ $$, 'manager 2: apikey_create works');
RESET ROLE;

SELECT is((SELECT owner_role FROM apikey.keys WHERE id = current_setting('tap.m1_id', true)::bigint),
          'apikey_tap_mgr1'::name, 'manager 1''s key: owner_role is manager 1');
SELECT is((SELECT created_by FROM apikey.keys WHERE id = current_setting('tap.m1_id', true)::bigint),
          'apikey_tap_mgr1'::name, 'manager 1''s key: created_by is manager 1');
SELECT is((SELECT owner_role FROM apikey.keys WHERE id = current_setting('tap.m2_id', true)::bigint),
          'apikey_tap_mgr2'::name, 'manager 2''s key: owner_role is manager 2');
SELECT is((SELECT created_by FROM apikey.keys WHERE id = current_setting('tap.m2_id', true)::bigint),
          'apikey_tap_mgr2'::name, 'manager 2''s key: created_by is manager 2');
SELECT is((apikey.apikey_verify(current_setting('tap.m1_key', true))).code, 'VALID',
          'manager 1''s key verifies VALID');

-- row-level security: a manager sees only its own keys, and no role but a
-- superuser reads the hash
SET ROLE apikey_tap_mgr1;
SELECT is(ARRAY(SELECT id FROM apikey.keys ORDER BY id), ARRAY[current_setting('tap.m1_id', true)::bigint],
          'manager 1 sees only its own key in apikey.keys');
SELECT throws_ok('SELECT secret_hash FROM apikey.keys', '42501', NULL,
                 'manager 1: reading secret_hash raises 42501');
RESET ROLE;

------------------------------------------------------------------------
-- apikey_manager: rotates its own key, not another manager's
------------------------------------------------------------------------
SET ROLE apikey_tap_mgr1;
SELECT lives_ok(format($$SELECT set_config('tap.m1_key2', apikey.apikey_rotate(%s), true)$$,
                       current_setting('tap.m1_id', true)),
                'manager 1: can rotate its own key');
SELECT throws_ok(format('SELECT apikey.apikey_rotate(%s)', current_setting('tap.m2_id', true)),
                 'P0002', NULL, 'manager 1: rotating manager 2''s key raises P0002');
RESET ROLE;

SELECT ok(current_setting('tap.m1_key2', true) ~ '^ak_[0-9A-Za-z]{38}$', 'manager 1: rotation returned a new ak_ key');
SELECT isnt(current_setting('tap.m1_key2', true), current_setting('tap.m1_key', true),
            'manager 1: the rotated key differs from the old one');
SELECT is((apikey.apikey_verify(current_setting('tap.m1_key2', true))).code, 'VALID',
          'manager 1: the rotated key verifies VALID');
SELECT is((apikey.apikey_verify(current_setting('tap.m1_key2', true))).key_id,
          current_setting('tap.m1_id', true)::bigint, 'manager 1: the rotated key keeps its id');

SET ROLE apikey_tap_mgr2;
SELECT throws_ok(format('SELECT apikey.apikey_rotate(%s)', current_setting('tap.m1_id', true)),
                 'P0002', NULL, 'manager 2: rotating manager 1''s key raises P0002');
SELECT throws_like(format('SELECT apikey.apikey_rotate(%s)', current_setting('tap.m1_id', true)),
                   '%does not exist%', 'manager 2: ... with a "does not exist" message');
SELECT throws_ok(format('SELECT apikey.apikey_rotate(%s, ''1 hour'')', current_setting('tap.m1_id', true)),
                 'P0002', NULL, 'manager 2: rotating manager 1''s key with a grace raises P0002 too');
SELECT throws_ok('SELECT apikey.apikey_rotate(9223372036854775807)', 'P0002', NULL,
                 'manager 2: rotating a missing key raises P0002');
SELECT is(pg_temp.err_of(format('SELECT apikey.apikey_rotate(%s)', current_setting('tap.m1_id', true)),
                         current_setting('tap.m1_id', true)),
          pg_temp.err_of('SELECT apikey.apikey_rotate(9223372036854775807)', '9223372036854775807'),
          'manager 2: another manager''s key is reported exactly like a missing key');
SELECT throws_ok(format('SELECT apikey.apikey_rotate(%s)', current_setting('tap.su_id', true)),
                 'P0002', NULL, 'manager 2: rotating the superuser''s key raises P0002');
SELECT lives_ok(format($$SELECT set_config('tap.m2_key2', apikey.apikey_rotate(%s), true)$$,
                       current_setting('tap.m2_id', true)),
                'manager 2: can rotate its own key');
RESET ROLE;

SELECT is((apikey.apikey_verify(current_setting('tap.m1_key2', true))).code, 'VALID',
          'manager 1''s key still verifies after manager 2''s failed attempts');
SELECT is((SELECT secret_hash FROM apikey.keys WHERE id = current_setting('tap.m1_id', true)::bigint),
          sha256(convert_to(current_setting('tap.m1_key2', true), 'UTF8')),
          'manager 1''s stored hash is unchanged by manager 2''s failed attempts');
SELECT ok(current_setting('tap.m2_key2', true) ~ '^dbm_[0-9A-Za-z]{38}$',
          'manager 2: the rotated key keeps its dbm prefix');

------------------------------------------------------------------------
-- apikey_admin: rotates anybody's key
------------------------------------------------------------------------
SET ROLE apikey_tap_admin;
SELECT lives_ok(format($$SELECT set_config('tap.m1_key3', apikey.apikey_rotate(%s), true)$$,
                       current_setting('tap.m1_id', true)),
                'admin: can rotate manager 1''s key');
SELECT lives_ok(format($$SELECT set_config('tap.m2_key3', apikey.apikey_rotate(%s, '1 hour'), true)$$,
                       current_setting('tap.m2_id', true)),
                'admin: can rotate manager 2''s key (with a grace)');
SELECT lives_ok(format($$SELECT set_config('tap.su_key2', apikey.apikey_rotate(%s), true)$$,
                       current_setting('tap.su_id', true)),
                'admin: can rotate the superuser''s key');
SELECT throws_ok('SELECT apikey.apikey_rotate(9223372036854775807)', 'P0002', NULL,
                 'admin: rotating a missing key raises P0002');
SELECT is((SELECT count(*) FROM apikey.keys
             WHERE id IN (current_setting('tap.m1_id', true)::bigint, current_setting('tap.m2_id', true)::bigint,
                          current_setting('tap.su_id', true)::bigint)),
          3::bigint, 'admin sees every key in apikey.keys');
SELECT throws_ok('SELECT secret_hash FROM apikey.keys', '42501', NULL,
                 'admin: reading secret_hash raises 42501');
RESET ROLE;

SELECT is((apikey.apikey_verify(current_setting('tap.m1_key3', true))).code, 'VALID',
          'admin-rotated manager 1 key verifies VALID');
SELECT is((apikey.apikey_verify(current_setting('tap.m2_key3', true))).code, 'VALID',
          'admin-rotated manager 2 key verifies VALID');
SELECT is((apikey.apikey_verify(current_setting('tap.su_key2', true))).code, 'VALID',
          'admin-rotated superuser key verifies VALID');
SELECT is((SELECT owner_role FROM apikey.keys WHERE id = current_setting('tap.m1_id', true)::bigint),
          'apikey_tap_mgr1'::name, 'admin rotation keeps the key''s owner_role');

------------------------------------------------------------------------
-- a role with no grants
------------------------------------------------------------------------
SET ROLE apikey_tap_nobody;
SELECT throws_ok(format('SELECT apikey.apikey_verify(%L)', current_setting('tap.m1_key3', true)), '42501', NULL,
                 'no grants: apikey_verify raises 42501');
SELECT throws_ok($$SELECT * FROM apikey.apikey_create('nobody key', '{}')$$, '42501', NULL,
                 'no grants: apikey_create raises 42501');
SELECT throws_ok(format('SELECT apikey.apikey_rotate(%s)', current_setting('tap.m1_id', true)), '42501', NULL,
                 'no grants: apikey_rotate raises 42501');
SELECT throws_ok('SELECT * FROM apikey.keys', '42501', NULL, 'no grants: SELECT on apikey.keys raises 42501');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
