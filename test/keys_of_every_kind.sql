-- keys_of_every_kind.sql: one key of each kind, listed in public.raw (tag,
-- key_id, key): plain; bound (owner, resources, networks, meta, expiry,
-- prefix); rotated with a grace period (rot, rot-new); disabled (off);
-- expired (old); deleted (gone).  Run by a superuser in a database where
-- apikey is installed, at any version (1.0 included): the upgrade test
-- and the move between majors (test/tap/009_cross_major.pl) start from it.
CREATE TABLE public.raw (tag text PRIMARY KEY, key_id bigint, key text);
INSERT INTO public.raw SELECT 'plain', key_id, key FROM apikey.apikey_create('plain', '{jobs:read}');
INSERT INTO public.raw SELECT 'bound', key_id, key
  FROM apikey.apikey_create('bound', '{jobs:*}', owner => 'org-1', resources => '{db-1}',
                            allowed_cidrs => '{10.0.0.0/8}', meta => '{"tier": "gold"}',
                            expires_at => now() + interval '30 days', prefix => 'dbh');
INSERT INTO public.raw SELECT 'rot', key_id, key FROM apikey.apikey_create('rotated', '{jobs:read}');
INSERT INTO public.raw SELECT 'rot-new', key_id, apikey.apikey_rotate(key_id, '1 day') FROM public.raw WHERE tag = 'rot';
INSERT INTO public.raw SELECT 'off', key_id, key FROM apikey.apikey_create('disabled', '{jobs:read}');
UPDATE apikey.keys SET enabled = false WHERE id = (SELECT key_id FROM public.raw WHERE tag = 'off');
INSERT INTO public.raw SELECT 'old', key_id, key FROM apikey.apikey_create('expired', '{jobs:read}');
UPDATE apikey.keys SET expires_at = now() - interval '1 day' WHERE id = (SELECT key_id FROM public.raw WHERE tag = 'old');
INSERT INTO public.raw SELECT 'gone', key_id, key FROM apikey.apikey_create('deleted', '{jobs:read}');
DELETE FROM apikey.keys WHERE id = (SELECT key_id FROM public.raw WHERE tag = 'gone');
