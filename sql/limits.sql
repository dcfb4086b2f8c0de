\set VERBOSITY terse
SET client_min_messages = warning;
-- without shared_preload_libraries a backend's first verification warns
-- that nothing is tracked (sql/preload.sql tests that): take it here,
-- unshown, so this file's output is the same with and without preload
SET client_min_messages = error;
SELECT v.code AS first_verification FROM apikey.apikey_verify('') v;
SET client_min_messages = warning;
--
-- Stored values have limits, so a key can never be made expensive to
-- verify, and apikey_create and a plain UPDATE enforce them alike; a huge
-- argument is refused before anything looks at its elements.
--
SELECT key_id AS id, key AS k FROM apikey.apikey_create('limits', '{jobs:read}') \gset

-- names: not blank, whatever the blank characters; at most 256 characters
SELECT n, (SELECT count(*) FROM apikey.apikey_create(v, '{}')) AS created
  FROM (VALUES (1, 'a'), (2, repeat('é', 256)), (3, ' a '), (4, U&'\00A0x')) AS t(n, v) ORDER BY n;
SELECT * FROM apikey.apikey_create(U&'\00A0\00A0', '{}');
SELECT * FROM apikey.apikey_create(U&'\200B', '{}');
SELECT * FROM apikey.apikey_create(U&'\3000\2003\FEFF', '{}');
SELECT * FROM apikey.apikey_create(E'\t\n ', '{}');
SELECT * FROM apikey.apikey_create(repeat('é', 257), '{}');
SELECT * FROM apikey.apikey_create(repeat('x', 10000000), '{}');
UPDATE apikey.keys SET name = U&'\2060\200D' WHERE id = :id;
UPDATE apikey.keys SET name = repeat('x', 257) WHERE id = :id;
SELECT apikey.name_valid(U&'\00A0ok'), apikey.name_valid(U&'\2028'), apikey.name_valid('');

-- owner: at most 256 characters
SELECT * FROM apikey.apikey_create('o', '{}', owner => repeat('é', 257));
SELECT * FROM apikey.apikey_create('o', '{}', owner => repeat('x', 10000000));

-- scopes: at most 64; a huge array is refused at once
SELECT * FROM apikey.apikey_create('s', (SELECT array_agg('s' || g) FROM generate_series(1, 65) g));
SELECT * FROM apikey.apikey_create('s', array_fill('a'::text, ARRAY[1000000]));
UPDATE apikey.keys SET scopes = (SELECT array_agg('s' || g) FROM generate_series(1, 65) g) WHERE id = :id;

-- resources: at most 256 ids of 1 to 256 bytes
SELECT count(*) FROM apikey.apikey_create('r', '{}', resources => (SELECT array_agg('r' || g) FROM generate_series(1, 256) g));
SELECT * FROM apikey.apikey_create('r', '{}', resources => (SELECT array_agg('r' || g) FROM generate_series(1, 257) g));
SELECT * FROM apikey.apikey_create('r', '{}', resources => ARRAY['ok', repeat('x', 257)]);
SELECT * FROM apikey.apikey_create('r', '{}', resources => array_fill('a'::text, ARRAY[20000000]));
UPDATE apikey.keys SET resources = (SELECT array_agg('r' || g) FROM generate_series(1, 257) g) WHERE id = :id;
UPDATE apikey.keys SET resources = ARRAY[repeat('x', 257)] WHERE id = :id;
UPDATE apikey.keys SET resources = (SELECT array_agg(repeat('x', 253) || lpad(g::text, 3, '0')) FROM generate_series(1, 256) g) WHERE id = :id;
SELECT apikey.resources_valid('{a}'), apikey.resources_valid('{}'), apikey.resources_valid('{{a},{b}}'),
       apikey.resources_valid(ARRAY['a', NULL]);

-- allowed_cidrs: at most 64
SELECT * FROM apikey.apikey_create('c', '{}', allowed_cidrs => (SELECT array_agg(('10.0.' || g || '.0/24')::cidr) FROM generate_series(1, 65) g));
UPDATE apikey.keys SET allowed_cidrs = (SELECT array_agg(('10.0.' || g || '.0/24')::cidr) FROM generate_series(1, 65) g) WHERE id = :id;
UPDATE apikey.keys SET allowed_cidrs = (SELECT array_agg(('10.0.' || g || '.0/24')::cidr) FROM generate_series(1, 64) g) WHERE id = :id;

-- meta: at most 8 kB
SELECT * FROM apikey.apikey_create('m', '{}', meta => jsonb_build_object('x', repeat('x', 9000)));
UPDATE apikey.keys SET meta = jsonb_build_object('x', repeat('x', 9000)) WHERE id = :id;
-- measured uncompressed: a value that compresses well is no way around it
UPDATE apikey.keys SET meta = jsonb_build_object('x', repeat('x', 2000000)) WHERE id = :id;
SELECT apikey.meta_valid(jsonb_build_object('x', repeat('x', 9000))), apikey.meta_valid('[]');
UPDATE apikey.keys SET meta = jsonb_build_object('x', repeat('x', 8000)) WHERE id = :id;

-- verify: at most 64 required scopes, refused before they are read
SELECT code FROM apikey.apikey_verify(:'k', (SELECT array_agg('s' || g) FROM generate_series(1, 64) g));
SELECT code FROM apikey.apikey_verify(:'k', (SELECT array_agg('s' || g) FROM generate_series(1, 65) g));
SELECT code FROM apikey.apikey_verify(:'k', array_fill('jobs:read'::text, ARRAY[10000000]));

-- the key at every limit still verifies
SELECT code, cardinality(resources) AS resources, cardinality(scopes) AS scopes
  FROM apikey.apikey_verify(:'k', '{jobs:read}', repeat('x', 253) || '256', '10.0.64.1');
SELECT code FROM apikey.apikey_verify(:'k', '{jobs:read}', repeat('x', 253) || '257', '10.0.64.1');
DELETE FROM apikey.keys WHERE name IN ('a', ' a ', U&'\00A0x', 'limits', 'r') OR name = repeat('é', 256);
