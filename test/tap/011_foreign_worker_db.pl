# 011_foreign_worker_db.pl: when apikey.database names a database where
# apikey is not installed (the default, postgres, while apikey lives in
# another database), the worker can write nothing, but shared memory must
# not fill up for good: idle key entries are still recycled and the log
# queue is still drained (what it held is lost, and the server log says
# so).  Otherwise every later limited key would be refused and every
# outcome dropped.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('foreign');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'apikey'
apikey.database = 'postgres'
apikey.max_tracked_keys = 100
apikey.queue_size = 16
apikey.flush_interval = 100
apikey.log_verifications = 'all'
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('app', 'CREATE EXTENSION apikey');
sub app { return $node->safe_psql('app', $_[0]); }

app("CREATE TABLE many AS SELECT c.key FROM generate_series(1, 60) g, apikey.apikey_create('k' || g, '{}') c");
is(app("SELECT count(*) FILTER (WHERE (apikey.apikey_verify(key)).valid) FROM many"), '60', '60 keys verify in app');
is(app("SELECT count(*) FROM apikey.key_stats()"), '60', 'each has a tracker entry');

# the queue (16) overflowed with the 60 logged outcomes; the worker, in a
# database without apikey, drains it all the same
my $depth = '';
for my $i (1 .. 200)
{
	$depth = app("SELECT queue_depth FROM apikey.server_stats()");
	last if $depth eq '0';
	usleep(100_000);
}
is($depth, '0', 'the log queue is drained although apikey.database has no apikey');
ok($node->wait_for_log(qr/verification outcomes were not logged: extension "apikey" is not installed in database "postgres"/),
	'and the server log says the outcomes were lost, and why');

# idle entries are recycled while verifications go on (one key, over and
# over: ten flushes without a use make the other 59 idle)
my $kept = app("SELECT key FROM many LIMIT 1");
my $left = '';
for my $i (1 .. 300)
{
	app("SELECT apikey.apikey_verify('$kept')");
	$left = app("SELECT count(*) FROM apikey.key_stats()");
	last if $left <= 1;
	usleep(50_000);
}
ok($left <= 1, "idle entries are recycled ($left left of 60)");

# so a new tenant's limited key gets a bucket, and its unlimited keys are
# counted
my $lim = app("SELECT key FROM apikey.apikey_create('limited', '{}', rate_limit => 2, rate_window => '1 hour')");
is(app("SELECT string_agg((apikey.apikey_verify('$lim')).code, ',') FROM generate_series(1, 3)"),
	'VALID,VALID,RATE_LIMITED', 'a new limited key gets a full bucket of 2');
is(app("SELECT untracked FROM apikey.server_stats()"), '0', 'and no use went uncounted');

$node->stop;
done_testing();
