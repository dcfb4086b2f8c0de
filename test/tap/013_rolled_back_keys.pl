# 013_rolled_back_keys.pl: keys that never were cannot crowd shared memory.
# A manager creates 60 limited keys (1 per 1000 years), verifies each once
# and rolls back: no key and no audit row remain, but 50 tracker entries
# with spent buckets did, never recycled (a spent bucket is never idle),
# and another tenant's limited keys were then refused for want of room.
# The worker now removes the entries of spent buckets whose key does not
# exist, so the other tenant's keys all get full buckets.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ApikeyTap;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('rolledback');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'apikey'
apikey.max_tracked_keys = 100
apikey.flush_interval = 100
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION apikey;
CREATE ROLE mallory LOGIN IN ROLE apikey_manager;
CREATE ROLE alice LOGIN IN ROLE apikey_manager;
GRANT CREATE ON SCHEMA public TO alice;
});
sub as { return safe_psql_as($node, @_); }

is(as('mallory', q{
BEGIN;
CREATE TEMP TABLE ghosts AS
	SELECT c.key FROM generate_series(1, 60) g,
		   apikey.apikey_create('ghost ' || g, '{}', rate_limit => 1, rate_window => '1000 years') c;
SELECT count(*) FILTER (WHERE (apikey.apikey_verify(key)).valid) FROM ghosts;
ROLLBACK;
}), '50', 'mallory verifies 60 limited keys in a transaction (50 get a bucket), then rolls it back');
is($node->safe_psql('postgres', "SELECT count(*) FROM apikey.keys"), '0', 'no key is left');
is($node->safe_psql('postgres', "SELECT count(*) FROM apikey.audit WHERE action <> 'verify'"), '0',
	'no audit row of the creations is left (the refused verifications are logged)');

# the worker flushes while something happens: alice's key, over and over
my $tick = as('alice', "SELECT key FROM apikey.apikey_create('tick', '{}')");
my $left = '';
for my $i (1 .. 300)
{
	as('alice', "SELECT apikey.apikey_verify('$tick')");
	$left = $node->safe_psql('postgres', "SELECT count(*) FROM apikey.key_stats() WHERE rate_limit = 1");
	last if $left eq '0';
	usleep(50_000);
}
is($left, '0', 'the 50 entries of keys that never were are reclaimed');

# alice's 45 limited keys (more than fit beside mallory's ghosts: one
# owner role's limited keys hold at most half the table once it is half
# full) all get a full bucket
as('alice', "CREATE TABLE public.mine AS SELECT c.key FROM generate_series(1, 45) g,
	apikey.apikey_create('mine ' || g, '{}', rate_limit => 2, rate_window => '1 hour') c");
is(as('alice', "SELECT count(*) FILTER (WHERE (apikey.apikey_verify(key)).valid) FROM public.mine"), '45',
	"every one of alice's 45 limited keys verifies");
is(as('alice', "SELECT count(*) FILTER (WHERE (apikey.apikey_verify(key)).valid) FROM public.mine"), '45',
	'and again: each had a full bucket of 2');

# an existing key's spent bucket is kept: it is no ghost
my $real = as('alice', "SELECT key FROM apikey.apikey_create('real', '{}', rate_limit => 1, rate_window => '1000 years')");
is(as('alice', "SELECT (apikey.apikey_verify('$real')).code || ' ' || (apikey.apikey_verify('$real')).code"),
	'VALID RATE_LIMITED', 'a real key spends its one token');
for my $i (1 .. 30)
{
	as('alice', "SELECT apikey.apikey_verify('$tick')");
	usleep(50_000);
}
is(as('alice', "SELECT (apikey.apikey_verify('$real')).code"), 'RATE_LIMITED',
	'after many flushes its spent bucket is still spent (not reclaimed)');

$node->stop;
done_testing();
