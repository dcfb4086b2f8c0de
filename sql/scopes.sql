\set VERBOSITY terse
SET client_min_messages = warning;
-- without shared_preload_libraries a backend's first verification warns
-- that nothing is tracked (sql/preload.sql tests that): take it here,
-- unshown, so this file's output is the same with and without preload
SET client_min_messages = error;
SELECT v.code AS first_verification FROM apikey.apikey_verify('') v;
SET client_min_messages = warning;
--
-- Scope matching through real keys: one key per granted set, every case
-- verified with apikey_verify.  expect is what the contract says.
--
CREATE TEMP TABLE cases (n int PRIMARY KEY, granted text[], required text[], expect text, why text);
INSERT INTO cases VALUES
	-- exact match, read does not imply write
	(1, '{jobs:read}', '{jobs:read}', 'VALID', 'exact'),
	(2, '{jobs:read}', '{jobs:write}', 'INSUFFICIENT_SCOPE', 'read does not imply write'),
	(3, '{jobs:read}', '{jobs}', 'INSUFFICIENT_SCOPE', 'longer grant is not a prefix grant'),
	(4, '{jobs:read}', '{jobs:read:x}', 'INSUFFICIENT_SCOPE', 'no implicit sub-scopes'),
	(5, '{jobs:read}', '{jobs:*}', 'INSUFFICIENT_SCOPE', 'required * is literal'),
	(6, '{jobs:read}', '{*}', 'INSUFFICIENT_SCOPE', 'required * only by granted *'),
	(7, '{jobs:read}', '{}', 'VALID', 'nothing required'),
	(8, '{jobs:read}', '{billing:read}', 'INSUFFICIENT_SCOPE', 'other resource'),
	(9, '{jobs:read}', '{read:jobs}', 'INSUFFICIENT_SCOPE', 'segment order matters'),
	(10, '{jobs:read}', '{jobs:read,jobs:read}', 'VALID', 'duplicate required'),
	(11, '{jobs:read}', '{jobs:read,jobs:write}', 'INSUFFICIENT_SCOPE', 'all required must match'),
	(12, '{jobs:read}', '{jobs:reader}', 'INSUFFICIENT_SCOPE', 'whole segments only'),
	(13, '{jobs:read}', '{job:read}', 'INSUFFICIENT_SCOPE', 'whole segments only'),
	-- write implies read, level last
	(14, '{jobs:write}', '{jobs:write}', 'VALID', 'exact'),
	(15, '{jobs:write}', '{jobs:read}', 'VALID', 'write implies read (last)'),
	(16, '{jobs:write}', '{jobs:read,jobs:write}', 'VALID', 'write covers both'),
	(17, '{jobs:write}', '{jobs}', 'INSUFFICIENT_SCOPE', 'prefix-ness'),
	(18, '{jobs:write}', '{jobs:delete}', 'INSUFFICIENT_SCOPE', 'write implies only read'),
	(19, '{jobs:write}', '{jobs:readonly}', 'INSUFFICIENT_SCOPE', 'only the word read'),
	(20, '{jobs:write}', '{read:jobs}', 'INSUFFICIENT_SCOPE', 'naming orders do not cross'),
	(21, '{jobs:write}', '{jobs:read:x}', 'INSUFFICIENT_SCOPE', 'level must be last'),
	(22, '{jobs:write}', '{billing:read}', 'INSUFFICIENT_SCOPE', 'other segments must match'),
	(23, '{jobs:writer}', '{jobs:read}', 'INSUFFICIENT_SCOPE', 'only the word write'),
	-- write implies read, level first
	(24, '{write:databases}', '{read:databases}', 'VALID', 'write implies read (first)'),
	(25, '{write:databases}', '{write:databases}', 'VALID', 'exact'),
	(26, '{write:databases}', '{read:backups}', 'INSUFFICIENT_SCOPE', 'other segments must match'),
	(27, '{write:databases}', '{databases:read}', 'INSUFFICIENT_SCOPE', 'naming orders do not cross'),
	(28, '{write:databases}', '{read}', 'INSUFFICIENT_SCOPE', 'no prefix grant'),
	(29, '{write:databases}', '{read:databases:x}', 'INSUFFICIENT_SCOPE', 'no implicit sub-scopes'),
	(30, '{read:databases}', '{write:databases}', 'INSUFFICIENT_SCOPE', 'read does not imply write'),
	(31, '{read:databases}', '{read:databases}', 'VALID', 'exact'),
	-- the level alone
	(32, '{write}', '{read}', 'VALID', 'write implies read (one segment)'),
	(33, '{write}', '{write}', 'VALID', 'exact'),
	(34, '{write}', '{read:x}', 'INSUFFICIENT_SCOPE', 'no prefix grant'),
	(35, '{write}', '{x:read}', 'INSUFFICIENT_SCOPE', 'no prefix grant'),
	(36, '{write}', '{*}', 'INSUFFICIENT_SCOPE', 'required * only by granted *'),
	(37, '{read}', '{write}', 'INSUFFICIENT_SCOPE', 'read does not imply write'),
	(38, '{read}', '{read}', 'VALID', 'exact'),
	-- middle segment is not a level
	(39, '{jobs:write:x}', '{jobs:read:x}', 'INSUFFICIENT_SCOPE', 'middle segment is not a level'),
	(40, '{jobs:write:x}', '{jobs:write:x}', 'VALID', 'exact'),
	(41, '{jobs:read:write}', '{jobs:read:read}', 'VALID', 'last segment is the level'),
	(42, '{jobs:read:write}', '{jobs:write:write}', 'INSUFFICIENT_SCOPE', 'middle read is not a level'),
	-- both ends are levels
	(43, '{write:x:write}', '{read:x:read}', 'VALID', 'both levels implied'),
	(44, '{write:x:write}', '{read:x:write}', 'VALID', 'first level implied'),
	(45, '{write:x:write}', '{write:x:read}', 'VALID', 'last level implied'),
	(46, '{write:x:write}', '{read:y:read}', 'INSUFFICIENT_SCOPE', 'other segments must match'),
	(47, '{write:x:write}', '{read:x}', 'INSUFFICIENT_SCOPE', 'segment count must match'),
	-- trailing *
	(48, '{jobs:*}', '{jobs:read}', 'VALID', 'trailing * matches one segment'),
	(49, '{jobs:*}', '{jobs:write}', 'VALID', 'trailing * matches any segment'),
	(50, '{jobs:*}', '{jobs:read:x}', 'VALID', 'trailing * matches the rest'),
	(51, '{jobs:*}', '{jobs:a:b:c:d}', 'VALID', 'trailing * matches the rest'),
	(52, '{jobs:*}', '{jobs}', 'INSUFFICIENT_SCOPE', 'trailing * needs a segment'),
	(53, '{jobs:*}', '{jobs:*}', 'VALID', 'granted * matches a literal *'),
	(54, '{jobs:*}', '{billing:read}', 'INSUFFICIENT_SCOPE', 'first segment must match'),
	(55, '{jobs:*}', '{*}', 'INSUFFICIENT_SCOPE', 'required * only by granted *'),
	(56, '{jobs:*}', '{jobsx:read}', 'INSUFFICIENT_SCOPE', 'whole segments only'),
	(57, '{jobs:*}', '{jobs:read,jobs:write,jobs:x:y}', 'VALID', 'all covered'),
	(58, '{jobs:*:*}', '{jobs:a}', 'INSUFFICIENT_SCOPE', 'middle * needs a segment'),
	(59, '{jobs:*:*}', '{jobs:a:b}', 'VALID', 'two wildcards'),
	(60, '{jobs:*:*}', '{jobs:a:b:c}', 'VALID', 'trailing * matches the rest'),
	(61, '{write:*}', '{read:databases}', 'VALID', 'write implies read with trailing *'),
	(62, '{write:*}', '{read}', 'INSUFFICIENT_SCOPE', 'trailing * needs a segment'),
	(63, '{write:*}', '{write:a:b}', 'VALID', 'trailing * matches the rest'),
	(64, '{admin:*}', '{admin:x}', 'VALID', 'trailing *'),
	(65, '{admin:*}', '{admin}', 'INSUFFICIENT_SCOPE', 'trailing * needs a segment'),
	-- * alone grants everything
	(66, '{*}', '{jobs:read}', 'VALID', '* grants everything'),
	(67, '{*}', '{anything}', 'VALID', '* grants everything'),
	(68, '{*}', '{a:b:c:d:e}', 'VALID', '* grants everything'),
	(69, '{*}', '{*}', 'VALID', 'granted * matches required *'),
	(70, '{*}', '{admin}', 'VALID', '* grants everything'),
	(71, '{*}', '{read,write,jobs:delete}', 'VALID', '* grants everything'),
	(72, '{*}', '{}', 'VALID', 'nothing required'),
	(73, '{*:*}', '{a}', 'INSUFFICIENT_SCOPE', 'two segments at least'),
	(74, '{*:*}', '{a:b}', 'VALID', 'two wildcards'),
	(75, '{*:*}', '{a:b:c}', 'VALID', 'trailing * matches the rest'),
	-- * as one segment
	(76, '{*:read}', '{jobs:read}', 'VALID', '* matches one segment'),
	(77, '{*:read}', '{billing:read}', 'VALID', '* matches one segment'),
	(78, '{*:read}', '{jobs:write}', 'INSUFFICIENT_SCOPE', 'read does not imply write'),
	(79, '{*:read}', '{jobs:x:read}', 'INSUFFICIENT_SCOPE', 'inner * is one segment'),
	(80, '{*:read}', '{read}', 'INSUFFICIENT_SCOPE', 'inner * needs a segment'),
	(81, '{*:read}', '{*:read}', 'VALID', 'granted * matches a literal *'),
	(82, '{*:read}', '{*}', 'INSUFFICIENT_SCOPE', 'required * only by granted *'),
	(83, '{*:write}', '{jobs:read}', 'VALID', 'write implies read with *'),
	(84, '{*:write}', '{jobs:write}', 'VALID', '* matches one segment'),
	(85, '{jobs:*:read}', '{jobs:x:read}', 'VALID', 'inner * matches one segment'),
	(86, '{jobs:*:read}', '{jobs:x:y:read}', 'INSUFFICIENT_SCOPE', 'inner * is one segment'),
	(87, '{jobs:*:read}', '{jobs:read}', 'INSUFFICIENT_SCOPE', 'inner * needs a segment'),
	(88, '{jobs:*:read}', '{jobs:x:write}', 'INSUFFICIENT_SCOPE', 'read does not imply write'),
	-- no scope name is special
	(89, '{admin}', '{admin}', 'VALID', 'exact'),
	(90, '{admin}', '{jobs:read}', 'INSUFFICIENT_SCOPE', 'admin is not special'),
	(91, '{admin}', '{admin:read}', 'INSUFFICIENT_SCOPE', 'admin is not special'),
	(92, '{admin}', '{*}', 'INSUFFICIENT_SCOPE', 'admin is not special'),
	(93, '{jobs:admin}', '{jobs:read}', 'INSUFFICIENT_SCOPE', 'admin is not a level'),
	(94, '{jobs:admin}', '{jobs:write}', 'INSUFFICIENT_SCOPE', 'admin is not a level'),
	(95, '{all}', '{jobs:read}', 'INSUFFICIENT_SCOPE', 'all is not special'),
	-- prefix-ness
	(96, '{jobs}', '{jobs}', 'VALID', 'exact'),
	(97, '{jobs}', '{jobs:read}', 'INSUFFICIENT_SCOPE', 'jobs does not grant jobs:read'),
	(98, '{jobs}', '{jobs:*}', 'INSUFFICIENT_SCOPE', 'jobs does not grant jobs:*'),
	(99, '{jobs}', '{job}', 'INSUFFICIENT_SCOPE', 'whole segments only'),
	-- a key with no scopes
	(100, '{}', '{}', 'VALID', 'nothing required'),
	(101, '{}', '{jobs:read}', 'INSUFFICIENT_SCOPE', 'no scopes'),
	(102, '{}', '{*}', 'INSUFFICIENT_SCOPE', 'no scopes'),
	(103, '{}', '{read}', 'INSUFFICIENT_SCOPE', 'no scopes'),
	-- several granted, several required: every required one must be granted
	(104, '{jobs:read,billing:write}', '{jobs:read,billing:read}', 'VALID', 'each by a different grant'),
	(105, '{jobs:read,billing:write}', '{jobs:read,billing:write}', 'VALID', 'exact'),
	(106, '{jobs:read,billing:write}', '{billing:read,jobs:read}', 'VALID', 'order does not matter'),
	(107, '{jobs:read,billing:write}', '{jobs:read,users:read}', 'INSUFFICIENT_SCOPE', 'one missing'),
	(108, '{jobs:read,billing:write}', '{jobs:write,billing:write}', 'INSUFFICIENT_SCOPE', 'one not implied'),
	(109, '{jobs:read,billing:write}', '{jobs:read,billing:read,users:read}', 'INSUFFICIENT_SCOPE', 'one missing'),
	(110, '{jobs:read,billing:write}', '{}', 'VALID', 'nothing required'),
	(111, '{jobs:read,billing:write}', '{users:read}', 'INSUFFICIENT_SCOPE', 'none granted'),
	(112, '{jobs:read,*}', '{users:write,jobs:read}', 'VALID', '* among others'),
	-- characters and limits
	(113, '{repo.main:read-only_x}', '{repo.main:read-only_x}', 'VALID', '. - _ are segment characters'),
	(114, '{repo.main:read-only_x}', '{repo.main:read}', 'INSUFFICIENT_SCOPE', 'whole segments only'),
	(115, '{a:b:c:d:e:f:g:h:i:j:k:l:m:n:o:p}', '{a:b:c:d:e:f:g:h:i:j:k:l:m:n:o:p}', 'VALID', '16 segments'),
	(116, '{a:b:c:d:e:f:g:h:i:j:k:l:m:n:o:*}', '{a:b:c:d:e:f:g:h:i:j:k:l:m:n:o:p}', 'VALID', '16 segments, trailing *'),
	(117, ARRAY[repeat('x', 128)], ARRAY[repeat('x', 128)], 'VALID', '128 bytes'),
	(118, ARRAY[repeat('x', 128)], ARRAY[repeat('x', 127)], 'INSUFFICIENT_SCOPE', 'whole segments only'),
	(119, '{0:9}', '{0:9}', 'VALID', 'digits'),
	(120, '{jobs:write,jobs:read}', '{jobs:read}', 'VALID', 'redundant grants');

-- show(scopes): scopes for display, long ones abbreviated
CREATE FUNCTION pg_temp.show(a text[]) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT '{' || coalesce(string_agg(CASE WHEN length(e) > 40
									  THEN left(e, 4) || '...(' || length(e) || ' bytes)'
									  ELSE e END, ',' ORDER BY o), '') || '}'
	  FROM unnest(a) WITH ORDINALITY AS u(e, o)
$$;

-- one key per granted set
CREATE TEMP TABLE ckeys AS
SELECT g.granted, c.key_id, c.key
  FROM (SELECT DISTINCT granted FROM cases) g,
       LATERAL apikey.apikey_create('scopes ' || array_to_string(g.granted, ' '), g.granted) c;
SELECT count(*) AS granted_sets FROM ckeys;
-- the stored scopes are what was granted
SELECT count(*) AS scopes_stored_ok
  FROM ckeys c JOIN apikey.keys k ON k.id = c.key_id AND k.scopes = c.granted;

SELECT c.n, pg_temp.show(c.granted) AS granted, pg_temp.show(c.required) AS required,
       v.code, v.code = c.expect AS ok
  FROM cases c JOIN ckeys k USING (granted),
       LATERAL apikey.apikey_verify(k.key, c.required) v
 ORDER BY c.n;
SELECT count(*) AS cases, count(*) FILTER (WHERE v.code = c.expect) AS as_expected,
       count(*) FILTER (WHERE v.code = 'VALID') AS valid,
       count(*) FILTER (WHERE v.code = 'INSUFFICIENT_SCOPE') AS insufficient
  FROM cases c JOIN ckeys k USING (granted),
       LATERAL apikey.apikey_verify(k.key, c.required) v;
-- a failed scope check still returns the key's identity and granted scopes
SELECT v.valid, v.http_status, v.key_id = k.key_id AS key_id_ok, v.scopes = k.granted AS scopes_ok
  FROM ckeys k, LATERAL apikey.apikey_verify(k.key, '{jobs:read}') v
 WHERE k.granted = '{admin}';

--
-- required scopes are checked before the key: a malformed one is the
-- caller's programming error (22023), whatever the key
--
SELECT key AS sk FROM ckeys WHERE granted = '{*}' \gset
SELECT v.code FROM apikey.apikey_verify(:'sk', '{Jobs:read}') v;
\echo :LAST_ERROR_SQLSTATE
SELECT v.code FROM apikey.apikey_verify(:'sk', '{JOBS}') v;
\echo :LAST_ERROR_SQLSTATE
SELECT v.code FROM apikey.apikey_verify(:'sk', '{jobs:read,""}') v;
\echo :LAST_ERROR_SQLSTATE
SELECT v.code FROM apikey.apikey_verify(:'sk', '{jobs:read,NULL}') v;
\echo :LAST_ERROR_SQLSTATE
SELECT v.code FROM apikey.apikey_verify(:'sk', ARRAY[NULL]::text[]) v;
\echo :LAST_ERROR_SQLSTATE
SELECT v.code FROM apikey.apikey_verify(:'sk', '{a::b}') v;
\echo :LAST_ERROR_SQLSTATE
SELECT v.code FROM apikey.apikey_verify(:'sk', '{:a}') v;
\echo :LAST_ERROR_SQLSTATE
SELECT v.code FROM apikey.apikey_verify(:'sk', '{a:}') v;
\echo :LAST_ERROR_SQLSTATE
SELECT v.code FROM apikey.apikey_verify(:'sk', '{:}') v;
\echo :LAST_ERROR_SQLSTATE
SELECT v.code FROM apikey.apikey_verify(:'sk', '{"a b"}') v;
\echo :LAST_ERROR_SQLSTATE
SELECT v.code FROM apikey.apikey_verify(:'sk', '{" jobs"}') v;
\echo :LAST_ERROR_SQLSTATE
SELECT v.code FROM apikey.apikey_verify(:'sk', '{**}') v;
\echo :LAST_ERROR_SQLSTATE
SELECT v.code FROM apikey.apikey_verify(:'sk', '{jobs:*x}') v;
\echo :LAST_ERROR_SQLSTATE
SELECT v.code FROM apikey.apikey_verify(:'sk', '{jobs/read}') v;
\echo :LAST_ERROR_SQLSTATE
SELECT v.code FROM apikey.apikey_verify(:'sk', '{jöbs}') v;
\echo :LAST_ERROR_SQLSTATE
SELECT v.code FROM apikey.apikey_verify(:'sk', ARRAY['ok', repeat('x', 129)]) v;
\echo :LAST_ERROR_SQLSTATE
SELECT v.code FROM apikey.apikey_verify(:'sk', '{a:b:c:d:e:f:g:h:i:j:k:l:m:n:o:p:q}') v;
\echo :LAST_ERROR_SQLSTATE
-- the same errors with a malformed, a missing or a NULL key
SELECT v.code FROM apikey.apikey_verify('garbage', '{Jobs}') v;
\echo :LAST_ERROR_SQLSTATE
SELECT v.code FROM apikey.apikey_verify(NULL, '{a::b}') v;
\echo :LAST_ERROR_SQLSTATE
SELECT v.code FROM apikey.apikey_verify(left(:'sk', -1), ARRAY[NULL]::text[]) v;
\echo :LAST_ERROR_SQLSTATE
-- the limits themselves are fine
SELECT v.code FROM apikey.apikey_verify(:'sk', ARRAY[repeat('x', 128)]) v;
SELECT v.code FROM apikey.apikey_verify(:'sk', '{a:b:c:d:e:f:g:h:i:j:k:l:m:n:o:p}') v;

--
-- granted scopes are validated at create (22023, or 22004 for NULL)
--
SELECT key_id FROM apikey.apikey_create('bad', '{Jobs:read}');
\echo :LAST_ERROR_SQLSTATE
SELECT key_id FROM apikey.apikey_create('bad', '{jobs:read,""}');
\echo :LAST_ERROR_SQLSTATE
SELECT key_id FROM apikey.apikey_create('bad', '{jobs:read,NULL}');
\echo :LAST_ERROR_SQLSTATE
SELECT key_id FROM apikey.apikey_create('bad', '{a::b}');
\echo :LAST_ERROR_SQLSTATE
SELECT key_id FROM apikey.apikey_create('bad', ARRAY[repeat('x', 129)]);
\echo :LAST_ERROR_SQLSTATE
SELECT key_id FROM apikey.apikey_create('bad', '{a:b:c:d:e:f:g:h:i:j:k:l:m:n:o:p:q}');
\echo :LAST_ERROR_SQLSTATE
SELECT key_id FROM apikey.apikey_create('bad', '{jobs:*x}');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS bad_keys FROM apikey.keys WHERE name = 'bad';

--
-- scopes changed by hand (plain UPDATE) take effect at once
--
SELECT key_id AS upd_id, key AS upd FROM apikey.apikey_create('updated scopes', '{jobs:read}') \gset
SELECT v.code FROM apikey.apikey_verify(:'upd', '{jobs:write}') v;
UPDATE apikey.keys SET scopes = '{jobs:write}' WHERE id = :upd_id;
SELECT v.code, v.scopes FROM apikey.apikey_verify(:'upd', '{jobs:write}') v;
UPDATE apikey.keys SET scopes = '{}' WHERE id = :upd_id;
SELECT v.code, v.scopes FROM apikey.apikey_verify(:'upd', '{jobs:read}') v;

DROP TABLE ckeys;
DROP TABLE cases;
