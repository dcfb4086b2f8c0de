\set VERBOSITY terse
SET client_min_messages = warning;
-- without shared_preload_libraries a backend's first verification warns
-- that nothing is tracked (sql/preload.sql tests that): take it here,
-- unshown, so this file's output is the same with and without preload
SET client_min_messages = error;
SELECT v.code AS first_verification FROM apikey.apikey_verify('') v;
SET client_min_messages = warning;
--
-- Errors: every argument check of apikey_create with its message and
-- SQLSTATE, the table's CHECK constraints, and no message ever echoes a key.
--

-- error_of(statement, key): run statement, return its SQLSTATE and whether
-- the message, detail or hint contain key (never the texts themselves)
CREATE FUNCTION pg_temp.error_of(q text, k text,
	OUT state text, OUT key_in_message boolean, OUT key_in_detail boolean,
	OUT key_in_hint boolean)
LANGUAGE plpgsql AS $$
DECLARE
	m text;
	d text;
	h text;
BEGIN
	EXECUTE q;
	state := '00000';
EXCEPTION WHEN others THEN
	GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, m = MESSAGE_TEXT,
		d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
	key_in_message := strpos(m, k) > 0 OR strpos(m, substr(k, 4, 32)) > 0;
	key_in_detail := strpos(d, k) > 0 OR strpos(d, substr(k, 4, 32)) > 0;
	key_in_hint := strpos(h, k) > 0 OR strpos(h, substr(k, 4, 32)) > 0;
END $$;

--
-- the limits themselves are accepted
--
SELECT count(*) AS created FROM apikey.apikey_create(repeat('n', 256), '{}');
SELECT count(*) AS created FROM apikey.apikey_create(repeat('é', 256), '{}');
SELECT count(*) AS created FROM apikey.apikey_create(' x ', '{}');
SELECT count(*) AS created
  FROM apikey.apikey_create('64 scopes', (SELECT array_agg('s' || g) FROM generate_series(1, 64) g));
SELECT count(*) AS created FROM apikey.apikey_create('owner 256', '{}', owner => repeat('o', 256));
SELECT count(*) AS created FROM apikey.apikey_create('owner empty', '{}', owner => '');
SELECT count(*) AS created
  FROM apikey.apikey_create('expires soon', '{}', expires_at => now() + interval '1 microsecond');
SELECT count(*) AS created FROM apikey.apikey_create('expires never', '{}', expires_at => 'infinity');
SELECT key ~ '^ak_' AS null_prefix_uses_default
  FROM apikey.apikey_create('null prefix', '{}', prefix => NULL);
SELECT count(*) AS created FROM apikey.apikey_create('one resource', '{}', resources => '{x}');
SELECT count(*) AS created FROM apikey.apikey_create('meta', '{}', meta => '{"a": [1, {"b": null}]}');
SELECT count(*) AS created FROM apikey.apikey_create('cidr', '{}', allowed_cidrs => '{0.0.0.0/0,::/0}');
SELECT name, octet_length(name) AS bytes FROM apikey.keys WHERE name LIKE 'é%';

-- from here on no call may create anything
SELECT count(*) AS keys_before FROM apikey.keys \gset
SELECT count(*) AS audit_before FROM apikey.audit \gset

--
-- name
--
SELECT * FROM apikey.apikey_create(NULL, '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('   ', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create(E'\t\n ', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create(repeat('n', 257), '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create(repeat('é', 257), '{}');
\echo :LAST_ERROR_SQLSTATE

--
-- scopes
--
SELECT * FROM apikey.apikey_create('x', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{NULL}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{jobs:read,NULL}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{Bad}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{jobs:read,""}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{jobs:read,jobs:write,a::b}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{"jobs read"}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', ARRAY[repeat('s', 129)]);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', (SELECT array_agg('s' || g) FROM generate_series(1, 65) g));
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{{a,b},{c,d}}');
\echo :LAST_ERROR_SQLSTATE

--
-- expires_at
--
SELECT * FROM apikey.apikey_create('x', '{}', expires_at => '2000-01-01 00:00:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', expires_at => now());
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', expires_at => now() - interval '1 microsecond');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', expires_at => '-infinity');
\echo :LAST_ERROR_SQLSTATE

--
-- prefix: a short bad prefix is quoted, a long one is not (it may be a key)
--
SELECT * FROM apikey.apikey_create('x', '{}', prefix => 'A');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', prefix => 'a');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', prefix => '');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', prefix => '1ab');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', prefix => '_ab');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', prefix => 'ab_');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', prefix => 'a-b');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', prefix => 'Ak');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', prefix => 'ak ');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', prefix => 'dé');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', prefix => 'A' || repeat('b', 31));
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', prefix => 'a' || repeat('b', 32));
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', prefix => repeat('X', 100));
\echo :LAST_ERROR_SQLSTATE

--
-- owner
--
SELECT * FROM apikey.apikey_create('x', '{}', owner => repeat('o', 257));
\echo :LAST_ERROR_SQLSTATE

--
-- resources
--
SELECT * FROM apikey.apikey_create('x', '{}', resources => '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', resources => '{NULL}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', resources => '{proj_1,NULL}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', resources => '{""}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', resources => '{proj_1,""}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', resources => '{{a,b},{c,d}}');
\echo :LAST_ERROR_SQLSTATE

--
-- meta
--
SELECT * FROM apikey.apikey_create('x', '{}', meta => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', meta => '[]');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', meta => '[{"a": 1}]');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', meta => '1');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', meta => '"text"');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', meta => 'null');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', meta => 'true');
\echo :LAST_ERROR_SQLSTATE

--
-- rate limits: both or neither, positive (and only with shared memory:
-- sql/preload.sql, whose output depends on shared_preload_libraries)
--
SELECT * FROM apikey.apikey_create('x', '{}', rate_limit => 10);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', rate_window => '1 minute');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', rate_limit => 0, rate_window => '1 minute');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', rate_limit => -1, rate_window => '1 minute');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', rate_limit => 10, rate_window => '0');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', rate_limit => 10, rate_window => '-1 minute');
\echo :LAST_ERROR_SQLSTATE

--
-- allowed_cidrs
--
SELECT * FROM apikey.apikey_create('x', '{}', allowed_cidrs => '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', allowed_cidrs => '{NULL}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', allowed_cidrs => '{10.0.0.0/8,NULL}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM apikey.apikey_create('x', '{}', allowed_cidrs => '{{10.0.0.0/8},{::/0}}');
\echo :LAST_ERROR_SQLSTATE

-- the first failing check wins, in argument order
SELECT * FROM apikey.apikey_create('', NULL, prefix => 'A');
SELECT * FROM apikey.apikey_create('x', '{Bad}', prefix => 'A');
SELECT * FROM apikey.apikey_create('x', '{}', expires_at => '2000-01-01 00:00:00+00', prefix => 'A');
SELECT * FROM apikey.apikey_create('x', '{}', prefix => 'A', meta => '[]');

-- nothing was written by any failed call
SELECT count(*) = :keys_before AS no_new_keys FROM apikey.keys;
SELECT count(*) = :audit_before AS no_new_audit FROM apikey.audit;
SELECT count(*) AS named_x FROM apikey.keys WHERE name = 'x';

--
-- the table's own CHECK constraints refuse bad values written by hand
-- (as superuser, past the functions)
--
SELECT key_id AS id, key AS k
  FROM apikey.apikey_create('check target', '{jobs:read}', resources => '{proj_1}') \gset
UPDATE apikey.keys SET scopes = '{Bad}' WHERE id = :id;
UPDATE apikey.keys SET scopes = '{jobs:read,NULL}' WHERE id = :id;
UPDATE apikey.keys SET scopes = '{a::b}' WHERE id = :id;
UPDATE apikey.keys SET scopes = '{""}' WHERE id = :id;
UPDATE apikey.keys SET scopes = '{"jobs:read jobs:write"}' WHERE id = :id;
UPDATE apikey.keys SET scopes = '{jobs:read,""}' WHERE id = :id;
UPDATE apikey.keys SET scopes = '{{a,b},{c,d}}' WHERE id = :id;
UPDATE apikey.keys SET scopes = NULL WHERE id = :id;
UPDATE apikey.keys SET prefix = 'X' WHERE id = :id;
UPDATE apikey.keys SET prefix = 'ab_' WHERE id = :id;
UPDATE apikey.keys SET name = '' WHERE id = :id;
UPDATE apikey.keys SET name = '   ' WHERE id = :id;
UPDATE apikey.keys SET name = repeat('n', 257) WHERE id = :id;
UPDATE apikey.keys SET name = NULL WHERE id = :id;
UPDATE apikey.keys SET owner = repeat('o', 257) WHERE id = :id;
UPDATE apikey.keys SET resources = '{}' WHERE id = :id;
UPDATE apikey.keys SET resources = '{proj_1,NULL}' WHERE id = :id;
UPDATE apikey.keys SET resources = '{""}' WHERE id = :id;
UPDATE apikey.keys SET allowed_cidrs = '{}' WHERE id = :id;
UPDATE apikey.keys SET allowed_cidrs = '{NULL}' WHERE id = :id;
UPDATE apikey.keys SET meta = '[]' WHERE id = :id;
UPDATE apikey.keys SET meta = '1' WHERE id = :id;
UPDATE apikey.keys SET meta = NULL WHERE id = :id;
UPDATE apikey.keys SET rate_limit = 10 WHERE id = :id;
UPDATE apikey.keys SET rate_window = '1 minute' WHERE id = :id;
UPDATE apikey.keys SET rate_limit = 0, rate_window = '1 minute' WHERE id = :id;
UPDATE apikey.keys SET rate_limit = 10, rate_window = '0' WHERE id = :id;
-- (a valid limit set by UPDATE: sql/preload.sql)
-- a name of only whitespace (not just spaces)
UPDATE apikey.keys SET name = E'\t\n ' WHERE id = :id;
-- create and rotate write as the table owner, whom column privileges do not
-- limit: a failing statement's error must not carry the row (and its hash)
-- in a DETAIL
ALTER TABLE apikey.keys ADD CONSTRAINT regress_no_boom CHECK (name <> 'boom');
\set VERBOSITY default
SELECT key_id FROM apikey.apikey_create('boom', '{}');
\set VERBOSITY terse
ALTER TABLE apikey.keys DROP CONSTRAINT regress_no_boom;
UPDATE apikey.keys SET secret_hash = '\x00' WHERE id = :id;
UPDATE apikey.keys SET grace_secret_hash = sha256('x') WHERE id = :id;
UPDATE apikey.keys SET grace_until = now() + interval '1 hour' WHERE id = :id;
UPDATE apikey.keys SET enabled = NULL WHERE id = :id;
-- and valid hand edits go through
UPDATE apikey.keys SET scopes = '{jobs:*,*:read}', resources = NULL, meta = '{"x": 1}'
 WHERE id = :id;
SELECT scopes, resources, meta, prefix, name FROM apikey.keys WHERE id = :id;
SELECT v.code FROM apikey.apikey_verify(:'k', '{jobs:write}', 'anything') v;

--
-- no error message, detail or hint contains a key, wherever it is passed
--
SELECT n, label, e.*
  FROM (VALUES
	(1, 'create: key as prefix',
		format('SELECT * FROM apikey.apikey_create(%L, %L, prefix => %L)', 'x', '{}', :'k')),
	(2, 'create: key as scope',
		format('SELECT * FROM apikey.apikey_create(%L, ARRAY[%L])', 'x', :'k')),
	(3, 'create: key as second scope',
		format('SELECT * FROM apikey.apikey_create(%L, ARRAY[%L, %L])', 'x', 'ok', :'k')),
	(4, 'verify: key as required scope',
		format('SELECT * FROM apikey.apikey_verify(%L, ARRAY[%L])', :'k', :'k')),
	(5, 'verify: key as required scope, bad key',
		format('SELECT * FROM apikey.apikey_verify(%L, ARRAY[%L])', 'garbage', :'k')),
	(6, 'set: key as apikey.default_prefix',
		format('SET apikey.default_prefix = %L', :'k')),
	(7, 'set_config: key as apikey.default_prefix',
		format('SELECT set_config(%L, %L, true)', 'apikey.default_prefix', :'k'))
  ) AS c(n, label, q),
  LATERAL pg_temp.error_of(c.q, :'k') e
 ORDER BY n;
-- the same, as psql shows them
SELECT * FROM apikey.apikey_create('x', '{}', prefix => :'k');
SELECT strpos(:'LAST_ERROR_MESSAGE', substr(:'k', 4, 32)) = 0 AS key_not_in_message;
SELECT * FROM apikey.apikey_create('x', ARRAY[:'k']);
SELECT strpos(:'LAST_ERROR_MESSAGE', substr(:'k', 4, 32)) = 0 AS key_not_in_message;
SELECT v.code FROM apikey.apikey_verify(:'k', ARRAY[:'k']) v;
SELECT strpos(:'LAST_ERROR_MESSAGE', substr(:'k', 4, 32)) = 0 AS key_not_in_message;
SHOW apikey.default_prefix;
