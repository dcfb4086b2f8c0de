\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
-- without shared_preload_libraries a backend's first verification warns
-- that nothing is tracked (sql/preload.sql tests that): take it here,
-- unshown, so this file's output is the same with and without preload
SET client_min_messages = error;
SELECT v.code AS first_verification FROM apikey.apikey_verify('') v;
SET client_min_messages = warning;
--
-- apikey.postgrest_pre_request(): what PostgREST gets for each outcome, in
-- both error forms; the identity it records and when that is gone; the
-- path scopes; JWT and anonymous requests; db_role.  Requests are set up
-- the way PostgREST does it: set_config(..., true) of request.method,
-- request.path, request.headers and request.jwt.claims inside a
-- transaction (test/postgrest replays whole PostgREST transactions).
--

CREATE ROLE regress_pgrst_anon NOLOGIN IN ROLE apikey_verifier;
CREATE ROLE regress_pgrst_reader NOLOGIN IN ROLE apikey_verifier;
CREATE ROLE regress_pgrst_super SUPERUSER NOLOGIN;
CREATE ROLE regress_pgrst_bypass BYPASSRLS NOLOGIN;
CREATE ROLE regress_pgrst_mgr NOLOGIN IN ROLE apikey_manager;
GRANT regress_pgrst_anon TO regress_pgrst_mgr;
-- roles a key must never become, however it gets there
CREATE ROLE regress_pgrst_creator CREATEROLE NOLOGIN;
CREATE ROLE regress_pgrst_in_super NOLOGIN IN ROLE regress_pgrst_super;
CREATE ROLE regress_pgrst_reads_all NOLOGIN IN ROLE pg_read_all_data;
CREATE ROLE regress_pgrst_noinherit_admin NOINHERIT NOLOGIN IN ROLE apikey_admin;
CREATE ROLE regress_pgrst_programs NOLOGIN IN ROLE pg_execute_server_program;

-- pg_temp.req(method, path, headers, claims): PostgREST's set_config calls
CREATE FUNCTION pg_temp.req(method text, path text, headers jsonb,
							claims text DEFAULT '{"role":"regress_pgrst_anon"}')
RETURNS void LANGUAGE sql AS $$
	SELECT set_config('role', 'regress_pgrst_anon', true),
		   set_config('request.jwt.claims', claims, true),
		   set_config('request.method', method, true),
		   set_config('request.path', path, true),
		   set_config('request.headers', headers::text, true),
		   set_config('request.cookies', '{}', true);
$$;
CREATE TEMP TABLE pr_keys (tag text PRIMARY KEY, id bigint, key text);
INSERT INTO pr_keys SELECT 'main', key_id, key
  FROM apikey.apikey_create('pgrst main', '{todos:read,rpc:whoami}', owner => 'acme');
INSERT INTO pr_keys SELECT 'writer', key_id, key
  FROM apikey.apikey_create('pgrst writer', '{todos:write}', owner => 'globex');
INSERT INTO pr_keys SELECT 'reader', key_id, key
  FROM apikey.apikey_create('pgrst reader', '{*}', owner => 'acme', db_role => 'regress_pgrst_reader');
INSERT INTO pr_keys SELECT 'off', key_id, key FROM apikey.apikey_create('pgrst off', '{}');
UPDATE apikey.keys SET enabled = false WHERE id = (SELECT id FROM pr_keys WHERE tag = 'off');
INSERT INTO pr_keys SELECT 'old', key_id, key FROM apikey.apikey_create('pgrst old', '{}');
UPDATE apikey.keys SET expires_at = '2000-01-01' WHERE id = (SELECT id FROM pr_keys WHERE tag = 'old');
INSERT INTO pr_keys SELECT 'net', key_id, key
  FROM apikey.apikey_create('pgrst net', '{}', allowed_cidrs => '{10.0.0.0/8}');
INSERT INTO pr_keys SELECT 'gone', key_id, key FROM apikey.apikey_create('pgrst gone', '{}');
DELETE FROM apikey.keys WHERE id = (SELECT id FROM pr_keys WHERE tag = 'gone');
INSERT INTO pr_keys SELECT 'rot', key_id, key FROM apikey.apikey_create('pgrst rot', '{}', owner => 'rot');
INSERT INTO pr_keys SELECT 'rot-new', id, apikey.apikey_rotate(id, '1 hour') FROM pr_keys WHERE tag = 'rot';
SELECT key AS main FROM pr_keys WHERE tag = 'main' \gset
-- the request roles read it in pg_temp.identity()
GRANT SELECT ON pr_keys TO regress_pgrst_anon, regress_pgrst_reader;
-- pg_temp.identity(): what the rest of the transaction sees
CREATE FUNCTION pg_temp.identity(OUT role name, OUT key_ok boolean, OUT owner text,
								 OUT read boolean, OUT write boolean,
								 OUT setting_ok boolean, OUT scopes text)
LANGUAGE sql AS $$
	SELECT current_user, apikey.current_key_id() = (SELECT id FROM pg_temp.pr_keys WHERE tag = 'main'),
		   apikey.current_owner(), apikey.has_scope('todos:read'), apikey.has_scope('todos:write'),
		   current_setting('apikey.key_id', true) = apikey.current_key_id()::text,
		   current_setting('apikey.scopes', true)
$$;


--
-- VALID: the identity, for the rest of the transaction only
--
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT pg_temp.req('GET', '/todos', jsonb_build_object('x-api-key', :'main', 'accept', '*/*'));
SELECT apikey.postgrest_pre_request();
SELECT * FROM pg_temp.identity();
COMMIT;
SELECT * FROM pg_temp.identity();
SELECT current_setting('apikey.key_id') = '' AS key_id_cleared,
	   current_setting('apikey.owner') = '' AS owner_cleared,
	   current_setting('apikey.scopes') = '' AS scopes_cleared;
-- gone at ABORT too, and at the rollback of the savepoint that set it
BEGIN;
SELECT pg_temp.req('GET', '/todos', jsonb_build_object('x-api-key', :'main'));
SELECT apikey.postgrest_pre_request();
SELECT key_ok FROM pg_temp.identity();
ABORT;
SELECT key_ok FROM pg_temp.identity();
BEGIN;
SAVEPOINT s;
SELECT pg_temp.req('GET', '/todos', jsonb_build_object('x-api-key', :'main'));
SELECT apikey.postgrest_pre_request();
SELECT key_ok FROM pg_temp.identity();
ROLLBACK TO SAVEPOINT s;
SELECT key_ok FROM pg_temp.identity();
COMMIT;
-- once per transaction, as PostgREST calls it: a second key would mix
-- with the first one's db_role
BEGIN;
SELECT pg_temp.req('GET', '/todos', jsonb_build_object('x-api-key', :'main'));
SELECT apikey.postgrest_pre_request();
SAVEPOINT s;
SELECT apikey.postgrest_pre_request();
ROLLBACK TO SAVEPOINT s;
SELECT key_ok FROM pg_temp.identity();
ROLLBACK;
-- a refused call leaves nothing behind, and a key that is sent is checked
-- even beside a JWT's claims
BEGIN;
SAVEPOINT s;
SELECT pg_temp.req('GET', '/todos', '{"x-api-key": "ak_nope"}', '{"role":"x","sub":"y"}');
SELECT apikey.postgrest_pre_request();
ROLLBACK TO SAVEPOINT s;
SELECT key_ok FROM pg_temp.identity();
ROLLBACK;

--
-- Every refusal, as PostgREST 12+ gets it: SQLSTATE PGRST, a JSON body,
-- a JSON detail with status and headers.  Never the key.
--
BEGIN;
SELECT pg_temp.req('GET', '/todos', '{"x-api-key": "ak_0000000000000000000000000000000000000"}');
SELECT apikey.postgrest_pre_request();
ROLLBACK;
-- q_<tag>: one request with the key <tag>, left open
SELECT max(q) FILTER (WHERE tag = 'off') AS q_off, max(q) FILTER (WHERE tag = 'old') AS q_old,
	   max(q) FILTER (WHERE tag = 'net') AS q_net, max(q) FILTER (WHERE tag = 'gone') AS q_gone,
	   max(q) FILTER (WHERE tag = 'rot') AS q_rot
  FROM (SELECT tag, format('BEGIN; SELECT pg_temp.req(%L, %L, %L); SELECT apikey.postgrest_pre_request();',
						   'GET', '/todos', jsonb_build_object('x-api-key', key)) AS q
		  FROM pr_keys) r \gset
:q_gone
ROLLBACK;
:q_off
ROLLBACK;
:q_old
ROLLBACK;
:q_net
ROLLBACK;
-- the previous secret of a rotated key works through its grace period
:q_rot
SELECT owner FROM pg_temp.identity();
ROLLBACK;
-- no key at all
BEGIN;
SELECT pg_temp.req('GET', '/todos', '{"accept": "*/*"}');
SELECT apikey.postgrest_pre_request();
ROLLBACK;
-- empty, not a string, too long
BEGIN;
SELECT pg_temp.req('GET', '/todos', '{"x-api-key": ""}');
SELECT apikey.postgrest_pre_request();
ROLLBACK;
BEGIN;
SELECT pg_temp.req('GET', '/todos', '{"x-api-key": 42}');
SELECT apikey.postgrest_pre_request();
ROLLBACK;
BEGIN;
SELECT pg_temp.req('GET', '/todos', jsonb_build_object('x-api-key', :'main' || repeat('x', 10000)));
SELECT apikey.postgrest_pre_request();
ROLLBACK;
-- a header object that holds the key twice (PostgREST keeps only the last
-- of repeated headers; anyone else sending two is refused)
BEGIN;
SELECT set_config('request.headers', format('{"x-api-key": %s, "X-Api-Key": %s}',
										   to_json(:'main'::text), to_json(:'main'::text)), true) IS NOT NULL AS set;
SELECT apikey.postgrest_pre_request();
ROLLBACK;
-- unreadable request.headers: refused, and the parser's error (which would
-- quote the input) is not shown
BEGIN;
SELECT set_config('request.headers', format('{"x-api-key": %s', to_json(:'main'::text)), true) IS NOT NULL AS set;
SELECT apikey.postgrest_pre_request();
ROLLBACK;
-- header names are matched without regard to case
BEGIN;
SELECT set_config('request.headers', jsonb_build_object('X-API-Key', :'main')::text, true) IS NOT NULL AS set;
SELECT apikey.postgrest_pre_request();
SELECT key_ok FROM pg_temp.identity();
ROLLBACK;

--
-- PostgREST 11: apikey.postgrest_errors = plain raises PTxyz
--
SET apikey.postgrest_errors = plain;
BEGIN;
SELECT pg_temp.req('GET', '/todos', '{}');
SELECT apikey.postgrest_pre_request();
ROLLBACK;
:q_off
ROLLBACK;
:q_net
ROLLBACK;
RESET apikey.postgrest_errors;

--
-- JWT requests pass untouched; anonymous ones per apikey.require_key
--
BEGIN;
SELECT pg_temp.req('GET', '/todos', '{}', '{"role": "regress_pgrst_anon", "sub": "user-1"}');
SELECT apikey.postgrest_pre_request();
SELECT * FROM pg_temp.identity();
ROLLBACK;
SET apikey.require_key = off;
BEGIN;
SELECT pg_temp.req('GET', '/todos', '{}');
SELECT apikey.postgrest_pre_request();
SELECT * FROM pg_temp.identity();
ROLLBACK;
-- a key that is sent is checked, required or not
:q_off
ROLLBACK;
RESET apikey.require_key;

--
-- apikey.postgrest_scopes = path
--
SET apikey.postgrest_scopes = path;
CREATE TEMP TABLE paths (n int, method text, path text);
INSERT INTO paths VALUES
	(1, 'GET', '/todos'), (2, 'HEAD', '/todos'), (3, 'POST', '/todos'),
	(4, 'PATCH', '/todos'), (5, 'DELETE', '/todos'), (6, 'GET', '/rpc/whoami'),
	(7, 'POST', '/rpc/whoami'), (8, 'GET', '/rpc/other'), (9, 'GET', '/'),
	(10, 'GET', '/Todos'), (11, 'GET', '/todos/1'), (12, 'GET', '/rpc/'),
	(13, 'GET', ''), (14, 'GET', '/users');
-- pg_temp.try(key, method, path[, headers]): 'ok' or the refusal's code
-- and status
CREATE FUNCTION pg_temp.try(key text, method text, path text, headers jsonb DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	msg text;
	det text;
BEGIN
	PERFORM pg_temp.req(method, path, headers || jsonb_build_object('x-api-key', key));
	PERFORM apikey.postgrest_pre_request();
	-- undo the request's settings, as the end of its transaction would
	RAISE SQLSTATE 'AKOK0';
EXCEPTION WHEN SQLSTATE 'AKOK0' THEN
	RETURN 'ok';
WHEN SQLSTATE 'PGRST' THEN
	GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
	RETURN (msg::jsonb ->> 'code') || ' ' || (det::jsonb ->> 'status')
		   || coalesce(' (' || (msg::jsonb ->> 'details') || ')', '');
END
$$;
SELECT n, method, path,
	   pg_temp.try((SELECT key FROM pr_keys WHERE tag = 'main'), method, path) AS "todos:read rpc:whoami",
	   pg_temp.try((SELECT key FROM pr_keys WHERE tag = 'writer'), method, path) AS "todos:write"
  FROM paths ORDER BY n;
RESET apikey.postgrest_scopes;

--
-- db_role: the hook switches to it, as PostgREST does for a JWT role
--
SELECT key AS reader FROM pr_keys WHERE tag = 'reader' \gset
BEGIN;
SELECT pg_temp.req('GET', '/todos', jsonb_build_object('x-api-key', :'reader'));
SELECT apikey.postgrest_pre_request();
SELECT role, owner, read, write FROM pg_temp.identity();
COMMIT;
SELECT current_user;
-- a role that became unusable after the key was made is refused at request
-- time: the client is told only that the key cannot be used
ALTER ROLE regress_pgrst_reader BYPASSRLS;
BEGIN;
SELECT pg_temp.req('GET', '/todos', jsonb_build_object('x-api-key', :'reader'));
SELECT apikey.postgrest_pre_request();
ROLLBACK;
ALTER ROLE regress_pgrst_reader NOBYPASSRLS;
GRANT regress_pgrst_super TO regress_pgrst_reader;
SELECT pg_temp.try(:'reader', 'GET', '/todos');
REVOKE regress_pgrst_super FROM regress_pgrst_reader;
-- and so is a key whose owner is no longer a member of its db_role
CREATE ROLE regress_pgrst_owner NOLOGIN IN ROLE apikey_manager, regress_pgrst_reader;
SET ROLE regress_pgrst_owner;
SELECT key AS owned FROM apikey.apikey_create('owned', '{}', db_role => 'regress_pgrst_reader') \gset
RESET ROLE;
SELECT pg_temp.try(:'owned', 'GET', '/todos');
REVOKE regress_pgrst_reader FROM regress_pgrst_owner;
SELECT pg_temp.try(:'owned', 'GET', '/todos');
DELETE FROM apikey.keys WHERE owner_role = 'regress_pgrst_owner';
-- who may set which db_role
SELECT * FROM apikey.apikey_create('x', '{}', db_role => 'regress_pgrst_super');
SELECT * FROM apikey.apikey_create('x', '{}', db_role => 'regress_pgrst_bypass');
SELECT * FROM apikey.apikey_create('x', '{}', db_role => 'apikey_verifier');
SELECT * FROM apikey.apikey_create('x', '{}', db_role => 'regress_pgrst_mgr');
SELECT * FROM apikey.apikey_create('x', '{}', db_role => 'regress_no_such_role');
SELECT * FROM apikey.apikey_create('x', '{}', db_role => 'regress_pgrst_creator');
SELECT * FROM apikey.apikey_create('x', '{}', db_role => 'regress_pgrst_in_super');
SELECT * FROM apikey.apikey_create('x', '{}', db_role => 'regress_pgrst_reads_all');
SELECT * FROM apikey.apikey_create('x', '{}', db_role => 'regress_pgrst_noinherit_admin');
SELECT * FROM apikey.apikey_create('x', '{}', db_role => 'regress_pgrst_programs');
-- a key pasted into the wrong argument is not quoted back
SELECT * FROM apikey.apikey_create('x', '{}', db_role => :'main');
SET ROLE regress_pgrst_mgr;
SELECT key_id AS mgr_key FROM apikey.apikey_create('mgr key', '{}', db_role => 'regress_pgrst_anon') \gset
SELECT * FROM apikey.apikey_create('x', '{}', db_role => 'regress_pgrst_reader');
UPDATE apikey.keys SET db_role = 'regress_pgrst_reader' WHERE id = :mgr_key;
UPDATE apikey.keys SET db_role = NULL WHERE id = :mgr_key;
SELECT id = :mgr_key AS mine, db_role FROM apikey.key_status;
RESET ROLE;
UPDATE apikey.keys SET db_role = 'regress_pgrst_super' WHERE id = :mgr_key;
UPDATE apikey.keys SET db_role = 'regress_pgrst_reader' WHERE id = :mgr_key;
SELECT action, detail -> 'old' -> 'db_role' AS old_db_role,
	   detail -> 'new' -> 'db_role' AS new_db_role
  FROM apikey.audit WHERE key_id = :mgr_key ORDER BY id;

--
-- a change made inside a key-authenticated request names that key
--
BEGIN;
SELECT pg_temp.req('PATCH', '/keys', jsonb_build_object('x-api-key', :'main'));
SELECT apikey.postgrest_pre_request();
RESET ROLE;
UPDATE apikey.keys SET name = 'renamed in a request' WHERE id = :mgr_key;
COMMIT;
SELECT action, acting_key_id = (SELECT id FROM pr_keys WHERE tag = 'main') AS acting_key_named
  FROM apikey.audit WHERE key_id = :mgr_key ORDER BY id DESC LIMIT 1;

--
-- nobody sets the identity but the hook
--
SET apikey.key_id = '1';
SELECT set_config('apikey.owner', 'acme', true);
SELECT set_config('apikey.scopes', '{*}', false);
ALTER ROLE regress_pgrst_anon SET apikey.key_id = '1';
ALTER DATABASE contrib_regression SET apikey.owner = 'acme';
RESET apikey.key_id;
SET ROLE regress_pgrst_anon;
SET apikey.require_key = off;
SET apikey.postgrest_scopes = off;
SET apikey.header = 'x-other';
RESET ROLE;
-- the settings a superuser may set, and what they accept
SET apikey.header = 'bad header';
SET apikey.client_addr_header = 'x real ip';
SET apikey.postgrest_scopes = 'table';
SET apikey.postgrest_errors = json;

--
-- client address from a trusted proxy's header (apikey.client_addr_header)
--
SET apikey.client_addr_header = 'X-Forwarded-For';
SELECT key AS net FROM pr_keys WHERE tag = 'net' \gset
SELECT h, pg_temp.try(:'net', 'GET', '/todos', h) AS result
  FROM (VALUES ('{}'::jsonb), ('{"x-forwarded-for": "10.1.2.3"}'),
			   ('{"x-forwarded-for": "192.0.2.1, 10.1.2.3"}'), ('{"x-forwarded-for": "10.1.2.3, 192.0.2.1"}'),
			   ('{"x-forwarded-for": "::ffff:10.1.2.3"}'), ('{"x-forwarded-for": "10.1.2.3/8"}'),
			   ('{"x-forwarded-for": "not an address"}')) AS t(h);
RESET apikey.client_addr_header;

--
-- the helpers, outside any request
--
SELECT apikey.current_key_id(), apikey.current_owner(), apikey.has_scope('todos:read');
SELECT apikey.has_scope('Not A Scope');
SELECT apikey.has_scope(NULL);

DELETE FROM apikey.keys WHERE id IN (SELECT id FROM pr_keys) OR id = :mgr_key;
DROP TABLE pr_keys;
DROP ROLE regress_pgrst_anon, regress_pgrst_reader, regress_pgrst_super,
	regress_pgrst_bypass, regress_pgrst_mgr, regress_pgrst_creator,
	regress_pgrst_in_super, regress_pgrst_reads_all,
	regress_pgrst_noinherit_admin, regress_pgrst_programs, regress_pgrst_owner;
