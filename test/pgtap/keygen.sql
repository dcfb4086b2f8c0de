-- keygen.sql: 10,000 generated keys are distinct, well-formed, carry a
-- correct checksum (checked by an independent CRC-32 and base62 written
-- here), verify, and have plausibly uniform secret characters.
--
-- Key format (SPEC): <prefix>_<32 base62 secret chars><6 base62 checksum
-- chars>; base62 digits 0-9A-Za-z in that order; checksum = CRC-32 (zlib's:
-- reflected, polynomial 0xEDB88320, init and final xor 0xFFFFFFFF) of
-- everything before it, as a big-endian base62 number padded with '0' to 6.
--
-- Statistics.  Each secret character should be uniform over 62 values.  The
-- chi-square statistic of the 62 character counts against uniform has 61
-- degrees of freedom.  Its 99.99% quantile, computed from the regularized
-- lower incomplete gamma function P(61/2, x/2) = 0.9999, is
--     x = 110.84
-- (Wilson-Hilferty gives 111.0).  The lower bound 25 has P(chi2_61 < 25) =
-- 1.2e-5, so it only trips for a suspiciously perfect (non-random) generator.
-- A correct generator fails the three chi-square assertions below with
-- probability about 2.1e-4 in total; a modulo-biased generator (byte % 62,
-- no rejection) gives a statistic in the thousands over 320,000 characters.
--
-- Needs: CREATE EXTENSION pgtap, pgcrypto, apikey; run as a superuser.
BEGIN;
SELECT plan(37);

SET LOCAL apikey.default_prefix TO DEFAULT;

-- the independent oracle: CRC-32, base62, checksum, checksum_ok, mkkey
\ir ../keyformat_oracle.sql

-- 1. the oracle itself: known CRC-32 values (zlib) and base62 encodings
SELECT is(pg_temp.crc32('123456789'), x'CBF43926'::bigint, 'own crc32(''123456789'') = 0xCBF43926');
SELECT is(pg_temp.crc32(''), 0::bigint, 'own crc32('''') = 0');
SELECT is(pg_temp.crc32('a'), x'E8B7BE43'::bigint, 'own crc32(''a'') = 0xE8B7BE43');
SELECT is(pg_temp.crc32('abc'), x'352441C2'::bigint, 'own crc32(''abc'') = 0x352441C2');
SELECT is(pg_temp.crc32('The quick brown fox jumps over the lazy dog'), x'414FA339'::bigint,
          'own crc32(quick brown fox) = 0x414FA339');
SELECT is(pg_temp.crc32('é'), x'0E048D3E'::bigint, 'own crc32(U+00E9) = 0x0E048D3E (over UTF-8 bytes)');
SELECT is(pg_temp.base62_6(0), '000000', 'base62(0) = 000000');
SELECT is(pg_temp.base62_6(61), '00000z', 'base62(61) = 00000z');
SELECT is(pg_temp.base62_6(62), '000010', 'base62(62) = 000010');
SELECT is(pg_temp.base62_6(4294967295), '4gfFC3', 'base62(0xFFFFFFFF) = 4gfFC3');
SELECT is(pg_temp.base62_6(x'CBF43926'::bigint), '3jZRME', 'base62(0xCBF43926) = 3jZRME');
-- whole-key vectors, computed with Python's zlib.crc32
SELECT is(pg_temp.checksum('ak_' || repeat('0', 32)), '3DOjIW', 'own checksum of ak_000…0 = 3DOjIW');
SELECT is(pg_temp.checksum('sk_test_' || repeat('A', 32)), '0z02M7', 'own checksum of sk_test_AAA…A = 0z02M7');

-- 2. the extension agrees on those vectors: well formed means NOT_FOUND,
--    a wrong checksum means MALFORMED
SELECT is((apikey.apikey_verify('ak_' || repeat('0', 32) || '3DOjIW')).code, 'NOT_FOUND',
          'hand-made ak_ key with our checksum is well formed (NOT_FOUND)');
SELECT is((apikey.apikey_verify('sk_test_' || repeat('A', 32) || '0z02M7')).code, 'NOT_FOUND',
          'hand-made sk_test_ key with our checksum is well formed (NOT_FOUND)');
SELECT is((apikey.apikey_verify('ak_' || repeat('0', 32) || '3DOjIX')).code, 'MALFORMED',
          'hand-made key with a wrong checksum is MALFORMED');

-- 3. generate 10,000 keys in one statement
CREATE TEMP TABLE t0 ON COMMIT DROP AS SELECT clock_timestamp() AS started;
CREATE TEMP TABLE gen ON COMMIT DROP AS
SELECT g AS n, c.key_id, c.key
  FROM generate_series(1, 10000) g
 CROSS JOIN LATERAL apikey.apikey_create('keygen ' || g, '{}') c;
CREATE TEMP TABLE t1 ON COMMIT DROP AS SELECT clock_timestamp() - started AS took FROM t0;
SELECT diag(format('10,000 apikey_create calls took %s', took)) FROM t1;
SELECT ok(took < interval '30 seconds', 'creating 10,000 keys takes well under a minute (< 30 s)') FROM t1;

SELECT is((SELECT count(*) FROM gen), 10000::bigint, '10,000 keys generated');
SELECT is((SELECT count(DISTINCT key) FROM gen), 10000::bigint, 'all 10,000 keys are distinct');
SELECT is((SELECT count(DISTINCT key_id) FROM gen), 10000::bigint, 'all 10,000 key ids are distinct');
SELECT is((SELECT count(DISTINCT k.secret_hash) FROM gen JOIN apikey.keys k ON k.id = gen.key_id),
          10000::bigint, 'all 10,000 stored hashes are distinct');
SELECT is((SELECT count(*) FROM gen JOIN apikey.keys k ON k.id = gen.key_id
            WHERE k.secret_hash = sha256(convert_to(gen.key, 'UTF8')) AND k.prefix = 'ak'),
          10000::bigint, 'every stored hash is sha256 of its key, every prefix is ak');
SELECT is((SELECT count(*) FROM gen WHERE key !~ '^ak_[0-9A-Za-z]{38}$'), 0::bigint,
          'every key matches ^ak_[0-9A-Za-z]{38}$');
SELECT is((SELECT count(*) FROM gen WHERE NOT pg_temp.checksum_ok(key)), 0::bigint,
          'every key''s checksum is valid by the independent CRC-32 + base62');

-- 4. every key verifies; mutations are MALFORMED
SELECT is((SELECT count(*) FROM gen CROSS JOIN LATERAL apikey.apikey_verify(gen.key) v
            WHERE v.valid AND v.code = 'VALID' AND v.http_status = 200 AND v.key_id = gen.key_id),
          10000::bigint, 'all 10,000 keys verify VALID with their own key_id');
-- last character replaced by a different base62 character
SELECT is((SELECT count(*) FROM gen
            CROSS JOIN LATERAL apikey.apikey_verify(
                left(key, -1) || CASE WHEN right(key, 1) = 'A' THEN 'B' ELSE 'A' END) v
            WHERE NOT v.valid AND v.code = 'MALFORMED' AND v.http_status = 401 AND v.key_id IS NULL),
          10000::bigint, 'all 10,000 keys with the last character changed verify MALFORMED');
-- first secret character replaced: the CRC catches every single-character change
SELECT is((SELECT count(*) FROM gen
            CROSS JOIN LATERAL apikey.apikey_verify(
                'ak_' || CASE WHEN substr(key, 4, 1) = 'z' THEN 'y' ELSE 'z' END || substr(key, 5)) v
            WHERE v.code = 'MALFORMED'),
          10000::bigint, 'all 10,000 keys with the first secret character changed verify MALFORMED');
SELECT is((SELECT count(*) FROM gen WHERE pg_temp.checksum_ok(left(key, -1) || CASE WHEN right(key, 1) = 'A' THEN 'B' ELSE 'A' END)),
          0::bigint, 'our own checksum rejects every mutated key too');

-- 5. secret characters: counts per character over all 320,000 secret
--    characters (positions 4..35: after 'ak_', before the checksum)
CREATE TEMP TABLE alphabet ON COMMIT DROP AS
SELECT i - 1 AS v, ascii(substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', i, 1)) AS code
  FROM generate_series(1, 62) i;
CREATE TEMP TABLE secret_chars ON COMMIT DROP AS
SELECT p - 3 AS pos, ascii(substr(key, p, 1)) AS code
  FROM gen CROSS JOIN generate_series(4, 35) p;

CREATE TEMP TABLE overall ON COMMIT DROP AS
SELECT a.code, count(s.code) AS n
  FROM alphabet a LEFT JOIN secret_chars s ON s.code = a.code
 GROUP BY a.code;
CREATE TEMP TABLE firstpos ON COMMIT DROP AS
SELECT a.code, count(s.code) AS n
  FROM alphabet a LEFT JOIN secret_chars s ON s.code = a.code AND s.pos = 1
 GROUP BY a.code;
CREATE TEMP TABLE chi ON COMMIT DROP AS
SELECT (SELECT sum((n - 320000 / 62.0) ^ 2 / (320000 / 62.0)) FROM overall)::float8 AS all_chars,
       (SELECT sum((n - 10000 / 62.0) ^ 2 / (10000 / 62.0)) FROM firstpos)::float8 AS first_char;

SELECT is((SELECT count(*) FROM secret_chars), 320000::bigint, '320,000 secret characters examined');
SELECT is((SELECT count(*) FROM secret_chars WHERE code NOT IN (SELECT code FROM alphabet)), 0::bigint,
          'every secret character is base62');
SELECT is((SELECT count(*) FROM overall WHERE n > 0), 62::bigint, 'every one of the 62 characters occurs');
SELECT is((SELECT sum(n) FROM overall), 320000::numeric, 'counts add up to 320,000');
SELECT diag(format('chi-square (61 df) over all secret characters: %s; first secret character: %s; '
                   'min/max count %s/%s (expected %s)',
                   round(all_chars::numeric, 2), round(first_char::numeric, 2),
                   (SELECT min(n) FROM overall), (SELECT max(n) FROM overall),
                   round(320000 / 62.0, 1)))
  FROM chi;
SELECT cmp_ok(all_chars, '<', 110.84::float8,
              'chi-square of all 320,000 secret characters < 110.84 (99.99% quantile, 61 df)')
  FROM chi;
SELECT cmp_ok(all_chars, '>', 25::float8,
              'chi-square of all secret characters > 25 (not suspiciously perfect)')
  FROM chi;
SELECT is((SELECT count(*) FROM firstpos WHERE n > 0), 62::bigint,
          'every one of the 62 characters occurs in the first secret position');
SELECT cmp_ok(first_char, '<', 110.84::float8,
              'chi-square of the first secret character (10,000 samples) < 110.84')
  FROM chi;
-- a modulo-biased generator favours the first 8 digits (256 = 4 * 62 + 8)
SELECT cmp_ok((SELECT sum(n) FROM overall o JOIN alphabet a USING (code) WHERE a.v < 8)::float8
              / 320000, '<', (8 / 62.0 + 0.005)::float8,
              'digits 0-7 are not over-represented (no modulo bias)');

SELECT * FROM finish();
ROLLBACK;
