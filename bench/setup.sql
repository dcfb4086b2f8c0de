-- bench/setup.sql: keys, loop table, pgbench lookup table and the
-- hand-written PL/pgSQL verify.  psql variables: nkeys, nloop.
\set ON_ERROR_STOP 1
SET jit = off;

CREATE EXTENSION IF NOT EXISTS apikey;
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;

-- The raw keys, as apikey_create returned them (one SPI insert per key).
CREATE TABLE bench.k (key text NOT NULL);
-- Bulk creation, timed: apikey_create (mint, hash, checks, audit and guard
-- triggers, four indexes) against a plain INSERT of precomputed hashes
-- into a copy of apikey.keys with the same columns, constraints and
-- indexes but no triggers.
CREATE TABLE bench.bulk (what text PRIMARY KEY, n bigint NOT NULL, ms float8 NOT NULL);
SELECT clock_timestamp() AS bulk_t0 \gset
INSERT INTO bench.k (key)
SELECT c.key
  FROM generate_series(1, :nkeys) AS g(i),
       LATERAL apikey.apikey_create('bench-' || g.i,
                                    '{jobs:read,write:databases}') AS c;
INSERT INTO bench.bulk
SELECT 'apikey_create', :nkeys,
       1000 * extract(epoch FROM clock_timestamp() - :'bulk_t0'::timestamptz);

CREATE TABLE bench.plain (LIKE apikey.keys INCLUDING ALL);
CREATE TABLE bench.pre AS
SELECT g.i, sha256(convert_to(gen_random_uuid()::text || g.i, 'UTF8')) AS h
  FROM generate_series(1, :nkeys) AS g(i);
SELECT clock_timestamp() AS bulk_t0 \gset
INSERT INTO bench.plain (name, prefix, hint, owner_role, scopes, secret_hash)
SELECT 'plain-' || p.i, 'bench', 'bench_XXXX...XXXX', current_user,
       '{jobs:read,write:databases}', p.h
  FROM bench.pre AS p;
INSERT INTO bench.bulk
SELECT 'plain INSERT', :nkeys,
       1000 * extract(epoch FROM clock_timestamp() - :'bulk_t0'::timestamptz);
DROP TABLE bench.pre;

-- Loop table for the in-server measurements: nloop keys in random order
-- (keys repeat only when nloop > nkeys), so that the index is probed in
-- an order real traffic would use, not insertion order.
CREATE TABLE bench.loop AS
SELECT k.key
  FROM bench.k AS k,
       generate_series(1, ceil(:nloop::numeric / :nkeys)::int) AS rep
 ORDER BY random()
 LIMIT :nloop;

-- Keys that fail early, one per loop row: "bad" is the row's key with its
-- last character (part of the checksum) changed, so MALFORMED without a
-- table access; "gone" is a well-formed key whose row was deleted, so
-- NOT_FOUND after both index probes.  1000 deleted keys, cycled.
CREATE TABLE bench.gone (n int PRIMARY KEY, key text NOT NULL);
INSERT INTO bench.gone (n, key)
SELECT g.i - 1, c.key
  FROM generate_series(1, least(1000, :nkeys)) AS g(i),
       LATERAL apikey.apikey_create('gone-' || g.i, '{jobs:read}') AS c;
DELETE FROM apikey.keys WHERE name LIKE 'gone-%';
ALTER TABLE bench.loop ADD COLUMN bad text, ADD COLUMN gone text;
UPDATE bench.loop AS l
   SET bad = left(l.key, -1) || CASE WHEN right(l.key, 1) = 'A' THEN 'B' ELSE 'A' END,
       gone = (SELECT g.key FROM bench.gone AS g
                WHERE g.n = abs(hashtext(l.key)) % (SELECT count(*) FROM bench.gone));

-- pgbench picks key number i through an indexed int lookup, so choosing
-- the key costs the same in every variant.
CREATE TABLE bench.k_arr (i int PRIMARY KEY, key text NOT NULL);
INSERT INTO bench.k_arr (i, key)
SELECT row_number() OVER (), key FROM bench.k;

/*
 * What a user would write by hand without the extension: look the row up
 * by the key's SHA-256, then check enabled, expiry and scopes (plain array
 * containment: no wildcards, no write-implies-read), and return a code.
 * No checksum check, no identity returned: less work than apikey_verify.
 */
CREATE FUNCTION bench.plpgsql_verify(key text, required text[] DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
	r record;
BEGIN
	SELECT id, enabled, expires_at, scopes INTO r
	  FROM apikey.keys
	 WHERE secret_hash = sha256(convert_to(key, 'UTF8'));
	IF NOT FOUND THEN
		RETURN 'NOT_FOUND';
	END IF;
	IF NOT r.enabled THEN
		RETURN 'DISABLED';
	END IF;
	IF r.expires_at IS NOT NULL AND r.expires_at <= now() THEN
		RETURN 'EXPIRED';
	END IF;
	IF NOT (required <@ r.scopes) THEN
		RETURN 'INSUFFICIENT_SCOPE';
	END IF;
	RETURN 'VALID';
END
$$;

/*
 * The in-server variants.  Each is one query over the shuffled loop table
 * that returns how many rows passed; every variant must count every row.
 * ord is the order within a round (rotated from round to round).
 */
CREATE TABLE bench.variant (
	name	text PRIMARY KEY,
	ord		int NOT NULL,
	label	text NOT NULL,
	query	text NOT NULL
);
INSERT INTO bench.variant VALUES
 ('loop', 1, 'loop cost: length(key) > 0',
  $q$SELECT count(*) FILTER (WHERE length(l.key) > 0) FROM bench.loop AS l$q$),
 ('hash', 2, 'sha256(convert_to(key)) only',
  $q$SELECT count(*) FILTER (WHERE length(sha256(convert_to(l.key, 'UTF8'))) = 32) FROM bench.loop AS l$q$),
 ('floor', 3, 'SQL floor: scalar subquery on keys_secret_hash_idx',
  $q$SELECT count(*) FILTER (WHERE (SELECT k.id FROM apikey.keys AS k WHERE k.secret_hash = sha256(convert_to(l.key, 'UTF8'))) IS NOT NULL) FROM bench.loop AS l$q$),
 ('plpgsql', 4, 'bench.plpgsql_verify(key, ''{}'')',
  $q$SELECT count(*) FILTER (WHERE bench.plpgsql_verify(l.key, '{}') = 'VALID') FROM bench.loop AS l$q$),
 ('plpgsql_scope', 5, 'bench.plpgsql_verify(key, ''{jobs:read}'')',
  $q$SELECT count(*) FILTER (WHERE bench.plpgsql_verify(l.key, '{jobs:read}') = 'VALID') FROM bench.loop AS l$q$),
 ('verify', 6, 'apikey.apikey_verify(key)',
  $q$SELECT count(*) FILTER (WHERE (apikey.apikey_verify(l.key)).valid) FROM bench.loop AS l$q$),
 ('verify_scope', 7, 'apikey.apikey_verify(key, ''{jobs:read}'')',
  $q$SELECT count(*) FILTER (WHERE (apikey.apikey_verify(l.key, '{jobs:read}')).valid) FROM bench.loop AS l$q$),
 ('malformed', 8, 'apikey.apikey_verify(bad checksum): MALFORMED',
  $q$SELECT count(*) FILTER (WHERE (apikey.apikey_verify(l.bad)).code = 'MALFORMED') FROM bench.loop AS l$q$),
 ('not_found', 9, 'apikey.apikey_verify(deleted key): NOT_FOUND',
  $q$SELECT count(*) FILTER (WHERE (apikey.apikey_verify(l.gone)).code = 'NOT_FOUND') FROM bench.loop AS l$q$);

CREATE TABLE bench.timing (
	round	int NOT NULL,
	name	text NOT NULL REFERENCES bench.variant,
	ms		float8 NOT NULL,
	n		bigint NOT NULL
);

CREATE TABLE bench.pgbench (
	name	text NOT NULL,
	label	text NOT NULL,
	round	int NOT NULL,
	tps		float8 NOT NULL,
	lat_ms	float8 NOT NULL,
	xacts	bigint NOT NULL
);

/*
 * time_variant: run one variant's query once, timed with clock_timestamp()
 * around EXECUTE in this backend (no client round trip, no EXPLAIN ANALYZE
 * instrumentation).  Planning is included but is ~0.1 ms of ~100s of ms.
 */
CREATE FUNCTION bench.time_variant(vname text, rnd int)
RETURNS float8
LANGUAGE plpgsql
AS $$
DECLARE
	q	text;
	t0	timestamptz;
	t1	timestamptz;
	cnt	bigint;
BEGIN
	SELECT v.query INTO STRICT q FROM bench.variant AS v WHERE v.name = vname;
	t0 := clock_timestamp();
	EXECUTE q INTO cnt;
	t1 := clock_timestamp();
	IF rnd > 0 THEN
		INSERT INTO bench.timing
		VALUES (rnd, vname, extract(epoch FROM t1 - t0) * 1000, cnt);
	END IF;
	RETURN extract(epoch FROM t1 - t0) * 1000;
END
$$;

/* run_round: every variant once, starting at a different one each round */
CREATE FUNCTION bench.run_round(rnd int)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
	v	record;
	nv	int;
	out	text := '';
BEGIN
	SELECT count(*) INTO nv FROM bench.variant;
	FOR v IN
		SELECT name FROM bench.variant
		 ORDER BY (ord - 1 + greatest(rnd, 0)) % nv
	LOOP
		out := out || format('%s=%sms ', v.name,
							 round(bench.time_variant(v.name, rnd)::numeric, 1));
	END LOOP;
	RETURN out;
END
$$;

VACUUM ANALYZE apikey.keys;
VACUUM ANALYZE bench.k;
VACUUM ANALYZE bench.loop;
VACUUM ANALYZE bench.k_arr;
SELECT (SELECT count(*) FROM apikey.keys) AS keys,
       (SELECT count(*) FROM bench.loop) AS loop_rows,
       pg_size_pretty(pg_total_relation_size('apikey.keys')) AS keys_size;
