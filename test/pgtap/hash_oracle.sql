-- hash_oracle.sql: the stored hash is SHA-256 of the whole key string.
--
-- For keys created with apikey_create under several prefixes (the GUC
-- default, an explicit prefix, prefixes with inner underscores), the stored
-- secret_hash must equal two independent oracles: pgcrypto's
-- digest(key, 'sha256') and the builtin sha256(convert_to(key, 'UTF8')).
-- Rotation must store the new key's hash the same way, and the raw key (or
-- its secret part) must appear in no column of any table of the extension.
--
-- Needs: CREATE EXTENSION pgtap, pgcrypto, apikey; run as a superuser.
BEGIN;
SELECT plan(60);

-- The documented default prefix, whatever the session says.
SET LOCAL apikey.default_prefix TO DEFAULT;

CREATE TEMP TABLE made (
	label		text PRIMARY KEY,
	want_prefix	text NOT NULL,
	key_id		bigint NOT NULL,
	key			text NOT NULL
) ON COMMIT DROP;

INSERT INTO made
SELECT 'default', 'ak', c.key_id, c.key
  FROM apikey.apikey_create('hash oracle: default prefix', '{}') c;
INSERT INTO made
SELECT 'sk_test', 'sk_test', c.key_id, c.key
  FROM apikey.apikey_create('hash oracle: sk_test', ARRAY['read'], prefix => 'sk_test') c;
INSERT INTO made
SELECT 'dbaudit_live', 'dbaudit_live', c.key_id, c.key
  FROM apikey.apikey_create('hash oracle: dbaudit_live', ARRAY['audit:read'],
                            prefix => 'dbaudit_live', owner => 'org-42',
                            meta => '{"plan": "pro"}') c;
INSERT INTO made
SELECT 'dbm', 'dbm', c.key_id, c.key
  FROM apikey.apikey_create('hash oracle: dbm', ARRAY['jobs:*'], prefix => 'dbm') c;
INSERT INTO made
SELECT 'supascale', 'supascale', c.key_id, c.key
  FROM apikey.apikey_create('hash oracle: supascale', '{}', prefix => 'supascale') c;

-- A default prefix taken from the GUC rather than the built-in default.
SET LOCAL apikey.default_prefix = 'dbackup';
INSERT INTO made
SELECT 'guc dbackup', 'dbackup', c.key_id, c.key
  FROM apikey.apikey_create('hash oracle: GUC default dbackup', '{}') c;
SET LOCAL apikey.default_prefix TO DEFAULT;

-- secret part of a key: the 32 characters after "<prefix>_"
CREATE FUNCTION pg_temp.secret_of(k text, p text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT
AS $$ SELECT substr(k, length(p) + 2, 32) $$;

-- How many rows of any table in schema apikey mention needle, as text or as
-- the hex of its bytes (what a bytea column would show).
CREATE FUNCTION pg_temp.rows_mentioning(needle text) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
	rel regclass;
	n bigint;
	total bigint := 0;
BEGIN
	FOR rel IN
		SELECT c.oid FROM pg_catalog.pg_class c
		 WHERE c.relnamespace = 'apikey'::regnamespace AND c.relkind IN ('r', 'p')
	LOOP
		EXECUTE format('SELECT count(*) FROM %s t WHERE strpos(row_to_json(t)::text, $1) > 0'
					   ' OR strpos(row_to_json(t)::text, $2) > 0', rel)
		   INTO n
		  USING needle, encode(convert_to(needle, 'UTF8'), 'hex');
		total := total + n;
	END LOOP;
	RETURN total;
END
$$;

SELECT is((SELECT count(*) FROM made), 6::bigint, 'six keys created');

-- 1. shape and prefix (6 x 2)
SELECT ok(m.key ~ ('^' || m.want_prefix || '_[0-9A-Za-z]{38}$'),
          format('%s: key is %s_ + 38 base62 characters', m.label, m.want_prefix))
  FROM made m ORDER BY m.label COLLATE "C";
SELECT is(k.prefix, m.want_prefix, format('%s: prefix column is %s', m.label, m.want_prefix))
  FROM made m JOIN apikey.keys k ON k.id = m.key_id ORDER BY m.label COLLATE "C";

-- 2. the two hash oracles (6 x 2)
SELECT is(k.secret_hash, digest(m.key, 'sha256'),
          format('%s: secret_hash = pgcrypto digest(key, ''sha256'')', m.label))
  FROM made m JOIN apikey.keys k ON k.id = m.key_id ORDER BY m.label COLLATE "C";
SELECT is(k.secret_hash, sha256(convert_to(m.key, 'UTF8')),
          format('%s: secret_hash = sha256(convert_to(key, ''UTF8''))', m.label))
  FROM made m JOIN apikey.keys k ON k.id = m.key_id ORDER BY m.label COLLATE "C";

-- 3. the raw key is in no column of its row (6 x 2)
SELECT is(strpos(row_to_json(k)::text, pg_temp.secret_of(m.key, m.want_prefix)), 0,
          format('%s: the row (as JSON) does not contain the secret part', m.label))
  FROM made m JOIN apikey.keys k ON k.id = m.key_id ORDER BY m.label COLLATE "C";
SELECT ok(strpos(row_to_json(k)::text, m.key) = 0
          AND strpos(row_to_json(k)::text, encode(convert_to(m.key, 'UTF8'), 'hex')) = 0,
          format('%s: the row contains neither the key nor its bytes in hex', m.label))
  FROM made m JOIN apikey.keys k ON k.id = m.key_id ORDER BY m.label COLLATE "C";

-- 4. every key verifies (so the hash we checked is the one verify uses) (6)
SELECT is((apikey.apikey_verify(m.key)).code, 'VALID', format('%s: key verifies VALID', m.label))
  FROM made m ORDER BY m.label COLLATE "C";

-- 5. nothing anywhere in the extension's tables holds a secret (1)
SELECT is((SELECT sum(pg_temp.rows_mentioning(pg_temp.secret_of(m.key, m.want_prefix))) FROM made m),
          0::numeric, 'no row of any apikey table contains any secret part');

-- 6. rotation without grace: the new key's hash replaces the old one
CREATE TEMP TABLE rot (label text PRIMARY KEY, old_key text, new_key text) ON COMMIT DROP;
INSERT INTO rot
SELECT m.label, m.key, apikey.apikey_rotate(m.key_id) FROM made m WHERE m.label = 'sk_test';

SELECT ok(r.new_key ~ '^sk_test_[0-9A-Za-z]{38}$', 'rotated sk_test key keeps the prefix and shape')
  FROM rot r WHERE r.label = 'sk_test';
SELECT isnt(r.new_key, r.old_key, 'rotation returns a different key') FROM rot r WHERE r.label = 'sk_test';
SELECT is(k.secret_hash, digest(r.new_key, 'sha256'),
          'after rotation: secret_hash = pgcrypto digest(new key, ''sha256'')')
  FROM rot r JOIN made m USING (label) JOIN apikey.keys k ON k.id = m.key_id WHERE r.label = 'sk_test';
SELECT is(k.secret_hash, sha256(convert_to(r.new_key, 'UTF8')),
          'after rotation: secret_hash = sha256(convert_to(new key, ''UTF8''))')
  FROM rot r JOIN made m USING (label) JOIN apikey.keys k ON k.id = m.key_id WHERE r.label = 'sk_test';
SELECT ok(k.secret_hash IS DISTINCT FROM digest(r.old_key, 'sha256')
          AND k.grace_secret_hash IS NULL,
          'after rotation without grace: the old key''s hash is neither secret_hash nor a grace hash')
  FROM rot r JOIN made m USING (label) JOIN apikey.keys k ON k.id = m.key_id WHERE r.label = 'sk_test';
SELECT is(k.hint, format('sk_test_%s…%s', substr(r.new_key, 9, 4), right(r.new_key, 4)),
          'after rotation: hint describes the new key')
  FROM rot r JOIN made m USING (label) JOIN apikey.keys k ON k.id = m.key_id WHERE r.label = 'sk_test';
SELECT is((apikey.apikey_verify(r.new_key)).code, 'VALID', 'rotated sk_test key verifies VALID')
  FROM rot r WHERE r.label = 'sk_test';

-- 7. rotation with grace: new hash stored, old hash kept as the grace hash
INSERT INTO rot
SELECT m.label, m.key, apikey.apikey_rotate(m.key_id, '1 hour') FROM made m WHERE m.label = 'dbaudit_live';

SELECT ok(r.new_key ~ '^dbaudit_live_[0-9A-Za-z]{38}$', 'rotated dbaudit_live key keeps the prefix and shape')
  FROM rot r WHERE r.label = 'dbaudit_live';
SELECT is(k.secret_hash, digest(r.new_key, 'sha256'),
          'after rotation with grace: secret_hash = digest(new key, ''sha256'')')
  FROM rot r JOIN made m USING (label) JOIN apikey.keys k ON k.id = m.key_id WHERE r.label = 'dbaudit_live';
SELECT is(k.secret_hash, sha256(convert_to(r.new_key, 'UTF8')),
          'after rotation with grace: secret_hash = sha256(convert_to(new key, ''UTF8''))')
  FROM rot r JOIN made m USING (label) JOIN apikey.keys k ON k.id = m.key_id WHERE r.label = 'dbaudit_live';
SELECT is(k.grace_secret_hash, sha256(convert_to(r.old_key, 'UTF8')),
          'after rotation with grace: the old key''s hash is kept, computed the same way')
  FROM rot r JOIN made m USING (label) JOIN apikey.keys k ON k.id = m.key_id WHERE r.label = 'dbaudit_live';
SELECT is((apikey.apikey_verify(r.new_key)).code, 'VALID', 'new dbaudit_live key verifies VALID during grace')
  FROM rot r WHERE r.label = 'dbaudit_live';
SELECT is((apikey.apikey_verify(r.old_key)).code, 'VALID', 'old dbaudit_live key still verifies VALID during grace')
  FROM rot r WHERE r.label = 'dbaudit_live';

-- 8. rotating again (default key): id kept, hash follows
INSERT INTO rot
SELECT m.label, m.key, apikey.apikey_rotate(m.key_id) FROM made m WHERE m.label = 'default';
SELECT is(k.secret_hash, digest(r.new_key, 'sha256'),
          'default key after rotation: secret_hash = digest(new key, ''sha256'')')
  FROM rot r JOIN made m USING (label) JOIN apikey.keys k ON k.id = m.key_id WHERE r.label = 'default';
SELECT is((apikey.apikey_verify(r.new_key)).key_id, m.key_id, 'rotated default key keeps its id')
  FROM rot r JOIN made m USING (label) WHERE r.label = 'default';

-- 9. after rotations, still no secret (old or new) in any row
SELECT is((SELECT sum(pg_temp.rows_mentioning(pg_temp.secret_of(r.new_key, m.want_prefix))
                    + pg_temp.rows_mentioning(pg_temp.secret_of(r.old_key, m.want_prefix)))
             FROM rot r JOIN made m USING (label)),
          0::numeric, 'after rotations no row of any apikey table contains an old or new secret');

SELECT * FROM finish();
ROLLBACK;
