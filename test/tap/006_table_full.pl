# 006_table_full.pl: when apikey.max_tracked_keys is reached, keys without
# a rate limit (their uses go uncounted, and say so in apikey.stats) cannot
# crowd out keys with one, which would otherwise be refused; and a key of a
# re-created extension does not inherit the state of the old key that had
# its id.
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
# DROP and CREATE EXTENSION: ids start over, tracked state does not carry over
$node->safe_psql('postgres', 'CREATE DATABASE again');
$node->safe_psql('again', 'CREATE EXTENSION apikey');
my ($id1, $k1) = split /\|/, $node->safe_psql('again', "SELECT key_id, key FROM apikey.apikey_create('first', '{}', rate_limit => 2, rate_window => '1 hour')");
is($node->safe_psql('again', "SELECT string_agg((apikey.apikey_verify('$k1')).code, ' ') FROM generate_series(1, 3)"),
	'VALID VALID RATE_LIMITED', 'a key spends its bucket');
$node->safe_psql('again', 'SET apikey.allow_drop = on; DROP EXTENSION apikey; CREATE EXTENSION apikey');
my ($id2, $k2) = split /\|/, $node->safe_psql('again', "SELECT key_id, key FROM apikey.apikey_create('second', '{}', rate_limit => 2, rate_window => '1 hour')");
is($id2, $id1, 'after DROP and CREATE EXTENSION a new key gets the same id');
is($node->safe_psql('again', "SELECT string_agg((apikey.apikey_verify('$k2')).code, ' ') FROM generate_series(1, 2)"),
	'VALID VALID', 'and a full bucket of its own');

$node->stop;
done_testing();
