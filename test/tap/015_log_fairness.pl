# 015_log_fairness.pl: one tenant's flood of failures on its own keys
# cannot push another tenant's failures out of the verification log.
# The queue (200) is not drained meanwhile (flush_interval 1 h): mallory's
# 1,000 INSUFFICIENT_SCOPE outcomes take at most half of it, and alice's 20
# IP_DENIED outcomes all reach apikey.audit.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ApikeyTap;

my $node = PostgreSQL::Test::Cluster->new('fair');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'apikey'
apikey.queue_size = 200
apikey.flush_interval = '1h'
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION apikey;
CREATE ROLE mallory LOGIN IN ROLE apikey_manager;
CREATE ROLE alice LOGIN IN ROLE apikey_manager;
});
sub as { return safe_psql_as($node, @_); }

my $m1 = as('mallory', "SELECT key FROM apikey.apikey_create('m1', '{a:read}')");
my $m2 = as('mallory', "SELECT key FROM apikey.apikey_create('m2', '{a:read}')");
my $a = as('alice', "SELECT key FROM apikey.apikey_create('a', '{a:read}', allowed_cidrs => '{10.0.0.0/8}')");
my $a_id = as('alice', "SELECT id FROM apikey.keys WHERE name = 'a'");

is(as('mallory', "SELECT count(*) FROM generate_series(1, 500) g, (VALUES ('$m1'), ('$m2')) AS ks(k),
	apikey.apikey_verify(ks.k, ARRAY['b:write' || g]) v WHERE v.code = 'INSUFFICIENT_SCOPE'"), '1000',
	"mallory makes 1,000 failures on two of its own keys");
is($node->safe_psql('postgres', "SELECT queue_depth FROM apikey.server_stats()"), '100',
	'they fill half the queue, no more');
is(as('alice', "SELECT count(*) FROM generate_series(1, 20) g, apikey.apikey_verify('$a', '{}', NULL, ('192.0.2.' || g)::inet) v
	WHERE v.code = 'IP_DENIED'"), '20', "alice's key is refused 20 times meanwhile");
is($node->safe_psql('postgres', "SELECT queue_depth FROM apikey.server_stats()"), '120', 'each of them is queued');
is($node->safe_psql('postgres', "SELECT dropped FROM apikey.server_stats()"), '900', "mallory's other 900 are dropped and counted");

$node->safe_psql('postgres', "ALTER SYSTEM SET apikey.flush_interval = 100; SELECT pg_reload_conf()");
is(wait_for($node, "SELECT count(*) FROM apikey.audit WHERE action = 'verify' AND key_id = $a_id AND detail->>'code' = 'IP_DENIED'", '20', 60),
	'20', "all 20 of alice's failures reach apikey.audit");

$node->stop;
done_testing();
