-- hijack.sql: search_path hijacking (SPEC "Privileges and row-level
-- security": every SECURITY DEFINER function pins search_path and
-- schema-qualifies what it uses).
--
-- A hostile manager (pt_hj_evil, member of apikey_manager) owns a schema
-- "evil" with look-alikes of what the extension's code uses: now(),
-- sha256(), digest(), jsonb_build_object(), to_jsonb(), current_setting(),
-- jsonb_object_keys(), int8(), nullif(), and the operators = (bigint,
-- bigint) (always true), = (text, text) (what NULLIF and IS DISTINCT FROM
-- use), = (name, name) (always true), || and <> for jsonb, - (jsonb,
-- text[]) (keeps what it should remove), -> (jsonb, text), + (timestamptz,
-- interval).  Every look-alike records its call in evil.calls and returns
-- a wrong value.  With
--     SET search_path = evil, public, apikey, pg_catalog
-- (evil explicitly before pg_catalog) it creates, rotates, updates,
-- disables and deletes its own keys (firing the audit trigger, which runs
-- as the table owner), tries to rotate another manager's key, and verifies.
-- Everything must come out right and evil.calls must stay empty.  A
-- control first shows that each look-alike does capture an unqualified
-- call under that search_path.
--
-- Finally, as the superuser: every function of schema apikey written in
-- SQL or PL/pgSQL, every SECURITY DEFINER function, and every C function
-- that runs SQL through SPI pins search_path = pg_catalog, pg_temp.
--
-- Needs: CREATE EXTENSION pgtap, pgcrypto, apikey; run as a superuser.
BEGIN;
SELECT plan(26);

CREATE ROLE pt_hj_evil NOLOGIN IN ROLE apikey_manager;
CREATE ROLE pt_hj_victim NOLOGIN IN ROLE apikey_manager;
DO $$
BEGIN
	EXECUTE format('GRANT CREATE ON DATABASE %I TO pt_hj_evil', current_database());
END
$$;

CREATE TEMP TABLE hj_k (
	label	text PRIMARY KEY,
	key_id	bigint NOT NULL,
	key		text NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE hj_out (
	label	text PRIMARY KEY,
	outcome	text
) ON COMMIT DROP;
CREATE TEMP TABLE hj_v (
	label	text PRIMARY KEY,
	code	text,
	key_id	bigint
) ON COMMIT DROP;
CREATE TEMP TABLE hj_seen (
	what	text NOT NULL,
	id		bigint NOT NULL
) ON COMMIT DROP;
GRANT SELECT, INSERT ON hj_k, hj_out, hj_v, hj_seen TO PUBLIC;

-- Helpers pin their own search_path: they are called under the hostile one.
CREATE FUNCTION pg_temp.kid(label text) RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT key_id FROM pg_temp.hj_k WHERE label = $1 $$;

CREATE FUNCTION pg_temp.kkey(label text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT key FROM pg_temp.hj_k WHERE label = $1 $$;

-- run sql under the hostile search_path: "ok: <rows>" or "SQLSTATE: message"
CREATE FUNCTION pg_temp.try(sql text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n bigint;
BEGIN
	BEGIN
		PERFORM pg_catalog.set_config('search_path', 'evil, public, apikey, pg_catalog', true);
		EXECUTE sql;
		GET DIAGNOSTICS n = ROW_COUNT;
	EXCEPTION WHEN OTHERS THEN
		RETURN SQLSTATE || ': ' || SQLERRM;
	END;
	PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
	RETURN 'ok: ' || n::text;
END
$$;

-- the key row as the audit shows it: without its hashes (superuser only)
CREATE FUNCTION pg_temp.row_of(id bigint) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.to_jsonb(k) - ARRAY['secret_hash', 'grace_secret_hash']
	  FROM apikey.keys k WHERE k.id = $1
$$;

------------------------------------------------------------------------
-- The victim's key, made the normal way
------------------------------------------------------------------------
SET ROLE pt_hj_victim;
INSERT INTO pg_temp.hj_k SELECT 'victim', key_id, key
  FROM apikey.apikey_create('pt hj victim', ARRAY['jobs:read']);
RESET ROLE;

------------------------------------------------------------------------
-- The hostile schema
------------------------------------------------------------------------
SET ROLE pt_hj_evil;
CREATE SCHEMA evil;
GRANT USAGE ON SCHEMA evil TO PUBLIC;
CREATE TABLE evil.calls (
	fn		text NOT NULL,
	by_user	name NOT NULL DEFAULT CURRENT_USER,
	args	text
);
GRANT SELECT, INSERT, DELETE ON evil.calls TO PUBLIC;

CREATE FUNCTION evil.now() RETURNS timestamptz
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn) VALUES ('now()');
	RETURN '1999-01-01 00:00:00+00';
END $$;

CREATE FUNCTION evil.sha256(bytea) RETURNS bytea
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn) VALUES ('sha256(bytea)');
	RETURN '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
END $$;

CREATE FUNCTION evil.digest(bytea, text) RETURNS bytea
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn) VALUES ('digest(bytea,text)');
	RETURN '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
END $$;

CREATE FUNCTION evil.digest(text, text) RETURNS bytea
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn) VALUES ('digest(text,text)');
	RETURN '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
END $$;

CREATE FUNCTION evil.jsonb_build_object(text, jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn) VALUES ('jsonb_build_object(text,jsonb)');
	RETURN '{"hijacked": true}';
END $$;

CREATE FUNCTION evil.jsonb_build_object(text, text, text, text, text, timestamptz) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn) VALUES ('jsonb_build_object(text,text,text,text,text,timestamptz)');
	RETURN '{"hijacked": true}';
END $$;

CREATE FUNCTION evil.to_jsonb(apikey.keys) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn) VALUES ('to_jsonb(apikey.keys)');
	RETURN '{"hijacked": true}';
END $$;

CREATE FUNCTION evil.to_jsonb(anyelement) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn) VALUES ('to_jsonb(anyelement)');
	RETURN '{"hijacked": true}';
END $$;

CREATE FUNCTION evil.current_setting(text, boolean) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn, args) VALUES ('current_setting(text,boolean)', $1);
	RETURN '666';
END $$;

CREATE FUNCTION evil.current_setting(text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn, args) VALUES ('current_setting(text)', $1);
	RETURN '666';
END $$;

CREATE FUNCTION evil.jsonb_object_keys(jsonb) RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn) VALUES ('jsonb_object_keys(jsonb)');
	RETURN NEXT 'hijacked';
END $$;

CREATE FUNCTION evil."nullif"(text, text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn) VALUES ('nullif(text,text)');
	RETURN '666';
END $$;

CREATE FUNCTION evil.int8(text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn) VALUES ('int8(text)');
	RETURN 666;
END $$;

-- operators
CREATE FUNCTION evil.eq_int8(bigint, bigint) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn, args) VALUES ('=(bigint,bigint)', $1::text || ' ' || $2::text);
	RETURN true;
END $$;
CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.eq_int8);

CREATE FUNCTION evil.eq_text(text, text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn) VALUES ('=(text,text)');
	RETURN $1 OPERATOR(pg_catalog.=) $2;
END $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.eq_text);

CREATE FUNCTION evil.eq_name(name, name) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn) VALUES ('=(name,name)');
	RETURN true;
END $$;
CREATE OPERATOR evil.= (LEFTARG = name, RIGHTARG = name, FUNCTION = evil.eq_name);

CREATE FUNCTION evil.concat_jsonb(jsonb, jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn) VALUES ('||(jsonb,jsonb)');
	RETURN $1;
END $$;
CREATE OPERATOR evil.|| (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = evil.concat_jsonb);

CREATE FUNCTION evil.ne_jsonb(jsonb, jsonb) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn) VALUES ('<>(jsonb,jsonb)');
	RETURN true;
END $$;
CREATE OPERATOR evil.<> (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = evil.ne_jsonb);

CREATE FUNCTION evil.minus_jsonb(jsonb, text[]) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn) VALUES ('-(jsonb,text[])');
	RETURN $1;		-- removes nothing: the hashes would stay
END $$;
CREATE OPERATOR evil.- (LEFTARG = jsonb, RIGHTARG = text[], FUNCTION = evil.minus_jsonb);

CREATE FUNCTION evil.arrow_jsonb(jsonb, text) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn) VALUES ('->(jsonb,text)');
	RETURN '"hijacked"';
END $$;
CREATE OPERATOR evil.-> (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = evil.arrow_jsonb);

CREATE FUNCTION evil.plus_ts(timestamptz, interval) RETURNS timestamptz
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO evil.calls (fn) VALUES ('+(timestamptz,interval)');
	RETURN '2999-01-01 00:00:00+00';
END $$;
CREATE OPERATOR evil.+ (LEFTARG = timestamptz, RIGHTARG = interval, FUNCTION = evil.plus_ts);
RESET ROLE;

------------------------------------------------------------------------
-- Control: under the hostile search_path, each look-alike does capture an
-- unqualified call (1)
------------------------------------------------------------------------
SET ROLE pt_hj_evil;
SET search_path = evil, public, apikey, pg_catalog;
DO $$
BEGIN
	PERFORM now();
	PERFORM sha256('\x00'::bytea);
	PERFORM digest('\x00'::bytea, 'sha256'::text);
	PERFORM digest('x'::text, 'sha256'::text);
	PERFORM jsonb_build_object('new', '{}'::jsonb);
	PERFORM jsonb_build_object('old_hint', 'a'::text, 'new_hint', 'b'::text, 'grace_until', NULL::timestamptz);
	PERFORM to_jsonb(NULL::apikey.keys);
	PERFORM to_jsonb(1);
	PERFORM current_setting('apikey.key_id', true);
	PERFORM current_setting('search_path');
	PERFORM jsonb_object_keys('{"a": 1}'::jsonb);
	PERFORM "nullif"('a'::text, 'b'::text);
	PERFORM int8('1'::text);
	PERFORM NULLIF('a'::text, 'b'::text);
	PERFORM 1::bigint = 2::bigint;
	PERFORM 'a'::name = 'b'::name;
	PERFORM '{}'::jsonb || '{"a": 1}'::jsonb;
	PERFORM '{}'::jsonb <> '{}'::jsonb;
	PERFORM '{"a": 1}'::jsonb - ARRAY['a'];
	PERFORM '{"a": 1}'::jsonb -> 'a';
	PERFORM '2020-01-01'::timestamptz + interval '1 hour';
END
$$;
RESET search_path;
RESET ROLE;

SELECT set_eq('SELECT DISTINCT fn FROM evil.calls',
	ARRAY['now()', 'sha256(bytea)', 'digest(bytea,text)', 'digest(text,text)',
	      'jsonb_build_object(text,jsonb)', 'jsonb_build_object(text,text,text,text,text,timestamptz)',
	      'to_jsonb(apikey.keys)', 'to_jsonb(anyelement)', 'current_setting(text,boolean)',
	      'current_setting(text)', 'jsonb_object_keys(jsonb)', 'nullif(text,text)', 'int8(text)',
	      '=(text,text)', '=(bigint,bigint)', '=(name,name)', '||(jsonb,jsonb)', '<>(jsonb,jsonb)',
	      '-(jsonb,text[])', '->(jsonb,text)', '+(timestamptz,interval)'],
	'control: under search_path evil, public, apikey, pg_catalog every look-alike captures unqualified calls');
DELETE FROM evil.calls;

------------------------------------------------------------------------
-- Phase 1, hostile search_path: create keys
------------------------------------------------------------------------
CREATE TEMP TABLE hj_mark ON COMMIT DROP AS SELECT COALESCE(max(id), 0) AS id FROM apikey.audit;

-- the owner the manager gives its key is registered to it (1.2)
INSERT INTO apikey.owners (owner, managed_by) VALUES ('org-e', 'pt_hj_evil'), ('pt hj mass update', 'pt_hj_evil');
SET ROLE pt_hj_evil;
SET search_path = evil, public, apikey, pg_catalog;
INSERT INTO pg_temp.hj_k (label, key_id, key)
SELECT 'e1', c.key_id, c.key FROM apikey_create('pt hj e1', ARRAY['jobs:read'], meta => '{"k": "v"}') c;
INSERT INTO pg_temp.hj_k (label, key_id, key)
SELECT 'e2', c.key_id, c.key FROM apikey.apikey_create('pt hj e2', ARRAY['jobs:read']) c;
INSERT INTO pg_temp.hj_k (label, key_id, key)
SELECT 'e3', c.key_id, c.key FROM apikey_create('pt hj e3', '{}', owner => 'org-e', resources => ARRAY['db-1']) c;
INSERT INTO pg_temp.hj_k (label, key_id, key)
SELECT 'e4', c.key_id, c.key
  FROM apikey.apikey_create('pt hj e4', ARRAY['jobs:*'], expires_at => '2100-01-01 00:00:00+00',
                            prefix => 'evil_k', allowed_cidrs => ARRAY['10.0.0.0/8']::cidr[]) c;
RESET search_path;
RESET ROLE;

-- what every key looked like before phase 2 (superuser)
CREATE TEMP TABLE hj_snap ON COMMIT DROP AS
SELECT id, secret_hash, grace_secret_hash, grace_until, hint, rotated_at, name, enabled, owner_role
  FROM apikey.keys;

------------------------------------------------------------------------
-- Phase 2, hostile search_path: rotate, attack, update, delete, verify
------------------------------------------------------------------------
SET ROLE pt_hj_evil;
SET search_path = evil, public, apikey, pg_catalog;
INSERT INTO pg_temp.hj_k (label, key_id, key)
SELECT 'e1r', pg_temp.kid('e1'), apikey_rotate(pg_temp.kid('e1'), '1 hour');
INSERT INTO pg_temp.hj_out
SELECT 'victim rotate', pg_temp.try(pg_catalog.format('SELECT apikey.apikey_rotate(%s)', pg_temp.kid('victim')));
INSERT INTO pg_temp.hj_out SELECT 'current_user after', CURRENT_USER;
UPDATE apikey.keys SET name = 'pt hj e1 renamed', scopes = ARRAY['jobs:write'], meta = '{"k": "w"}'
 WHERE id OPERATOR(pg_catalog.=) pg_temp.kid('e1');
UPDATE apikey.keys SET enabled = false WHERE id OPERATOR(pg_catalog.=) pg_temp.kid('e3');
DELETE FROM apikey.keys WHERE id OPERATOR(pg_catalog.=) pg_temp.kid('e2');
INSERT INTO pg_temp.hj_v SELECT 'e1r', v.code, v.key_id FROM apikey_verify(pg_temp.kkey('e1r'), ARRAY['jobs:write']) v;
INSERT INTO pg_temp.hj_v SELECT 'e1 (in grace)', v.code, v.key_id FROM apikey.apikey_verify(pg_temp.kkey('e1')) v;
INSERT INTO pg_temp.hj_v SELECT 'e2 (deleted)', v.code, v.key_id FROM apikey_verify(pg_temp.kkey('e2')) v;
INSERT INTO pg_temp.hj_v SELECT 'e3 (disabled)', v.code, v.key_id FROM apikey_verify(pg_temp.kkey('e3')) v;
INSERT INTO pg_temp.hj_v SELECT 'e4', v.code, v.key_id FROM apikey_verify(pg_temp.kkey('e4'), ARRAY['jobs:read'], NULL, '10.1.2.3') v;
INSERT INTO pg_temp.hj_v SELECT 'victim', v.code, v.key_id FROM apikey_verify(pg_temp.kkey('victim'), ARRAY['jobs:read']) v;
INSERT INTO pg_temp.hj_v SELECT 'garbage', v.code, v.key_id FROM apikey_verify('ak_garbage') v;
INSERT INTO pg_temp.hj_seen SELECT 'keys', id FROM apikey.keys;
INSERT INTO pg_temp.hj_seen SELECT 'audit', id FROM apikey.audit;
RESET search_path;
RESET ROLE;

------------------------------------------------------------------------
-- Results (superuser, normal search_path)
------------------------------------------------------------------------

-- nothing of evil ran (1)
SELECT is_empty('SELECT fn, by_user, args FROM evil.calls',
	'no look-alike in schema evil was called by the extension');

-- the attack on the victim's key (3)
SELECT is((SELECT outcome FROM pg_temp.hj_out WHERE label = 'victim rotate'),
	format('P0002: api key %s does not exist', pg_temp.kid('victim')),
	'rotating another manager''s key under the hostile search_path still raises P0002');
SELECT is((SELECT outcome FROM pg_temp.hj_out WHERE label = 'current_user after'), 'pt_hj_evil',
	'after that failure the hostile role is itself again (not the table owner)');
SELECT results_eq(
	format('SELECT k.name, k.enabled, k.owner_role::text COLLATE "default", k.secret_hash, k.hint, k.rotated_at, k.grace_until
	          FROM apikey.keys k WHERE k.id = %s', pg_temp.kid('victim')),
	format('SELECT name, enabled, owner_role::text COLLATE "default", secret_hash, hint, rotated_at, grace_until
	          FROM pg_temp.hj_snap WHERE id = %s', pg_temp.kid('victim')),
	'the victim''s key is untouched');

-- rotation touched only the right row, and did it right (3)
SELECT results_eq(
	$$SELECT s.id FROM pg_temp.hj_snap s JOIN apikey.keys k USING (id)
	   WHERE s.secret_hash IS DISTINCT FROM k.secret_hash
	      OR s.grace_secret_hash IS DISTINCT FROM k.grace_secret_hash
	      OR s.grace_until IS DISTINCT FROM k.grace_until
	      OR s.hint IS DISTINCT FROM k.hint
	      OR s.rotated_at IS DISTINCT FROM k.rotated_at
	   ORDER BY s.id$$,
	format('VALUES (%s::bigint)', pg_temp.kid('e1')),
	'the rotation changed the secret of exactly one key, its own');
SELECT results_eq(
	format('SELECT k.secret_hash, k.grace_secret_hash, k.grace_until, k.rotated_at
	          FROM apikey.keys k WHERE k.id = %s', pg_temp.kid('e1')),
	format($$SELECT sha256(convert_to(%L, 'UTF8')), s.secret_hash, now() + interval '1 hour', now()
	          FROM pg_temp.hj_snap s WHERE s.id = %s$$, pg_temp.kkey('e1r'), pg_temp.kid('e1')),
	'the rotated key stores SHA-256 of the new key, keeps the old hash for the grace, with the real now()');
SELECT results_eq(
	$$SELECT t.label, k.created_at, k.secret_hash = sha256(convert_to(t.key, 'UTF8'))
	    FROM pg_temp.hj_k t JOIN apikey.keys k ON k.id = t.key_id
	   WHERE t.label IN ('e3', 'e4') ORDER BY t.label$$,
	$$VALUES ('e3', now(), true), ('e4', now(), true)$$,
	'keys created under the hostile search_path have the real created_at and the real SHA-256');

-- verification (1)
SELECT results_eq('SELECT label, code, key_id FROM pg_temp.hj_v ORDER BY label',
	format($$VALUES ('e1 (in grace)', 'VALID', %1$s::bigint), ('e1r', 'VALID', %1$s),
	                ('e2 (deleted)', 'NOT_FOUND', NULL), ('e3 (disabled)', 'DISABLED', %2$s),
	                ('e4', 'VALID', %3$s), ('garbage', 'MALFORMED', NULL), ('victim', 'VALID', %4$s)$$,
	       pg_temp.kid('e1'), pg_temp.kid('e3'), pg_temp.kid('e4'), pg_temp.kid('victim')),
	'apikey_verify under the hostile search_path gives the right codes');

-- row-level security still holds (2)
SELECT set_eq($$SELECT id FROM pg_temp.hj_seen WHERE what = 'keys'$$,
	$$SELECT id FROM apikey.keys WHERE owner_role = 'pt_hj_evil'$$,
	'under the hostile search_path (= (name, name) always true) the manager sees only its own keys');
SELECT is_empty($$SELECT a.id FROM pg_temp.hj_seen s JOIN apikey.audit a ON a.id = s.id
	WHERE s.what = 'audit' AND a.key_owner_role <> 'pt_hj_evil'$$,
	'and only its own keys'' audit rows');

-- the audit trail of both phases (7)
SELECT results_eq(
	$$SELECT a.action, t.label, a.key_owner_role::text COLLATE "default",
	         a.actor_current_user::text COLLATE "default", a.actor_session_user::text COLLATE "default",
	         a.acting_key_id
	    FROM apikey.audit a JOIN pg_temp.hj_k t ON t.key_id = a.key_id AND t.label IN ('e1', 'e2', 'e3', 'e4')
	   WHERE a.id > (SELECT id FROM pg_temp.hj_mark) ORDER BY a.id$$,
	format($$VALUES ('create', 'e1', 'pt_hj_evil', 'pt_hj_evil', %1$L, NULL::bigint),
	                ('create', 'e2', 'pt_hj_evil', 'pt_hj_evil', %1$L, NULL),
	                ('create', 'e3', 'pt_hj_evil', 'pt_hj_evil', %1$L, NULL),
	                ('create', 'e4', 'pt_hj_evil', 'pt_hj_evil', %1$L, NULL),
	                ('rotate', 'e1', 'pt_hj_evil', 'pt_hj_evil', %1$L, NULL),
	                ('update', 'e1', 'pt_hj_evil', 'pt_hj_evil', %1$L, NULL),
	                ('disable', 'e3', 'pt_hj_evil', 'pt_hj_evil', %1$L, NULL),
	                ('delete', 'e2', 'pt_hj_evil', 'pt_hj_evil', %1$L, NULL)$$, session_user),
	'the audit has exactly the 8 expected rows, right actions, actors, owners, and acting_key_id NULL (not 666)');
SELECT is((SELECT detail FROM apikey.audit WHERE key_id = pg_temp.kid('e4') AND action = 'create'),
	jsonb_build_object('new', pg_temp.row_of(pg_temp.kid('e4'))),
	'create detail is the whole new row without hashes');
SELECT is((SELECT detail -> 'old' FROM apikey.audit WHERE key_id = pg_temp.kid('e2') AND action = 'delete'),
	(SELECT detail -> 'new' FROM apikey.audit WHERE key_id = pg_temp.kid('e2') AND action = 'create'),
	'delete detail->old is the row as created (nothing hijacked in between)');
SELECT is((SELECT detail FROM apikey.audit WHERE key_id = pg_temp.kid('e1') AND action = 'rotate'
	          AND id > (SELECT id FROM pg_temp.hj_mark)),
	jsonb_build_object('old_hint', (SELECT hint FROM pg_temp.hj_snap WHERE id = pg_temp.kid('e1')),
	                   'new_hint', (SELECT hint FROM apikey.keys WHERE id = pg_temp.kid('e1')),
	                   'grace_until', now() + interval '1 hour'),
	'rotate detail: old_hint, new_hint, the real grace_until');
SELECT is((SELECT detail FROM apikey.audit WHERE key_id = pg_temp.kid('e1') AND action = 'update'
	          AND id > (SELECT id FROM pg_temp.hj_mark)),
	'{"old": {"meta": {"k": "v"}, "name": "pt hj e1", "scopes": ["jobs:read"]},
	  "new": {"meta": {"k": "w"}, "name": "pt hj e1 renamed", "scopes": ["jobs:write"]}}'::jsonb,
	'update detail: exactly the changed columns, old and new');
SELECT is((SELECT detail FROM apikey.audit WHERE key_id = pg_temp.kid('e3') AND action = 'disable'
	          AND id > (SELECT id FROM pg_temp.hj_mark)),
	'{"old": {"enabled": true}, "new": {"enabled": false}}'::jsonb,
	'disable detail: old and new enabled');
SELECT is_empty($$
	SELECT a.id FROM apikey.audit a, pg_temp.hj_k t
	 WHERE a.id > (SELECT id FROM pg_temp.hj_mark)
	   AND (a.detail::text ~ 'secret_hash|hijacked'
	        OR strpos(a.detail::text, t.key) > 0
	        OR strpos(a.detail::text, encode(sha256(convert_to(t.key, 'UTF8')), 'hex')) > 0)
$$, 'no audit detail holds a hash column, a key, a hash, or anything from evil');

------------------------------------------------------------------------
-- The hostile role's own leaky operator cannot see past row-level
-- security (3)
------------------------------------------------------------------------
DELETE FROM evil.calls;
SET ROLE pt_hj_evil;
SET search_path = evil, public, apikey, pg_catalog;
UPDATE apikey.keys SET owner = 'pt hj mass update' WHERE id = 0::bigint;
RESET search_path;
RESET ROLE;
SELECT isnt_empty($$SELECT 1 FROM evil.calls WHERE fn = '=(bigint,bigint)'$$,
	'control: the hostile UPDATE did use evil.= (bigint, bigint), which is always true');
SELECT set_eq($$SELECT id FROM apikey.keys WHERE owner = 'pt hj mass update'$$,
	$$SELECT id FROM apikey.keys WHERE owner_role = 'pt_hj_evil'$$,
	'an always-true WHERE updates only the hostile role''s own keys');
SELECT is_empty(format($$SELECT args FROM evil.calls
	WHERE fn = '=(bigint,bigint)' AND split_part(args, ' ', 1)::bigint = %s$$, pg_temp.kid('victim')),
	'the leaky operator never saw the victim''s row (policies run before it)');

------------------------------------------------------------------------
-- pg_proc: pinned search_path (3)
------------------------------------------------------------------------
SELECT is_empty($$
	SELECT p.oid::regprocedure::text, p.proconfig
	  FROM pg_catalog.pg_proc p
	 WHERE p.pronamespace = 'apikey'::regnamespace AND p.prosecdef
	   AND NOT COALESCE('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
$$, 'every SECURITY DEFINER function in schema apikey has search_path=pg_catalog, pg_temp');
SELECT is_empty($$
	SELECT p.oid::regprocedure::text, l.lanname, p.proconfig
	  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid = p.prolang
	 WHERE p.pronamespace = 'apikey'::regnamespace AND l.lanname IN ('sql', 'plpgsql')
	   AND NOT COALESCE('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
$$, 'every SQL and PL/pgSQL function in schema apikey has search_path=pg_catalog, pg_temp');
-- C functions that run SQL through SPI (grep SPI_ / apikey_actor_begin in
-- src/): apikey_create, apikey_rotate (manage.c), apikey_keys_audit (audit.c)
SELECT is_empty($$
	SELECT p.oid::regprocedure::text, p.prosrc, p.proconfig
	  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid = p.prolang
	 WHERE p.pronamespace = 'apikey'::regnamespace AND l.lanname = 'c'
	   AND p.prosrc IN ('apikey_create', 'apikey_rotate', 'apikey_keys_audit')
	   AND NOT COALESCE('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
$$, 'every C function in schema apikey that runs SQL through SPI has search_path=pg_catalog, pg_temp');

-- The README's advice for unqualified calls: apikey FIRST on the path.  A
-- role that can create in public defines a look-alike apikey_verify with the
-- exact signature; with apikey first, the real one is still the one called.
RESET ROLE;
RESET search_path;
CREATE ROLE pt_hj_app NOLOGIN IN ROLE apikey_verifier;
GRANT CREATE ON SCHEMA public TO pt_hj_evil;
SET ROLE pt_hj_evil;
CREATE FUNCTION public.apikey_verify(key text, required_scopes text[] DEFAULT '{}',
		resource text DEFAULT NULL, client_addr inet DEFAULT NULL)
	RETURNS TABLE (valid boolean, code text)
	LANGUAGE sql AS $$ SELECT true, 'HIJACKED' $$;
GRANT EXECUTE ON FUNCTION public.apikey_verify(text, text[], text, inet) TO PUBLIC;
RESET ROLE;
SET ROLE pt_hj_app;
SET search_path = apikey, "$user", public;
SELECT is((SELECT v.code FROM apikey_verify('not a key', '{}') v), 'MALFORMED',
	'with search_path = apikey, "$user", public the real apikey_verify is called');
SET search_path = "$user", public, apikey;
SELECT is((SELECT v.code FROM apikey_verify('not a key', '{}') v), 'HIJACKED',
	'(the order "$user", public, apikey does let public win: why the README says apikey first)');
RESET search_path;
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
