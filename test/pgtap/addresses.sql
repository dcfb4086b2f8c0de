-- addresses.sql: an IPv4 client and the same client in IPv4-mapped IPv6
-- form (::ffff:a.b.c.d) get the same answer from every allowed_cidrs, in
-- whichever form the networks are written, IPv6 ranges that contain the
-- mapped addresses (::/0, ::ffff:0:0/96) included; and a few answers are
-- pinned down.
--
-- Needs: CREATE EXTENSION pgtap, apikey; run as a superuser.
BEGIN;
SELECT plan(8);

CREATE TEMP TABLE nets (n int, cidrs cidr[]);
INSERT INTO nets VALUES
	(1, '{::/0}'), (2, '{0.0.0.0/0}'), (3, '{::ffff:0:0/96}'), (4, '{::ffff:10.0.0.0/104}'),
	(5, '{10.0.0.0/8}'), (6, '{2001:db8::/32}'), (7, '{::/1}'), (8, '{::ffff:10.0.0.1/128}'),
	(9, '{10.0.0.1/32}'), (10, '{192.168.0.0/16,2001:db8::/32}'), (11, '{::/96}'), (12, '{8000::/1}');
CREATE TEMP TABLE nkeys AS
	SELECT n.n, c.key FROM nets n, LATERAL apikey.apikey_create('net ' || n.n, '{}', allowed_cidrs => n.cidrs) c;
CREATE TEMP TABLE clients (v4 inet);
INSERT INTO clients VALUES ('10.0.0.1'), ('10.255.0.9'), ('192.168.1.1'), ('0.0.0.0'), ('255.255.255.255');
CREATE TEMP TABLE answers AS
	SELECT k.n, c.v4,
		   (SELECT code FROM apikey.apikey_verify(k.key, '{}', NULL, c.v4)) AS as_v4,
		   (SELECT code FROM apikey.apikey_verify(k.key, '{}', NULL, ('::ffff:' || host(c.v4))::inet)) AS as_mapped
	  FROM nkeys k, clients c;

SELECT is((SELECT count(*)::int FROM answers), 60, 'every network against every client, in both forms');
SELECT is((SELECT count(*)::int FROM answers WHERE as_v4 IS DISTINCT FROM as_mapped), 0,
	'an IPv4 client and its mapped form always get the same answer');
SELECT is((SELECT count(*)::int FROM answers WHERE as_v4 NOT IN ('VALID', 'IP_DENIED')), 0,
	'every answer is VALID or IP_DENIED');
SELECT is((SELECT string_agg(as_v4, ',' ORDER BY v4) FROM answers WHERE n = 1), 'VALID,VALID,VALID,VALID,VALID',
	'::/0 allows every IPv4 client (it contains their mapped form)');
SELECT is((SELECT string_agg(as_v4, ',' ORDER BY v4) FROM answers WHERE n = 3), 'VALID,VALID,VALID,VALID,VALID',
	'::ffff:0:0/96 allows every IPv4 client');
SELECT is((SELECT string_agg(n || ':' || as_v4, ',' ORDER BY n) FROM answers WHERE v4 = '10.0.0.1'),
	'1:VALID,2:VALID,3:VALID,4:VALID,5:VALID,6:IP_DENIED,7:VALID,8:VALID,9:VALID,10:IP_DENIED,11:IP_DENIED,12:IP_DENIED',
	'10.0.0.1 against each network');
SELECT is((SELECT string_agg(n || ':' || as_v4, ',' ORDER BY n) FROM answers WHERE v4 = '192.168.1.1'),
	'1:VALID,2:VALID,3:VALID,4:IP_DENIED,5:IP_DENIED,6:IP_DENIED,7:VALID,8:IP_DENIED,9:IP_DENIED,10:VALID,11:IP_DENIED,12:IP_DENIED',
	'192.168.1.1 against each network');
SELECT is((SELECT string_agg(n || ':' || (SELECT code FROM apikey.apikey_verify(key, '{}', NULL, '2001:db8::1')), ',' ORDER BY n)
			 FROM nkeys WHERE n IN (1, 2, 3, 6)),
	'1:VALID,2:IP_DENIED,3:IP_DENIED,6:VALID', 'a plain IPv6 client is matched as itself only');

SELECT * FROM finish();
ROLLBACK;
