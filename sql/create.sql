\set VERBOSITY terse
SET client_min_messages = warning;
-- without shared_preload_libraries a backend's first verification warns
-- that nothing is tracked (sql/preload.sql tests that): take it here,
-- unshown, so this file's output is the same with and without preload
SET client_min_messages = error;
SELECT v.code AS first_verification FROM apikey.apikey_verify('') v;
SET client_min_messages = warning;
--
-- apikey_create: arguments, key shape, the stored row.
-- Keys are random: only shapes, lengths, booleans and codes are printed.
--

-- independent oracles for the key format (CRC-32, base62); pg_regress runs
-- from the top directory, so the path is relative to it
\i test/keyformat_oracle.sql
-- hint_of(key, prefix): the documented display hint
CREATE FUNCTION pg_temp.hint_of(k text, prefix text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT substr(k, 1, length(prefix) + 5) || chr(8230) || right(k, 4)
$$;
-- stored_anywhere(s): some row of some table in schema apikey contains s
CREATE FUNCTION pg_temp.stored_anywhere(s text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	t	record;
	hit	boolean;
BEGIN
	FOR t IN SELECT c.oid::regclass AS rel FROM pg_class c
			  WHERE c.relnamespace = 'apikey'::regnamespace AND c.relkind = 'r'
	LOOP
		EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s r WHERE strpos(r::text, $1) > 0)', t.rel)
			INTO hit USING s;
		IF hit THEN
			RETURN true;
		END IF;
	END LOOP;
	RETURN false;
END $$;

-- the oracles themselves: crc32("123456789") = 0xCBF43926
SELECT to_hex(pg_temp.crc32('123456789')) AS crc_check, pg_temp.crc32('') AS crc_empty,
       pg_temp.base62_6(0) AS b62_0, pg_temp.base62_6(61) AS b62_61, pg_temp.base62_6(62) AS b62_62,
       pg_temp.base62_6(4294967295) AS b62_max;

--
-- minimal call: name and scopes only, default prefix 'ak'
--
SELECT key_id AS min_id, key AS min_key FROM apikey.apikey_create('minimal', '{}') \gset
SHOW apikey.default_prefix;
SELECT :'min_key' ~ '^ak_[0-9A-Za-z]{38}$' AS shape_ok,
       length(:'min_key') AS key_length,
       pg_temp.checksum_ok(:'min_key') AS checksum_ok,
       :min_id > 0 AS id_positive;
SELECT name, prefix, owner, owner_role = current_user AS owner_role_is_me,
       created_by = current_user AS created_by_is_me,
       scopes, resources, allowed_cidrs, meta, enabled, expires_at,
       rate_limit, rate_window, rotated_at, db_role,
       grace_secret_hash, grace_until,
       hint = pg_temp.hint_of(:'min_key', prefix) AS hint_ok,
       secret_hash = digest(:'min_key', 'sha256') AS hash_is_pgcrypto_sha256,
       secret_hash = sha256(convert_to(:'min_key', 'UTF8')) AS hash_is_builtin_sha256,
       created_at <= now() AS created_at_ok
  FROM apikey.keys WHERE id = :min_id;
-- exactly one row comes back
SELECT count(*) AS rows_returned FROM apikey.apikey_create('one row', '{}');

--
-- every argument, named notation, in one transaction (so now() is fixed)
--
BEGIN;
SELECT key_id AS full_id, key AS full_key
  FROM apikey.apikey_create(
	name => 'full key',
	scopes => ARRAY['jobs:read', 'jobs:write', 'billing:*'],
	expires_at => '2999-12-31 23:59:59+00',
	prefix => 'dbh',
	owner => 'team-42',
	resources => ARRAY['proj_1', 'proj_2'],
	meta => '{"plan": "pro", "seats": [1, 2]}',
	rate_limit => NULL,
	rate_window => NULL,
	allowed_cidrs => ARRAY['10.0.0.0/8', '2001:db8::/32']::cidr[]) \gset
SELECT :'full_key' ~ '^dbh_[0-9A-Za-z]{38}$' AS shape_ok,
       length(:'full_key') AS key_length,
       pg_temp.checksum_ok(:'full_key') AS checksum_ok;
SELECT name, prefix, owner, scopes, resources, allowed_cidrs, meta, enabled,
       expires_at = '2999-12-31 23:59:59+00' AS expires_at_ok,
       rate_limit, rate_window,
       owner_role = current_user AS owner_role_is_me,
       created_by = current_user AS created_by_is_me,
       created_at = now() AS created_now,
       rotated_at, db_role, grace_secret_hash, grace_until
  FROM apikey.keys WHERE id = :full_id;
-- hint: "<prefix>_" + 4 characters + U+2026 + the last 4 characters of the key
SELECT hint = pg_temp.hint_of(:'full_key', 'dbh') AS hint_ok,
       hint ~ ('^dbh_[0-9A-Za-z]{4}' || chr(8230) || '[0-9A-Za-z]{4}$') AS hint_shape_ok,
       char_length(hint) AS hint_chars, octet_length(hint) AS hint_bytes,
       left(hint, 8) = left(:'full_key', 8) AS hint_head_ok,
       right(hint, 4) = right(:'full_key', 4) AS hint_tail_ok
  FROM apikey.keys WHERE id = :full_id;
-- the hash: SHA-256 of the whole key string, by two independent oracles
SELECT octet_length(secret_hash) AS hash_bytes,
       secret_hash = digest(:'full_key', 'sha256') AS hash_is_pgcrypto_sha256,
       secret_hash = sha256(convert_to(:'full_key', 'UTF8')) AS hash_is_builtin_sha256,
       secret_hash <> sha256(convert_to(substr(:'full_key', 5), 'UTF8')) AS hash_covers_prefix
  FROM apikey.keys WHERE id = :full_id;
-- the raw key is not stored: no column holds the key or its secret part
SELECT strpos(row_to_json(k)::text, :'full_key') = 0 AS key_not_in_row,
       row_to_json(k)::text NOT LIKE '%' || substr(:'full_key', 5, 32) || '%' AS secret_not_in_row,
       row_to_json(k)::text NOT LIKE '%' || substr(:'full_key', 9, 16) || '%' AS secret_middle_not_in_row,
       encode(secret_hash, 'escape') NOT LIKE '%' || substr(:'full_key', 5, 32) || '%' AS secret_not_in_hash
  FROM apikey.keys k WHERE id = :full_id;
COMMIT;
-- nor anywhere else in the extension's tables (keys, audit, ...)
SELECT pg_temp.stored_anywhere(:'full_key') AS key_stored,
       pg_temp.stored_anywhere(substr(:'full_key', 5, 32)) AS secret_stored,
       pg_temp.stored_anywhere(:'min_key') AS min_key_stored;
-- the new key verifies
SELECT v.code, v.key_id = :full_id AS key_id_ok, v.name
  FROM apikey.apikey_verify(:'full_key', '{jobs:read}', 'proj_1', '10.1.2.3') v;

--
-- positional and mixed notation; defaults (meta '{}', no expiry, no owner)
--
SELECT key_id AS pos_id, key AS pos_key
  FROM apikey.apikey_create('positional', '{read}', NULL, 'sk_test', 'user-1') \gset
SELECT :'pos_key' ~ '^sk_test_[0-9A-Za-z]{38}$' AS shape_ok,
       pg_temp.checksum_ok(:'pos_key') AS checksum_ok;
SELECT name, prefix, owner, scopes, resources, meta, expires_at,
       hint = pg_temp.hint_of(:'pos_key', prefix) AS hint_ok
  FROM apikey.keys WHERE id = :pos_id;
SELECT key_id AS mix_id, key AS mix_key
  FROM apikey.apikey_create('mixed', '{jobs:read}', owner => 'o2', meta => '{"a": {"b": null}}') \gset
SELECT name, prefix, owner, scopes, meta, :'mix_key' ~ '^ak_[0-9A-Za-z]{38}$' AS shape_ok
  FROM apikey.keys WHERE id = :mix_id;

--
-- prefixes: explicit, from apikey.default_prefix, the longest and shortest
--
SET apikey.default_prefix = 'dbaudit_live';
SHOW apikey.default_prefix;
SELECT key_id AS gp_id, key AS gp_key FROM apikey.apikey_create('guc prefix', '{}') \gset
SELECT :'gp_key' ~ '^dbaudit_live_[0-9A-Za-z]{38}$' AS shape_ok,
       length(:'gp_key') AS key_length,
       pg_temp.checksum_ok(:'gp_key') AS checksum_ok;
SELECT prefix, hint = pg_temp.hint_of(:'gp_key', prefix) AS hint_ok
  FROM apikey.keys WHERE id = :gp_id;
-- an explicit prefix wins over the setting
SELECT key ~ '^dbm_[0-9A-Za-z]{38}$' AS explicit_wins
  FROM apikey.apikey_create('explicit', '{}', prefix => 'dbm');
-- prefix => NULL means the setting
SELECT key ~ '^dbaudit_live_[0-9A-Za-z]{38}$' AS null_prefix_uses_setting
  FROM apikey.apikey_create('null prefix', '{}', prefix => NULL);
-- an invalid setting is refused and the old one kept
SET apikey.default_prefix = 'Bad';
SET apikey.default_prefix = 'ab_';
SET apikey.default_prefix = '';
SHOW apikey.default_prefix;
-- SET LOCAL lasts for the transaction
BEGIN;
SET LOCAL apikey.default_prefix = 'supascale';
SELECT key ~ '^supascale_[0-9A-Za-z]{38}$' AS set_local_ok
  FROM apikey.apikey_create('set local', '{}');
COMMIT;
SHOW apikey.default_prefix;
RESET apikey.default_prefix;
SHOW apikey.default_prefix;
SELECT key ~ '^ak_[0-9A-Za-z]{38}$' AS default_again
  FROM apikey.apikey_create('after reset', '{}');
-- the shortest (2) and the longest (32) prefix, digits and inner underscores
-- (keys are made first: a statement does not see its own inserts)
CREATE TEMP TABLE pk AS
SELECT u.n, u.p, c.key_id, c.key
  FROM unnest(ARRAY['ab', 'a' || repeat('b', 30) || 'c', 'sk_test', 'a1', 'x_9',
                    'dbackup', 'a_b_c_d', 'z0']) WITH ORDINALITY AS u(p, n),
       LATERAL apikey.apikey_create('prefix ' || p, '{}', prefix => p) c;
SELECT length(pk.p) AS prefix_length, pk.p AS prefix,
       pk.key ~ ('^' || pk.p || '_[0-9A-Za-z]{38}$') AS shape_ok,
       length(pk.key) AS key_length,
       pg_temp.checksum_ok(pk.key) AS checksum_ok,
       k.prefix = pk.p AS stored_ok,
       k.hint = pg_temp.hint_of(pk.key, pk.p) AS hint_ok,
       v.code
  FROM pk JOIN apikey.keys k ON k.id = pk.key_id,
       LATERAL apikey.apikey_verify(pk.key) v
 ORDER BY pk.n;
DROP TABLE pk;

--
-- owner_role and created_by are the calling role
--
CREATE ROLE regress_apikey_mgr IN ROLE apikey_manager;
SET ROLE regress_apikey_mgr;
SELECT key_id AS mgr_id FROM apikey.apikey_create('by manager', '{jobs:read}') \gset
RESET ROLE;
SELECT owner_role, created_by FROM apikey.keys WHERE id = :mgr_id;
-- but never by the group role itself, which every manager can become
SET ROLE apikey_manager;
SELECT key_id FROM apikey.apikey_create('by the group', '{}');
RESET ROLE;
DELETE FROM apikey.keys WHERE id = :mgr_id;
DROP ROLE regress_apikey_mgr;
SET ROLE apikey_verifier;
SELECT key_id FROM apikey.apikey_create('by verifier', '{}');
RESET ROLE;
SELECT count(*) AS verifier_keys FROM apikey.keys WHERE owner_role = 'apikey_verifier';

--
-- every call mints a different key (and hash); the alphabet is all of base62
--
CREATE TEMP TABLE many AS
SELECT c.key_id, c.key
  FROM generate_series(1, 50) g, LATERAL apikey.apikey_create('many ' || g, '{}') c;
SELECT count(*) AS keys, count(DISTINCT key) AS distinct_keys,
       count(DISTINCT key_id) AS distinct_ids,
       count(DISTINCT substr(key, 4, 4)) > 40 AS heads_vary,
       bool_and(key ~ '^ak_[0-9A-Za-z]{38}$') AS all_shapes_ok,
       bool_and(pg_temp.checksum_ok(key)) AS all_checksums_ok
  FROM many;
SELECT count(DISTINCT k.secret_hash) AS distinct_hashes,
       bool_and(k.secret_hash = sha256(convert_to(m.key, 'UTF8'))) AS all_hashes_ok,
       bool_and(k.hint = pg_temp.hint_of(m.key, 'ak')) AS all_hints_ok
  FROM many m JOIN apikey.keys k ON k.id = m.key_id;
-- 50 secrets of 32 characters use every one of the 62 base62 digits
SELECT count(DISTINCT ch) AS distinct_secret_chars
  FROM many, regexp_split_to_table(substr(key, 4, 32), '') AS ch;
SELECT count(*) AS keys_stored_anywhere
  FROM many WHERE pg_temp.stored_anywhere(substr(key, 4, 32));
DROP TABLE many;
