# 014_lowered_max.pl: lowering apikey.max_tracked_keys across a clean
# restart reads back at most the new maximum from the state file, those
# holding unwritten usage first, logs what it dropped, and leaves shared
# memory as sized (no "out of shared memory" later).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('lowered');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'apikey'
apikey.max_tracked_keys = 400
max_locks_per_transaction = 64
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION apikey');
# 100 limited keys with a token spent (worth keeping: dropping one would
# refill its bucket), 200 unlimited ones
$node->safe_psql('postgres', "CREATE TABLE ks AS SELECT c.key_id, c.key FROM generate_series(1, 300) g,
	apikey.apikey_create('k' || g, '{}', rate_limit => CASE WHEN g <= 100 THEN 5 END,
						 rate_window => CASE WHEN g <= 100 THEN interval '1 hour' END) c");
is($node->safe_psql('postgres', "SELECT count(*) FILTER (WHERE (apikey.apikey_verify(key)).valid) FROM ks"), '300', '300 keys verify');
is($node->safe_psql('postgres', "SELECT count(*) || ' ' || count(*) FILTER (WHERE rate_limit = 5 AND floor(bucket_tokens) = 4) FROM apikey.key_stats()"),
	'300 100', '300 entries, 100 of them with a spent token');

$node->stop('fast');
$node->append_conf('postgresql.conf', "apikey.max_tracked_keys = 150\n");
$node->start;
is($node->safe_psql('postgres', "SELECT count(*) FROM apikey.key_stats()"), '150', 'at most the new maximum is read back');
is($node->safe_psql('postgres', "SELECT count(*) FROM apikey.key_stats() WHERE rate_limit = 5 AND floor(bucket_tokens) = 4"),
	'100', 'every entry with a spent bucket is among them, its level kept');
like(slurp_file($node->logfile), qr/150 of 300 saved key entries did not fit in apikey.max_tracked_keys = 150 and were dropped/,
	'the server log says how many were dropped');
# lock-heavy work afterwards still finds shared memory
is($node->safe_psql('postgres', "BEGIN; CREATE TEMP TABLE t AS SELECT 1; DO \$\$ BEGIN FOR i IN 1..500 LOOP EXECUTE format('CREATE TEMP TABLE t%s (i int)', i); END LOOP; END \$\$; SELECT 'ok'; COMMIT"),
	'ok', 'and 500 new relations in one transaction still get their locks');
unlike(slurp_file($node->logfile), qr/out of shared memory/, 'no "out of shared memory"');

$node->stop;
done_testing();
