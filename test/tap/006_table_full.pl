# 006_table_full.pl: when apikey.max_tracked_keys is reached, keys without
# a rate limit (their uses go uncounted, and say so in apikey.stats) cannot
# crowd out keys with one, which would otherwise be refused.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('full');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'apikey'
apikey.max_tracked_keys = 100
apikey.flush_interval = '1h'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION apikey');
$node->safe_psql('postgres', "CREATE TABLE k AS SELECT c.key FROM generate_series(1, 150) g, LATERAL apikey.apikey_create('u' || g, '{}') c");
is($node->safe_psql('postgres', "SELECT count(*) FILTER (WHERE (apikey.apikey_verify(key)).valid) FROM k"), '150',
	'150 keys without a limit verify with a table of 100 entries');
my ($tracked, $untracked) = split /\|/, $node->safe_psql('postgres',
	"SELECT (SELECT count(*) FROM apikey.stats WHERE scope = 'key'), untracked FROM apikey.stats WHERE scope = 'server'");
is($tracked, '75', 'they take at most three quarters of the table');
is($untracked, '75', 'the uses that found no room are counted as untracked');
my $lim = $node->safe_psql('postgres', "SELECT key FROM apikey.apikey_create('limited', '{}', rate_limit => 3, rate_window => '1 hour')");
is($node->safe_psql('postgres', "SELECT string_agg((apikey.apikey_verify('$lim')).code, ' ') FROM generate_series(1, 4)"),
	'VALID VALID VALID RATE_LIMITED', 'a key with a rate limit still gets its bucket, not a refusal');
$node->stop;
done_testing();
