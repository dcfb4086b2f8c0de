# 017_tenant_share.pl: one tenant's own live keys cannot fill the shared
# key table for everyone.  With apikey.max_tracked_keys = 100, mallory's
# 150 limited keys (1 a day) get entries until the table is half full,
# and no more: once it is, one owner role's limited keys may hold at most
# half of it.
# alice's limited keys then still get buckets, and her unlimited ones are
# still counted.  (An independent attack found the table filled this way
# with live keys, whose spent buckets nothing may reclaim.)
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ApikeyTap;

my $node = PostgreSQL::Test::Cluster->new('share');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'apikey'
apikey.max_tracked_keys = 100
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION apikey;
CREATE ROLE mallory LOGIN IN ROLE apikey_manager;
CREATE ROLE alice LOGIN IN ROLE apikey_manager;
GRANT CREATE ON SCHEMA public TO mallory, alice;
});
sub as { return safe_psql_as($node, @_); }

as('mallory', "CREATE TABLE public.flood AS SELECT c.key FROM generate_series(1, 150) g,
	apikey.apikey_create('flood ' || g, '{}', rate_limit => 1, rate_window => '1 day') c");
is(as('mallory', "SELECT count(*) FILTER (WHERE (apikey.apikey_verify(key)).valid) FROM public.flood"), '50',
	"mallory's limited keys get entries until the table is half full (50), then fail closed");
is($node->safe_psql('postgres', "SELECT count(*) FROM apikey.key_stats()"), '50', 'the table holds 50 entries');

as('alice', "CREATE TABLE public.mine AS SELECT c.key FROM generate_series(1, 20) g,
	apikey.apikey_create('mine ' || g, '{}', rate_limit => 5, rate_window => '1 hour') c");
is(as('alice', "SELECT count(*) FILTER (WHERE (apikey.apikey_verify(key)).valid) FROM public.mine"), '20',
	"every one of alice's 20 limited keys gets a full bucket");
my $untracked = $node->safe_psql('postgres', "SELECT untracked FROM apikey.server_stats()");
my $plain = as('alice', "SELECT key FROM apikey.apikey_create('plain', '{}')");
is(as('alice', "SELECT (apikey.apikey_verify('$plain')).code"), 'VALID', "alice's unlimited key verifies");
is($node->safe_psql('postgres', "SELECT untracked FROM apikey.server_stats()"), $untracked, 'and its use is counted');

$node->stop;
done_testing();
