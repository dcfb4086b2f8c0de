\set VERBOSITY terse
SET client_min_messages = warning;
--
-- What depends on shared_preload_libraries = 'apikey'.  Without it there
-- is no shared memory: nothing is tracked (a backend's first verification
-- says so), a rate limit cannot be set (55000) and a limited key that
-- exists anyway fails closed.  With it, limits are set and enforced by
-- token buckets, and apikey.stats shows them.
--
-- Every other file gives the same output either way.  This one has two
-- expected outputs, preload.out (preloaded) and preload_1.out (not); its
-- first query says which kind of server it runs on, so a server that
-- behaves like the other kind matches neither.
--
SELECT 'apikey' = ANY (string_to_array(regexp_replace(
           current_setting('shared_preload_libraries'), '[\s"]|\$libdir/', '', 'g'), ','))
       AS preloaded;

--
-- the first verification in a backend warns that nothing is tracked, with
-- a hint; the next ones do not (preloaded: neither warns)
--
\set VERBOSITY default
SELECT v.code FROM apikey.apikey_verify('') v;
SELECT v.code FROM apikey.apikey_verify('') v;
\set VERBOSITY terse

--
-- setting a rate limit: refused without the shared-memory buckets (55000),
-- by apikey_create and by UPDATE alike, and nothing is written; accepted
-- with them
--
SELECT count(*) AS keys_before FROM apikey.keys \gset
SELECT count(*) AS audit_before FROM apikey.audit \gset
SELECT key_id IS NOT NULL AS created
  FROM apikey.apikey_create('x', '{}', rate_limit => 10, rate_window => '1 minute');
\echo :SQLSTATE
SELECT count(*) - :keys_before AS new_keys FROM apikey.keys;
SELECT count(*) - :audit_before AS new_audit FROM apikey.audit;
SELECT name, rate_limit, rate_window FROM apikey.keys WHERE name = 'x';

SELECT key_id AS id, key AS k FROM apikey.apikey_create('rate limited', '{jobs:read}') \gset
UPDATE apikey.keys SET rate_limit = 10, rate_window = '1 hour' WHERE id = :id;
\echo :SQLSTATE
SELECT rate_limit, rate_window FROM apikey.keys WHERE id = :id;

--
-- a limited key (without preload one restored from a server that had the
-- buckets, or written with triggers off as here): without preload refused
-- every time (fail closed), with no retry_after; with it, a full bucket of
-- rate_limit verifications, then RATE_LIMITED with the time until the
-- next token (one hour / 10 at most)
--
SET session_replication_role = replica;
UPDATE apikey.keys SET rate_limit = 10, rate_window = '1 hour' WHERE id = :id;
RESET session_replication_role;
SELECT v.valid, v.code, v.http_status, v.key_id = :id AS key_id_ok, v.name, v.scopes,
       v.retry_after
  FROM apikey.apikey_verify(:'k', '{jobs:read}') v;
-- (each attempt from its own address: a call whose arguments do not
-- change would run once, its result reused for every row)
SELECT count(*) AS attempts,
       count(*) FILTER (WHERE v.code = 'VALID') AS valid,
       count(*) FILTER (WHERE v.code = 'RATE_LIMITED' AND v.http_status = 429
                              AND NOT v.valid) AS rate_limited
  FROM generate_series(1, 15) g,
       LATERAL apikey.apikey_verify(:'k', client_addr => ('192.0.2.' || g)::inet) v;
SELECT v.code, v.retry_after IS NOT NULL AS has_retry_after,
       v.retry_after > '0' AND v.retry_after <= '6 minutes' AS retry_after_ok
  FROM apikey.apikey_verify(:'k') v;
-- the key's row of apikey.stats: its ten uses (counted, not written: the
-- worker writes only in the database apikey.database names) and its empty
-- bucket; the server's row (superusers); nothing without shared memory
SELECT name, unflushed_uses, rate_limit, bucket_tokens < 1 AS bucket_empty
  FROM apikey.stats WHERE scope = 'key' AND key_id = :id;
SELECT count(*) AS server_rows FROM apikey.stats WHERE scope = 'server';
-- without the limit, VALID again
UPDATE apikey.keys SET rate_limit = NULL, rate_window = NULL WHERE id = :id;
SELECT v.code FROM apikey.apikey_verify(:'k') v;

--
-- credits (1.2): refused without shared memory (55000), by apikey_create
-- and by UPDATE alike; a metered key that exists anyway (restored from a
-- dump by a superuser) fails closed, QUOTA_EXCEEDED with no retry_after.
-- With shared memory: set, and drawn on.
--
SELECT count(*) AS created FROM apikey.apikey_create('c', '{}', credits => 5);
DELETE FROM apikey.keys WHERE name = 'c';
UPDATE apikey.keys SET credits = 5 WHERE id = :id;
SELECT credits IS NOT NULL AS metered FROM apikey.keys WHERE id = :id;
ALTER TABLE apikey.keys DISABLE TRIGGER keys_plan_stamp;
UPDATE apikey.keys SET credits = 5, credits_set_at = now() WHERE id = :id;
ALTER TABLE apikey.keys ENABLE ALWAYS TRIGGER keys_plan_stamp;
SELECT v.code, v.http_status, v.retry_after, v.credits_remaining FROM apikey.apikey_verify(:'k') v;
UPDATE apikey.keys SET credits = NULL WHERE id = :id;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'k') v;
