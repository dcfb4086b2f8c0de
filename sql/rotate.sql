\set VERBOSITY terse
SET client_min_messages = warning;
-- without shared_preload_libraries a backend's first verification warns
-- that nothing is tracked (sql/preload.sql tests that): take it here,
-- unshown, so this file's output is the same with and without preload
SET client_min_messages = error;
SELECT v.code AS first_verification FROM apikey.apikey_verify('') v;
SET client_min_messages = warning;
--
-- apikey_rotate: a new secret for the same key; the old one stops at once,
-- or after a grace period (at most 7 days, rolling, one old secret at most).
--
CREATE FUNCTION pg_temp.hint_of(k text, prefix text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT substr(k, 1, length(prefix) + 5) || chr(8230) || right(k, 4)
$$;
CREATE FUNCTION pg_temp.h(k text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT sha256(convert_to(k, 'UTF8')) $$;
-- code(key): the verification code of key from an allowed address
CREATE FUNCTION pg_temp.code(k text) RETURNS text
LANGUAGE sql AS $$ SELECT (apikey.apikey_verify(k, '{}', NULL, '10.0.0.1')).code $$;

SELECT key_id AS id, key AS k1
  FROM apikey.apikey_create(name => 'rotating', scopes => '{jobs:read,jobs:write}',
                            expires_at => '2999-06-01 00:00:00+00', prefix => 'rot',
                            owner => 'team-9', resources => '{proj_1}',
                            meta => '{"env": "prod"}',
                            allowed_cidrs => '{10.0.0.0/8}') \gset
-- what must survive a rotation
CREATE TEMP TABLE before AS
SELECT id, name, prefix, owner, owner_role, scopes, resources, allowed_cidrs, meta,
       enabled, expires_at, rate_limit, rate_window, created_at, created_by,
       db_role
  FROM apikey.keys WHERE id = :id;
SELECT rotated_at IS NULL AS never_rotated, hint = pg_temp.hint_of(:'k1', 'rot') AS hint_ok
  FROM apikey.keys WHERE id = :id;

--
-- rotation without grace: the old key is NOT_FOUND at once, in the same
-- transaction and after it
--
BEGIN;
SELECT apikey.apikey_rotate(:id) AS k2 \gset
SELECT :'k2' ~ '^rot_[0-9A-Za-z]{38}$' AS shape_ok,
       :'k2' <> :'k1' AS new_key_differs,
       left(:'k2', 4) = left(:'k1', 4) AS same_prefix,
       length(:'k2') AS key_length;
SELECT rotated_at = now() AS rotated_now,
       hint = pg_temp.hint_of(:'k2', 'rot') AS hint_is_new,
       hint <> pg_temp.hint_of(:'k1', 'rot') AS hint_changed,
       secret_hash = pg_temp.h(:'k2') AS hash_is_new,
       grace_secret_hash IS NULL AS no_grace_hash, grace_until IS NULL AS no_grace_until
  FROM apikey.keys WHERE id = :id;
SELECT 'old' AS which, v.code, v.key_id IS NULL AS no_identity FROM apikey.apikey_verify(:'k1') v
UNION ALL
SELECT 'new', v.code, v.key_id = :id FROM apikey.apikey_verify(:'k2', '{jobs:read}', 'proj_1', '10.0.0.1') v;
COMMIT;
SELECT pg_temp.code(:'k1') AS old_key, pg_temp.code(:'k2') AS new_key;
-- everything but the secret, hint and rotated_at is unchanged
SELECT (SELECT row(b.*)::text FROM before b) =
       (SELECT row(id, name, prefix, owner, owner_role, scopes, resources, allowed_cidrs,
                   meta, enabled, expires_at, rate_limit, rate_window, created_at,
                   created_by, db_role)::text
          FROM apikey.keys WHERE id = :id) AS identity_kept;
SELECT v.code, v.key_id = :id AS same_id, v.name, v.owner, v.scopes, v.resources, v.meta,
       v.expires_at = '2999-06-01 00:00:00+00' AS same_expiry
  FROM apikey.apikey_verify(:'k2', '{jobs:write}', 'proj_1', '10.9.9.9') v;
-- the raw keys are not stored
SELECT strpos(row_to_json(k)::text, substr(:'k2', 5, 32)) = 0 AS new_secret_not_in_row,
       strpos(row_to_json(k)::text, substr(:'k1', 5, 32)) = 0 AS old_secret_not_in_row
  FROM apikey.keys k WHERE id = :id;

--
-- rotation with a grace period: old and new both verify until grace_until
--
BEGIN;
SELECT apikey.apikey_rotate(:id, '1 hour') AS k3 \gset
SELECT grace_until = now() + interval '1 hour' AS grace_until_ok,
       grace_secret_hash = pg_temp.h(:'k2') AS grace_hash_is_old_key,
       secret_hash = pg_temp.h(:'k3') AS hash_is_new_key,
       hint = pg_temp.hint_of(:'k3', 'rot') AS hint_is_new,
       rotated_at = now() AS rotated_now
  FROM apikey.keys WHERE id = :id;
SELECT pg_temp.code(:'k1') AS k1, pg_temp.code(:'k2') AS k2, pg_temp.code(:'k3') AS k3;
COMMIT;
SELECT pg_temp.code(:'k1') AS k1, pg_temp.code(:'k2') AS k2, pg_temp.code(:'k3') AS k3;
-- the old key in its grace period is the same key: same identity, same checks
SELECT v.code, v.key_id = :id AS same_id, v.name, v.scopes
  FROM apikey.apikey_verify(:'k2', '{jobs:read}', 'proj_1', '10.0.0.1') v;
SELECT v.code FROM apikey.apikey_verify(:'k2', '{admin}') v;
SELECT v.code FROM apikey.apikey_verify(:'k2', '{}', 'proj_2') v;
SELECT v.code FROM apikey.apikey_verify(:'k2', '{}', NULL, '192.0.2.1') v;
UPDATE apikey.keys SET enabled = false WHERE id = :id;
SELECT pg_temp.code(:'k2') AS old_key, pg_temp.code(:'k3') AS new_key;
UPDATE apikey.keys SET enabled = true WHERE id = :id;

--
-- a second rotation with grace: the first old key is dropped, only the
-- latest old key is kept (two live secrets at most); grace_until restarts
--
BEGIN;
SELECT apikey.apikey_rotate(:id, '2 hours') AS k4 \gset
SELECT grace_until = now() + interval '2 hours' AS grace_until_restarted,
       grace_secret_hash = pg_temp.h(:'k3') AS grace_hash_is_k3
  FROM apikey.keys WHERE id = :id;
COMMIT;
SELECT pg_temp.code(:'k1') AS k1, pg_temp.code(:'k2') AS k2,
       pg_temp.code(:'k3') AS k3, pg_temp.code(:'k4') AS k4;

--
-- the grace period ends: at grace_until the old key is NOT_FOUND
--
BEGIN;
UPDATE apikey.keys SET grace_until = now() + interval '1 microsecond' WHERE id = :id;
SELECT 'grace_until = now() + 1us' AS grace, pg_temp.code(:'k3') AS old_key, pg_temp.code(:'k4') AS new_key;
UPDATE apikey.keys SET grace_until = now() WHERE id = :id;
SELECT 'grace_until = now()' AS grace, pg_temp.code(:'k3') AS old_key, pg_temp.code(:'k4') AS new_key;
COMMIT;
SELECT pg_temp.code(:'k3') AS old_key, pg_temp.code(:'k4') AS new_key;
UPDATE apikey.keys SET grace_until = now() - interval '1 second' WHERE id = :id;
SELECT pg_temp.code(:'k3') AS old_key, pg_temp.code(:'k4') AS new_key;

--
-- rotation with grace 0 clears any grace
--
SELECT apikey.apikey_rotate(:id, '1 day') AS k5 \gset
SELECT pg_temp.code(:'k4') AS k4, pg_temp.code(:'k5') AS k5;
SELECT apikey.apikey_rotate(:id, '0') AS k6 \gset
SELECT pg_temp.code(:'k4') AS k4, pg_temp.code(:'k5') AS k5, pg_temp.code(:'k6') AS k6;
SELECT grace_secret_hash IS NULL AS no_grace_hash, grace_until IS NULL AS no_grace_until
  FROM apikey.keys WHERE id = :id;
-- the default grace is 0
SELECT apikey.apikey_rotate(:id, '1 day') AS k7 \gset
SELECT apikey.apikey_rotate(key_id => :id) AS k8 \gset
SELECT pg_temp.code(:'k6') AS k6, pg_temp.code(:'k7') AS k7, pg_temp.code(:'k8') AS k8;
-- the longest grace is 7 days, however it is written
SELECT apikey.apikey_rotate(:id, '7 days') IS NOT NULL AS seven_days;
SELECT apikey.apikey_rotate(:id, '1 week') IS NOT NULL AS one_week;
SELECT apikey.apikey_rotate(:id, '168 hours') IS NOT NULL AS hours_168;
SELECT apikey.apikey_rotate(:id, '1 microsecond') IS NOT NULL AS one_microsecond;
-- every rotation mints a new key
CREATE TEMP TABLE rot AS
SELECT g, apikey.apikey_rotate(:id, '1 minute') AS k FROM generate_series(1, 10) g;
SELECT count(DISTINCT k) AS distinct_keys, bool_and(k ~ '^rot_[0-9A-Za-z]{38}$') AS shapes_ok
  FROM rot;
-- only the last two are live
SELECT g, pg_temp.code(k) AS code FROM rot ORDER BY g;
DROP TABLE rot;

--
-- bad arguments
--
SELECT apikey.apikey_rotate(:id, '8 days');
\echo :LAST_ERROR_SQLSTATE
SELECT apikey.apikey_rotate(:id, '7 days 1 second');
\echo :LAST_ERROR_SQLSTATE
SELECT apikey.apikey_rotate(:id, '1 mon');
\echo :LAST_ERROR_SQLSTATE
-- months and days that cancel out as an interval compare as a week, but the
-- grace would end in 2170 and 5495: the end of the grace is what is bounded
SELECT apikey.apikey_rotate(:id, interval '120000 months -3599993 days');
\echo :LAST_ERROR_SQLSTATE
SELECT apikey.apikey_rotate(:id, interval '2900000 months -86999993 days');
\echo :LAST_ERROR_SQLSTATE
SELECT apikey.apikey_rotate(:id, '-1 second');
\echo :LAST_ERROR_SQLSTATE
SELECT apikey.apikey_rotate(:id, '-1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT apikey.apikey_rotate(:id, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT apikey.apikey_rotate(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT apikey.apikey_rotate(NULL, '1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT apikey.apikey_rotate(-1);
\echo :LAST_ERROR_SQLSTATE
SELECT apikey.apikey_rotate(9223372036854775807, '1 hour');
\echo :LAST_ERROR_SQLSTATE
-- a deleted key cannot be rotated
SELECT key_id AS del_id FROM apikey.apikey_create('deleted', '{}') \gset
DELETE FROM apikey.keys WHERE id = :del_id;
\set VERBOSITY sqlstate
SELECT apikey.apikey_rotate(:del_id) IS NOT NULL AS rotated;
\set VERBOSITY terse
SELECT :'LAST_ERROR_MESSAGE' = format('api key %s does not exist', :del_id) AS message_ok;
-- someone else's key looks exactly like a missing one to a manager
CREATE ROLE regress_apikey_mgr IN ROLE apikey_manager;
SET ROLE regress_apikey_mgr;
\set VERBOSITY sqlstate
SELECT apikey.apikey_rotate(:id) IS NOT NULL AS rotated;
\set VERBOSITY terse
SELECT :'LAST_ERROR_MESSAGE' = format('api key %s does not exist', :id) AS message_ok;
-- and a manager rotates its own keys
SELECT key_id AS mgr_id, key AS mgr_k1 FROM apikey.apikey_create('manager key', '{}') \gset
SELECT apikey.apikey_rotate(:mgr_id, '1 hour') AS mgr_k2 \gset
RESET ROLE;
SELECT pg_temp.code(:'mgr_k1') AS old_key, pg_temp.code(:'mgr_k2') AS new_key;
SELECT owner_role, created_by, rotated_at IS NOT NULL AS rotated FROM apikey.keys WHERE id = :mgr_id;
DELETE FROM apikey.keys WHERE id = :mgr_id;
DROP ROLE regress_apikey_mgr;
-- failed rotations change nothing
SELECT apikey.apikey_rotate(:id) AS k9 \gset
SELECT secret_hash AS hash_before FROM apikey.keys WHERE id = :id \gset
SELECT apikey.apikey_rotate(:id, '8 days');
SELECT secret_hash = :'hash_before' AS unchanged, pg_temp.code(:'k9') AS code
  FROM apikey.keys WHERE id = :id;

--
-- a rotation rolled back leaves the old key valid and the new one unknown
--
BEGIN;
SELECT apikey.apikey_rotate(:id) AS k10 \gset
SELECT pg_temp.code(:'k9') AS old_key, pg_temp.code(:'k10') AS new_key;
ROLLBACK;
SELECT pg_temp.code(:'k9') AS old_key, pg_temp.code(:'k10') AS new_key;
-- also in a subtransaction
BEGIN;
SAVEPOINT s;
SELECT apikey.apikey_rotate(:id, '1 hour') AS k11 \gset
ROLLBACK TO SAVEPOINT s;
SELECT pg_temp.code(:'k9') AS old_key, pg_temp.code(:'k11') AS new_key;
COMMIT;
SELECT secret_hash = :'hash_before' AS unchanged, grace_secret_hash IS NULL AS no_grace
  FROM apikey.keys WHERE id = :id;

--
-- rotation keeps the key's state: a disabled or expired key stays so, and
-- other keys are not touched
--
SELECT key_id AS other_id, key AS other FROM apikey.apikey_create('bystander', '{}', prefix => 'rot') \gset
SELECT key_id AS dis_id FROM apikey.apikey_create('disabled', '{}', prefix => 'dbm') \gset
UPDATE apikey.keys SET enabled = false WHERE id = :dis_id;
SELECT apikey.apikey_rotate(:dis_id) AS dis_new \gset
SELECT pg_temp.code(:'dis_new') AS code, :'dis_new' ~ '^dbm_[0-9A-Za-z]{38}$' AS same_prefix;
SELECT key_id AS exp_id FROM apikey.apikey_create('expired', '{}') \gset
UPDATE apikey.keys SET expires_at = now() - interval '1 second' WHERE id = :exp_id;
SELECT apikey.apikey_rotate(:exp_id, '1 hour') AS exp_new \gset
SELECT pg_temp.code(:'exp_new') AS code;
-- a limited key stays limited: one verification a day, spent before the
-- rotation (unshown: VALID with the buckets of shared_preload_libraries,
-- RATE_LIMITED without, where a limited key fails closed); the new secret
-- gets no new bucket
SELECT key_id AS rl_id, key AS rl_old FROM apikey.apikey_create('limited', '{}') \gset
SET session_replication_role = replica;	-- limits need preload otherwise
UPDATE apikey.keys SET rate_limit = 1, rate_window = '1 day' WHERE id = :rl_id;
RESET session_replication_role;
SELECT pg_temp.code(:'rl_old') AS spent \gset
SELECT apikey.apikey_rotate(:rl_id) AS rl_new \gset
SELECT pg_temp.code(:'rl_new') AS code, rate_limit, rate_window FROM apikey.keys WHERE id = :rl_id;
SELECT pg_temp.code(:'other') AS bystander, pg_temp.code(:'k9') AS rotating;
SELECT rotated_at IS NULL AS bystander_not_rotated FROM apikey.keys WHERE id = :other_id;
-- what survived all those rotations
SELECT (SELECT row(b.*)::text FROM before b) =
       (SELECT row(id, name, prefix, owner, owner_role, scopes, resources, allowed_cidrs,
                   meta, enabled, expires_at, rate_limit, rate_window, created_at,
                   created_by, db_role)::text
          FROM apikey.keys WHERE id = :id) AS identity_kept;
DROP TABLE before;
