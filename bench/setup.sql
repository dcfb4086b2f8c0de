-- bench/setup.sql: the bench schema: the key table and its stage-wise
-- creation (bench.add_key_range, timed by run.sh), the hand-written
-- PL/pgSQL verifies, the in-server variants and the timing functions.
-- No keys yet: run.sh adds them size by size; loop.sql builds the
-- in-server loop table.
\set ON_ERROR_STOP 1
SET jit = off;

CREATE EXTENSION IF NOT EXISTS apikey;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS pg_prewarm;
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;

-- The raw keys, as apikey_create returned them (one SPI insert per key),
-- numbered 1..N so that pgbench picks key i through the primary key.
CREATE TABLE bench.k (i int PRIMARY KEY, key text NOT NULL);
-- Bulk creation, timed per stage: apikey_create (mint, hash, checks, audit
-- and guard triggers, four indexes); the plain INSERT reference is timed
-- by plain.sql at the end.
CREATE TABLE bench.bulk (what text NOT NULL, n bigint NOT NULL, ms float8 NOT NULL);

/* add_key_range: create keys lo..hi of bench.k (run.sh times it) */
CREATE FUNCTION bench.add_key_range(lo int, hi int)
RETURNS void
LANGUAGE sql
AS $$
	INSERT INTO bench.k (i, key)
	SELECT g.i, c.key
	  FROM generate_series(lo, hi) AS g(i),
	       LATERAL apikey.apikey_create('bench-' || g.i,
	                                    '{jobs:read,write:databases}') AS c;
$$;

/* usage_rows: a row of bench.usage (the PL/pgSQL verify's) for every key */
CREATE FUNCTION bench.usage_rows()
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
	INSERT INTO bench.usage (key_id, last_used_at, use_count)
	SELECT id, NULL, 0 FROM apikey.keys
	ON CONFLICT DO NOTHING;
END
$$;

/*
 * Where a hand-written verify would keep its last use: its own table,
 * updated by every call (apikey 1.1 keeps usage in shared memory and
 * writes it once a second instead).
 */
CREATE TABLE bench.usage (
	key_id			bigint PRIMARY KEY,
	last_used_at	timestamptz,
	use_count		bigint NOT NULL
) WITH (fillfactor = 50);

/*
 * What a user would write by hand without the extension: look the row up
 * by the key's SHA-256 (pgcrypto's digest(), as such code usually does),
 * then check enabled, expiry and scopes (plain array containment: no
 * wildcards, no write-implies-read), and return a code.  No checksum
 * check, no identity returned: less work than apikey_verify.
 * With record_use it also records the use, as such code usually does: one
 * UPDATE of its usage row per call.
 */
CREATE FUNCTION bench.plpgsql_verify(key text, required text[] DEFAULT '{}',
									  record_use boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
	r record;
BEGIN
	SELECT id, enabled, expires_at, scopes INTO r
	  FROM apikey.keys
	 WHERE secret_hash = public.digest(key, 'sha256');
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
	IF record_use THEN
		UPDATE bench.usage SET last_used_at = now(), use_count = use_count + 1
		 WHERE key_id = r.id;
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
	query	text NOT NULL,
	cache_size	int,			-- apikey.cache_size for this variant; NULL: default
	nrows	bigint				-- rows it runs over (bench/loop.sql)
);
INSERT INTO bench.variant VALUES
 ('loop', 1, 'loop cost: length(key) > 0',
  $q$SELECT count(*) FILTER (WHERE length(l.key) > 0) FROM bench.loop AS l$q$),
 ('hash', 2, 'sha256(convert_to(key)) only',
  $q$SELECT count(*) FILTER (WHERE length(sha256(convert_to(l.key, 'UTF8'))) = 32) FROM bench.loop AS l$q$),
 ('floor', 3, 'SQL floor: scalar subquery on keys_secret_hash_idx',
  $q$SELECT count(*) FILTER (WHERE (SELECT k.id FROM apikey.keys AS k WHERE k.secret_hash = sha256(convert_to(l.key, 'UTF8'))) IS NOT NULL) FROM bench.loop AS l$q$),
 ('plpgsql', 4, 'bench.plpgsql_verify(key, ''{}''): PL/pgSQL over pgcrypto',
  $q$SELECT count(*) FILTER (WHERE bench.plpgsql_verify(l.key, '{}') = 'VALID') FROM bench.loop AS l$q$),
 ('plpgsql_update', 5, 'bench.plpgsql_verify(key, ''{}'', true): the same, UPDATE of last_used_at per call',
  $q$SELECT count(*) FILTER (WHERE bench.plpgsql_verify(l.key, '{}', true) = 'VALID') FROM bench.loop AS l$q$),
 ('verify', 6, 'apikey.apikey_verify(key): every key of the main count in random order, each once a round',
  $q$SELECT count(*) FILTER (WHERE (apikey.apikey_verify(l.key)).valid) FROM bench.loop AS l$q$),
 ('verify_cold', 7, 'apikey.apikey_verify(key) over keys never verified before (the round''s own)',
  $q$SELECT count(*) FILTER (WHERE (apikey.apikey_verify(c.key)).valid) FROM bench.cold AS c WHERE c.round = coalesce(nullif(current_setting('bench.round', true), ''), '0')::int$q$),
 ('floor_cold', 13, 'SQL floor over the same keys as verify_cold',
  $q$SELECT count(*) FILTER (WHERE (SELECT k.id FROM apikey.keys AS k WHERE k.secret_hash = sha256(convert_to(c.key, 'UTF8'))) IS NOT NULL) FROM bench.cold AS c WHERE c.round = coalesce(nullif(current_setting('bench.round', true), ''), '0')::int$q$),
 ('verify_scope', 8, 'apikey.apikey_verify(key, ''{jobs:read}'')',
  $q$SELECT count(*) FILTER (WHERE (apikey.apikey_verify(l.key, '{jobs:read}')).valid) FROM bench.loop AS l$q$),
 ('floor_hot', 9, 'SQL floor over a hot set of 10000 keys in random order',
  $q$SELECT count(*) FILTER (WHERE (SELECT k.id FROM apikey.keys AS k WHERE k.secret_hash = sha256(convert_to(l.hot, 'UTF8'))) IS NOT NULL) FROM bench.loop AS l$q$),
 ('verify_hot', 10, 'apikey.apikey_verify(key) over the hot set: in the shared cache after the warm-up round',
  $q$SELECT count(*) FILTER (WHERE (apikey.apikey_verify(l.hot)).valid) FROM bench.loop AS l$q$),
 ('malformed', 11, 'apikey.apikey_verify(bad checksum): MALFORMED',
  $q$SELECT count(*) FILTER (WHERE (apikey.apikey_verify(l.bad)).code = 'MALFORMED') FROM bench.loop AS l$q$),
 ('not_found', 12, 'apikey.apikey_verify(deleted key): NOT_FOUND',
  $q$SELECT count(*) FILTER (WHERE (apikey.apikey_verify(l.gone)).code = 'NOT_FOUND') FROM bench.loop AS l$q$);

-- the in-server ratios reported (a / b of per-call cost; < 1: a is cheaper)
CREATE TABLE bench.ratio (ord int PRIMARY KEY, label text NOT NULL, a text NOT NULL, b text NOT NULL);
INSERT INTO bench.ratio VALUES
 (1, 'apikey_verify(key) / SQL floor (the main count, each once a round)', 'verify', 'floor'),
 (2, 'apikey_verify(hot key) / SQL floor over the same hot keys (in the cache)', 'verify_hot', 'floor_hot'),
 (3, 'apikey_verify(key never verified) / SQL floor over the same keys', 'verify_cold', 'floor_cold'),
 (4, 'apikey_verify(key, ''{jobs:read}'') / SQL floor', 'verify_scope', 'floor'),
 (5, 'apikey_verify(key) / plpgsql_verify(key)', 'verify', 'plpgsql'),
 (6, 'plpgsql_verify(key, record_use) / apikey_verify(key)', 'plpgsql_update', 'verify'),
 (7, 'NOT_FOUND / MALFORMED (how much cheaper a malformed key is)', 'not_found', 'malformed'),
 (8, 'NOT_FOUND / SQL floor', 'not_found', 'floor');

CREATE TABLE bench.timing (
	round	int NOT NULL,
	name	text NOT NULL REFERENCES bench.variant,
	ms		float8 NOT NULL,
	n		bigint NOT NULL
);

CREATE TABLE bench.pgbench (
	name	text NOT NULL,
	label	text NOT NULL,
	round	int NOT NULL,			-- 0: a sweep run
	tps		float8 NOT NULL,
	lat_ms	float8 NOT NULL,
	xacts	bigint NOT NULL,
	clients	int NOT NULL,
	nkeys	bigint NOT NULL
);

-- backends sharing a hot set (run.sh hitrate_run): their verified-key
-- cache hit rates near the end of the run, from apikey.stats
CREATE TABLE bench.hitrate (
	id		serial PRIMARY KEY,
	backends	int NOT NULL,
	min_rate	float8,
	avg_rate	float8,
	hits	bigint,
	misses	bigint,
	tps		float8
);

-- per-transaction latencies of the sweep runs (pgbench -l)
CREATE TABLE bench.lat (
	nkeys	bigint NOT NULL,
	name	text NOT NULL,
	clients	int NOT NULL,
	us		int NOT NULL
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
	cs	int;
	t0	timestamptz;
	t1	timestamptz;
	cnt	bigint;
BEGIN
	SELECT v.query, v.cache_size INTO STRICT q, cs FROM bench.variant AS v WHERE v.name = vname;
	PERFORM set_config('bench.round', greatest(rnd, 0)::text, false);
	IF cs IS NOT NULL THEN
		PERFORM set_config('apikey.cache_size', cs::text, false);
	END IF;
	t0 := clock_timestamp();
	EXECUTE q INTO cnt;
	t1 := clock_timestamp();
	IF cs IS NOT NULL THEN
		PERFORM set_config('apikey.cache_size', '1024', false);
	END IF;
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

-- the best run of each pgbench variant and client count (round 0: the sweep)
CREATE VIEW bench.pgb AS
SELECT DISTINCT ON (name, clients) name, clients, label, tps, lat_ms
  FROM bench.pgbench WHERE round > 0 ORDER BY name, clients, tps DESC;

-- the best runs with their TPS ratios against the floor (floor_zipf_p for
-- the zipf variants) and against SELECT $1, in the order they are reported
CREATE VIEW bench.pgb_ratio AS
SELECT b.clients, b.name, b.label, b.tps, b.lat_ms,
       b.tps / f.tps AS vs_floor, b.tps / e.tps AS vs_echo,
       array_position(ARRAY['echo_p', 'floor_p', 'readme_p', 'readme_p@flush60s', 'target_p', 'sub_p',
                            'plpgsql_p', 'plpgsql_update_p', 'floor_zipf_p', 'readme_zipf_p'], b.name) AS ord
  FROM bench.pgb AS b
  JOIN bench.pgb AS f ON f.clients = b.clients
   AND f.name = CASE WHEN b.name LIKE '%zipf%' THEN 'floor_zipf_p' ELSE 'floor_p' END
  JOIN bench.pgb AS e ON e.clients = b.clients AND e.name = 'echo_p';

-- the sweep: TPS and per-transaction latency percentiles per key count
CREATE VIEW bench.sweep AS
SELECT p.nkeys, p.name, p.clients, p.tps, l.p50, l.p99
  FROM bench.pgbench AS p
  JOIN (SELECT nkeys, name, clients,
               percentile_disc(0.5) WITHIN GROUP (ORDER BY us) AS p50,
               percentile_disc(0.99) WITHIN GROUP (ORDER BY us) AS p99
          FROM bench.lat GROUP BY nkeys, name, clients) AS l USING (nkeys, name, clients)
 WHERE p.round = 0;

-- paired ratios: the median over rounds of a's per-call cost / b's within
-- the round (each per row, net of that round's loop time per row)
CREATE VIEW bench.paired AS
WITH net AS (
	SELECT t.round, t.name, t.ms / NULLIF(t.n, 0) - l.ms / NULLIF(l.n, 0) AS net
	  FROM bench.timing AS t
	  JOIN bench.timing AS l ON l.round = t.round AND l.name = 'loop'
)
SELECT a.name AS a, b.name AS b,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY a.net / NULLIF(b.net, 0)) AS r
  FROM net AS a JOIN net AS b ON b.round = a.round
 GROUP BY a.name, b.name;
