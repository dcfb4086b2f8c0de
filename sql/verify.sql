\set VERBOSITY terse
SET client_min_messages = warning;
-- without shared_preload_libraries a backend's first verification warns
-- that nothing is tracked (sql/preload.sql tests that): take it here,
-- unshown, so this file's output is the same with and without preload
SET client_min_messages = error;
SELECT v.code AS first_verification FROM apikey.apikey_verify('') v;
SET client_min_messages = warning;
--
-- apikey_verify: every code, in the documented check order.  The same
-- output with and without shared_preload_libraries: what differs (setting
-- a limit, a bucket against failing closed) is in sql/preload.sql.
--

-- independent oracles for the key format (CRC-32, base62); pg_regress runs
-- from the top directory, so the path is relative to it
\i test/keyformat_oracle.sql
-- swapcase(s): upper <-> lower case
CREATE FUNCTION pg_temp.swapcase(s text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT translate(s, 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ',
						'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz')
$$;
-- flip(c): a different base62 character
CREATE FUNCTION pg_temp.flip(c text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT CASE WHEN c = 'A' THEN 'B' ELSE 'A' END
$$;

-- the key most cases use: every identity field set
SELECT key_id AS id, key AS k
  FROM apikey.apikey_create(name => 'verify main', scopes => '{jobs:read,jobs:write}',
						   owner => 'org-7', resources => '{proj_1,proj_2}',
						   meta => '{"tier": "gold"}',
						   expires_at => '2999-01-01 00:00:00+00') \gset
-- a key with nothing optional set
SELECT key_id AS bare_id, key AS bare FROM apikey.apikey_create('verify bare', '{}') \gset

--
-- VALID, with the identity fields; every calling notation
--
SELECT v.valid, v.code, v.http_status, v.key_id = :id AS key_id_ok, v.name,
       v.owner, v.scopes, v.resources, v.meta,
       v.expires_at = '2999-01-01 00:00:00+00' AS expires_at_ok, v.retry_after
  FROM apikey.apikey_verify(:'k') v;
SELECT v.valid, v.code, v.http_status, v.key_id = :bare_id AS key_id_ok, v.name,
       v.owner, v.scopes, v.resources, v.meta, v.expires_at, v.retry_after
  FROM apikey.apikey_verify(:'bare') v;
SELECT n, v.code, v.http_status
  FROM (VALUES (1, apikey.apikey_verify(:'k', '{jobs:read}', 'proj_1', '10.0.0.1'))) AS t(n, r),
       LATERAL (SELECT (t.r).*) v;
SELECT v.code FROM apikey.apikey_verify(key => :'k', required_scopes => '{jobs:write}',
                                        resource => 'proj_2', client_addr => '192.0.2.1') v;
SELECT v.code FROM apikey.apikey_verify(:'k', client_addr => '192.0.2.1') v;
SELECT (apikey.apikey_verify(:'k')).code AS code_by_field;
-- the result is an apikey.verification
SELECT pg_typeof(apikey.apikey_verify(:'k')) AS result_type;
-- NULL required scopes are a caller's bug: an error, never a skipped check
SELECT v.code FROM apikey.apikey_verify(:'k', NULL) v;
-- so is a two-dimensional array of required scopes
SELECT v.code FROM apikey.apikey_verify(:'k', '{{jobs:read},{jobs:write}}') v;
-- prefixes with underscores parse at the last underscore
SELECT key AS us_key FROM apikey.apikey_create('underscored', '{}', prefix => 'sk_live_eu') \gset
SELECT :'us_key' ~ '^sk_live_eu_[0-9A-Za-z]{38}$' AS shape_ok, v.code, v.name
  FROM apikey.apikey_verify(:'us_key') v;

--
-- MALFORMED: never raises, identity fields all NULL
--
SELECT n, label, v.valid, v.code, v.http_status,
       num_nulls(v.key_id, v.name, v.owner, v.scopes, v.resources, v.meta,
                 v.expires_at, v.retry_after) AS null_fields
  FROM (VALUES
	(1, 'NULL', NULL::text),
	(2, 'empty string', ''),
	(3, 'repeat(a, 200)', repeat('a', 200)),
	(4, '1 MB', repeat('a', 1000000)),
	(5, 'no underscore', replace(:'k', '_', '')),
	(6, 'underscore replaced by dash', replace(:'k', '_', '-')),
	(7, 'prefix only', 'ak_'),
	(8, 'underscore only', '_'),
	(9, 'body only', substr(:'k', 4)),
	(10, 'empty prefix', substr(:'k', 3)),
	(11, 'last char flipped', left(:'k', -1) || pg_temp.flip(right(:'k', 1))),
	(12, 'first secret char flipped', 'ak_' || pg_temp.flip(substr(:'k', 4, 1)) || substr(:'k', 5)),
	(13, 'checksum all zero', left(:'k', -6) || '000000'),
	(14, 'truncated by one', left(:'k', -1)),
	(15, 'truncated to the secret', left(:'k', -6)),
	(16, 'extra char at the end', :'k' || 'A'),
	(17, 'extra char in the middle', left(:'k', 20) || 'A' || substr(:'k', 21)),
	(18, 'secret case swapped', 'ak_' || pg_temp.swapcase(substr(:'k', 4))),
	(19, 'whole key upper case', upper(:'k')),
	(20, 'whole key lower case', lower(:'k')),
	(21, 'prefix upper case', 'AK' || substr(:'k', 3)),
	(22, 'leading space', ' ' || :'k'),
	(23, 'trailing space', :'k' || ' '),
	(24, 'trailing newline', :'k' || E'\n'),
	(25, 'dash in the secret', left(:'k', 10) || '-' || substr(:'k', 12)),
	(26, 'non-ASCII in the secret', left(:'k', 10) || 'é' || substr(:'k', 12)),
	(27, 'prefix doubled', 'ak_' || :'k'),
	(28, 'key twice', :'k' || :'k'),
	(29, 'valid checksum, upper-case prefix', pg_temp.mkkey('AK', repeat('x', 32))),
	(30, 'valid checksum, 1-char prefix', pg_temp.mkkey('a', repeat('x', 32))),
	(31, 'valid checksum, prefix ends in _', pg_temp.mkkey('ak_', repeat('x', 32))),
	(32, 'valid checksum, prefix starts with digit', pg_temp.mkkey('1ak', repeat('x', 32))),
	(33, 'valid checksum, 33-char prefix', pg_temp.mkkey('a' || repeat('b', 32), repeat('x', 32))),
	(34, 'valid checksum, empty prefix', pg_temp.mkkey('', repeat('x', 32))),
	(35, 'valid checksum, 31-char secret', pg_temp.mkkey('ak', repeat('x', 31))),
	(36, 'valid checksum, dash in secret', pg_temp.mkkey('ak', repeat('x', 16) || '-' || repeat('x', 15))),
	(37, 'valid checksum, 129 chars', pg_temp.mkkey('a' || repeat('b', 30) || 'c', repeat('x', 90)))
  ) AS c(n, label, key),
  LATERAL apikey.apikey_verify(c.key) v
 ORDER BY n;

--
-- NOT_FOUND: well formed, no such key; identity fields all NULL
--
SELECT key_id AS del_id, key AS del_key FROM apikey.apikey_create('to delete', '{}') \gset
SELECT v.code FROM apikey.apikey_verify(:'del_key') v;
DELETE FROM apikey.keys WHERE id = :del_id;
SELECT n, label, length(c.key) AS key_length, v.valid, v.code, v.http_status,
       num_nulls(v.key_id, v.name, v.owner, v.scopes, v.resources, v.meta,
                 v.expires_at, v.retry_after) AS null_fields
  FROM (VALUES
	(1, 'deleted key', :'del_key'),
	(2, 'never created', pg_temp.mkkey('ak', repeat('x', 32))),
	(3, 'never created, other prefix', pg_temp.mkkey('sk_test', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345')),
	(4, 'longer secret (33)', pg_temp.mkkey('ak', repeat('y', 33))),
	(5, 'exactly 128 chars', pg_temp.mkkey('a' || repeat('b', 30) || 'c', repeat('x', 89))),
	(6, 'real secret, other prefix', pg_temp.mkkey('dbh', substr(:'k', 4, 32))),
	(7, 'real secret, swapped case, new checksum', pg_temp.mkkey('ak', pg_temp.swapcase(substr(:'k', 4, 32))))
  ) AS c(n, label, key),
  LATERAL apikey.apikey_verify(c.key) v
 ORDER BY n;

--
-- DISABLED, EXPIRED, INSUFFICIENT_SCOPE: identity fields filled
--
SELECT key_id AS dis_id, key AS dis FROM apikey.apikey_create('to disable', '{jobs:read}', owner => 'o-dis') \gset
UPDATE apikey.keys SET enabled = false WHERE id = :dis_id;
SELECT v.valid, v.code, v.http_status, v.key_id = :dis_id AS key_id_ok, v.name,
       v.owner, v.scopes, v.meta, v.retry_after
  FROM apikey.apikey_verify(:'dis', '{jobs:read}') v;
UPDATE apikey.keys SET enabled = true WHERE id = :dis_id;
SELECT v.code FROM apikey.apikey_verify(:'dis', '{jobs:read}') v;

SELECT key_id AS exp_id, key AS exp FROM apikey.apikey_create('to expire', '{jobs:read}') \gset
UPDATE apikey.keys SET expires_at = now() - interval '1 second' WHERE id = :exp_id;
SELECT v.valid, v.code, v.http_status, v.key_id = :exp_id AS key_id_ok, v.name,
       v.expires_at = k.expires_at AS expires_at_ok, v.retry_after
  FROM apikey.apikey_verify(:'exp') v, apikey.keys k WHERE k.id = :exp_id;
-- the boundary: inside one transaction now() is fixed; expires_at <= now() is EXPIRED
BEGIN;
UPDATE apikey.keys SET expires_at = now() WHERE id = :exp_id;
SELECT 'expires_at = now()' AS expires, v.code FROM apikey.apikey_verify(:'exp') v;
UPDATE apikey.keys SET expires_at = now() + interval '1 microsecond' WHERE id = :exp_id;
SELECT 'now() + 1 microsecond' AS expires, v.code FROM apikey.apikey_verify(:'exp') v;
UPDATE apikey.keys SET expires_at = now() - interval '1 microsecond' WHERE id = :exp_id;
SELECT 'now() - 1 microsecond' AS expires, v.code FROM apikey.apikey_verify(:'exp') v;
UPDATE apikey.keys SET expires_at = NULL WHERE id = :exp_id;
SELECT 'NULL' AS expires, v.code FROM apikey.apikey_verify(:'exp') v;
COMMIT;
-- expired in the past, in the far past
UPDATE apikey.keys SET expires_at = '2000-01-01 00:00:00+00' WHERE id = :exp_id;
SELECT v.code FROM apikey.apikey_verify(:'exp') v;

SELECT v.valid, v.code, v.http_status, v.key_id = :id AS key_id_ok, v.name,
       v.owner, v.scopes, v.resources, v.meta, v.retry_after
  FROM apikey.apikey_verify(:'k', '{jobs:delete}') v;

--
-- IP_DENIED: a key with allowed_cidrs refuses unknown and outside addresses
--
SELECT key_id AS ip_id, key AS ip
  FROM apikey.apikey_create('ip bound', '{}',
       allowed_cidrs => '{10.0.0.0/8,192.168.1.0/24,2001:db8::/32}') \gset
SELECT key AS ip4 FROM apikey.apikey_create('ipv4 only', '{}', allowed_cidrs => '{10.0.0.0/8}') \gset
SELECT key AS ip6 FROM apikey.apikey_create('ipv6 only', '{}', allowed_cidrs => '{2001:db8::/32}') \gset
SELECT key AS ipall FROM apikey.apikey_create('any ipv4', '{}', allowed_cidrs => '{0.0.0.0/0}') \gset
SELECT key AS iphost FROM apikey.apikey_create('one host', '{}', allowed_cidrs => '{203.0.113.7/32}') \gset
SELECT key AS ipmap FROM apikey.apikey_create('mapped net', '{}', allowed_cidrs => '{::ffff:10.0.0.0/104}') \gset
SELECT n, c.key_name, c.addr, v.valid, v.code, v.http_status,
       v.key_id IS NOT NULL AS has_identity
  FROM (VALUES
	(1, 'ip bound', :'ip', NULL::inet),
	(2, 'ip bound', :'ip', '10.1.2.3'),
	(3, 'ip bound', :'ip', '10.0.0.0'),
	(4, 'ip bound', :'ip', '10.255.255.255'),
	(5, 'ip bound', :'ip', '9.255.255.255'),
	(6, 'ip bound', :'ip', '11.0.0.0'),
	(7, 'ip bound', :'ip', '192.168.1.77'),
	(8, 'ip bound', :'ip', '192.168.2.1'),
	(9, 'ip bound', :'ip', '127.0.0.1'),
	(10, 'ip bound', :'ip', '2001:db8::1'),
	(11, 'ip bound', :'ip', '2001:db8:ffff::1'),
	(12, 'ip bound', :'ip', '2001:db9::1'),
	(13, 'ip bound', :'ip', '::1'),
	(14, 'ip bound', :'ip', '::ffff:10.1.2.3'),
	(15, 'ip bound', :'ip', '10.1.2.3/32'),
	(16, 'ip bound', :'ip', '10.0.0.0/8'),
	(17, 'ip bound', :'ip', '10.0.0.0/7'),
	(18, 'ipv4 only', :'ip4', '10.9.9.9'),
	(19, 'ipv4 only', :'ip4', '2001:db8::1'),
	(20, 'ipv4 only', :'ip4', '::ffff:10.9.9.9'),
	(21, 'ipv4 only', :'ip4', NULL),
	(22, 'ipv6 only', :'ip6', '2001:db8::abcd'),
	(23, 'ipv6 only', :'ip6', '10.9.9.9'),
	(24, 'ipv6 only', :'ip6', NULL),
	(25, 'any ipv4', :'ipall', '198.51.100.1'),
	(26, 'any ipv4', :'ipall', '255.255.255.255'),
	(27, 'any ipv4', :'ipall', '::'),
	(28, 'any ipv4', :'ipall', NULL),
	(29, 'one host', :'iphost', '203.0.113.7'),
	(30, 'one host', :'iphost', '203.0.113.8'),
	(31, 'not bound', :'bare', NULL),
	(32, 'not bound', :'bare', '198.51.100.1'),
	(33, 'not bound', :'bare', '2001:db8::1'),
	-- an IPv4-mapped network: the same answer for both spellings of a client
	(34, 'mapped net', :'ipmap', '10.1.2.3'),
	(35, 'mapped net', :'ipmap', '::ffff:10.1.2.3'),
	(36, 'mapped net', :'ipmap', '11.1.2.3'),
	(37, 'mapped net', :'ipmap', '::ffff:11.1.2.3'),
	(38, 'mapped net', :'ipmap', '::a01:203')
  ) AS c(n, key_name, key, addr),
  LATERAL apikey.apikey_verify(c.key, '{}', NULL, c.addr) v
 ORDER BY n;

--
-- RESOURCE_DENIED: 404 for any resource outside the key's list
--
SELECT n, c.key_name, c.res, v.valid, v.code, v.http_status,
       v.key_id IS NOT NULL AS has_identity
  FROM (VALUES
	(1, 'bound', :'k', NULL::text),
	(2, 'bound', :'k', 'proj_1'),
	(3, 'bound', :'k', 'proj_2'),
	(4, 'bound', :'k', 'proj_3'),
	(5, 'bound', :'k', ''),
	(6, 'bound', :'k', 'PROJ_1'),
	(7, 'bound', :'k', 'proj_1 '),
	(8, 'bound', :'k', 'proj'),
	(9, 'bound', :'k', 'proj_10'),
	(10, 'bound', :'k', '{proj_1,proj_2}'),
	(11, 'not bound', :'bare', NULL),
	(12, 'not bound', :'bare', 'proj_3'),
	(13, 'not bound', :'bare', '')
  ) AS c(n, key_name, key, res),
  LATERAL apikey.apikey_verify(c.key, '{}', c.res) v
 ORDER BY n;

-- RATE_LIMITED: in sql/preload.sql (refused every time without the
-- shared-memory buckets, a bucket with them); here, its place in the
-- check order

--
-- check order: DISABLED, EXPIRED, INSUFFICIENT_SCOPE, IP_DENIED,
-- RESOURCE_DENIED, RATE_LIMITED.  One key, four requests, each failing
-- one check fewer; then the key's own state is made worse step by step.
--
SELECT key_id AS ord_id, key AS ord
  FROM apikey.apikey_create('order', '{jobs:read}', resources => '{proj_1}',
                            allowed_cidrs => '{10.0.0.0/8}') \gset
CREATE TEMP TABLE reqs (n int, fails text, required text[], resource text, addr inet);
INSERT INTO reqs VALUES
	(1, 'scope+ip+resource', '{jobs:write}', 'proj_9', '192.0.2.1'),
	(2, 'ip+resource', '{jobs:read}', 'proj_9', '192.0.2.1'),
	(3, 'resource', '{jobs:read}', 'proj_9', '10.0.0.1'),
	(4, 'nothing', '{jobs:read}', 'proj_1', '10.0.0.1');
-- the key as created
SELECT r.n, r.fails, v.code, v.http_status
  FROM reqs r, LATERAL apikey.apikey_verify(:'ord', r.required, r.resource, r.addr) v ORDER BY r.n;
-- with a rate limit: the request failing nothing else is RATE_LIMITED.
-- One verification a day, spent first (unshown: VALID with the buckets of
-- shared_preload_libraries, RATE_LIMITED without, where a limited key
-- fails closed), so the bucket is empty either way
SET session_replication_role = replica;
UPDATE apikey.keys SET rate_limit = 1, rate_window = '1 day' WHERE id = :ord_id;
RESET session_replication_role;
SELECT v.code AS spent FROM apikey.apikey_verify(:'ord', '{jobs:read}', 'proj_1', '10.0.0.1') v \gset
SELECT r.n, r.fails, v.code, v.http_status
  FROM reqs r, LATERAL apikey.apikey_verify(:'ord', r.required, r.resource, r.addr) v ORDER BY r.n;
-- rate limited and expired: EXPIRED for every request
UPDATE apikey.keys SET expires_at = now() - interval '1 second' WHERE id = :ord_id;
SELECT r.n, r.fails, v.code, v.http_status
  FROM reqs r, LATERAL apikey.apikey_verify(:'ord', r.required, r.resource, r.addr) v ORDER BY r.n;
-- rate limited, expired and disabled: DISABLED for every request
UPDATE apikey.keys SET enabled = false WHERE id = :ord_id;
SELECT r.n, r.fails, v.code, v.http_status
  FROM reqs r, LATERAL apikey.apikey_verify(:'ord', r.required, r.resource, r.addr) v ORDER BY r.n;
-- disabled but not expired: still DISABLED
UPDATE apikey.keys SET expires_at = NULL WHERE id = :ord_id;
SELECT r.n, r.fails, v.code
  FROM reqs r, LATERAL apikey.apikey_verify(:'ord', r.required, r.resource, r.addr) v ORDER BY r.n;
-- a malformed or unknown key says so before anything about the request
SELECT v.code FROM apikey.apikey_verify(left(:'ord', -1), '{jobs:write}', 'proj_9', '192.0.2.1') v;
SELECT v.code FROM apikey.apikey_verify(:'del_key', '{jobs:write}', 'proj_9', '192.0.2.1') v;
DROP TABLE reqs;

--
-- code -> http_status, valid only for VALID (from the cases above)
--
SELECT v.code, v.http_status, v.valid
  FROM (VALUES (:'k', '{}'::text[], NULL::text, NULL::inet),
               ('', '{}', NULL, NULL),
               (:'del_key', '{}', NULL, NULL),
               (:'dis', '{}', NULL, NULL),
               (:'exp', '{}', NULL, NULL),
               (:'k', '{admin}', NULL, NULL),
               (:'ip', '{}', NULL, NULL),
               (:'k', '{}', 'proj_9', NULL),
               (:'ord', '{}', NULL, NULL)) AS c(key, req, res, addr),
       LATERAL apikey.apikey_verify(c.key, c.req, c.res, c.addr) v
 ORDER BY v.http_status, v.code;
UPDATE apikey.keys SET enabled = false WHERE id = :dis_id;
UPDATE apikey.keys SET enabled = true, rate_limit = NULL, rate_window = NULL WHERE id = :ord_id;

--
-- verification writes nothing: it works READ ONLY, assigns no transaction
-- id, and leaves the row (xmin), apikey.usage and the audit alone (with
-- shared_preload_libraries, the worker writes usage and the log later,
-- and only in the database apikey.database names, not this one)
--
BEGIN READ ONLY;
SELECT v.code FROM apikey.apikey_verify(:'k', '{jobs:read}') v;
SELECT v.code FROM apikey.apikey_verify(:'del_key') v;
SELECT v.code FROM apikey.apikey_verify('garbage') v;
SELECT v.code FROM apikey.apikey_verify(:'dis') v;
SELECT current_setting('transaction_read_only') AS read_only;
COMMIT;
BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY;
SELECT v.code FROM apikey.apikey_verify(:'k', '{jobs:read}') v;
COMMIT;
SET default_transaction_read_only = on;
SELECT v.code FROM apikey.apikey_verify(:'k') v;
RESET default_transaction_read_only;
SELECT xmin::text AS xmin_before FROM apikey.keys WHERE id = :id \gset
SELECT count(*) AS audit_before FROM apikey.audit \gset
BEGIN;
SELECT count(*) FILTER (WHERE v.valid) AS valid_verifications
  FROM generate_series(1, 25) g,
       LATERAL apikey.apikey_verify(:'k', CASE WHEN g > 0 THEN '{jobs:read}'::text[] END) v;  -- once per row
SELECT count(*) FILTER (WHERE NOT v.valid) AS failed_verifications
  FROM generate_series(1, 25) g,
       LATERAL apikey.apikey_verify(:'k', CASE WHEN g > 0 THEN '{admin}'::text[] END) v;
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_xid_assigned;
COMMIT;
SELECT xmin::text = :'xmin_before' AS xmin_unchanged,
       (SELECT count(*) FROM apikey.usage) = 0 AS no_usage_written
  FROM apikey.keys WHERE id = :id;
SELECT count(*) = :audit_before AS audit_unchanged FROM apikey.audit;
-- and in a subtransaction that is rolled back
BEGIN;
SAVEPOINT s;
SELECT v.code FROM apikey.apikey_verify(:'k') v;
ROLLBACK TO SAVEPOINT s;
SELECT v.code FROM apikey.apikey_verify(:'k') v;
COMMIT;

--
-- a key created (or deleted) in the current transaction is seen at once
--
BEGIN;
SELECT key_id AS tx_id, key AS tx FROM apikey.apikey_create('in transaction', '{}') \gset
SELECT v.code FROM apikey.apikey_verify(:'tx') v;
DELETE FROM apikey.keys WHERE id = :tx_id;
SELECT v.code FROM apikey.apikey_verify(:'tx') v;
ROLLBACK;
SELECT v.code FROM apikey.apikey_verify(:'tx') v;

--
-- DROP EXTENSION / CREATE EXTENSION in the same session: verification
-- finds the new table (old keys are gone with the old one)
--
SELECT v.code FROM apikey.apikey_verify(:'k') v;
-- losing every key takes a deliberate step
DROP EXTENSION apikey;
DROP SCHEMA apikey CASCADE;
SET apikey.allow_drop = on;
DROP EXTENSION apikey;
RESET apikey.allow_drop;
CREATE EXTENSION apikey;
SELECT v.code, num_nulls(v.key_id, v.name) AS null_fields FROM apikey.apikey_verify(:'k') v;
SELECT key_id AS new_id, key AS new_key FROM apikey.apikey_create('after recreate', '{jobs:read}') \gset
SELECT v.code, v.key_id = :new_id AS key_id_ok, v.name
  FROM apikey.apikey_verify(:'new_key', '{jobs:read}') v;
SELECT v.code FROM apikey.apikey_verify(:'k') v;
-- the same inside one transaction, rolled back: the previous table is back
BEGIN;
SET LOCAL apikey.allow_drop = on;
DROP EXTENSION apikey;
CREATE EXTENSION apikey;
SELECT key AS tmp_key FROM apikey.apikey_create('rolled back', '{}') \gset
SELECT v.code FROM apikey.apikey_verify(:'tmp_key') v;
SELECT v.code FROM apikey.apikey_verify(:'new_key') v;
ROLLBACK;
SELECT v.code, v.key_id = :new_id AS key_id_ok FROM apikey.apikey_verify(:'new_key') v;
SELECT v.code FROM apikey.apikey_verify(:'tmp_key') v;
-- the extension is left installed for the following tests
SELECT extname FROM pg_extension WHERE extname = 'apikey';
