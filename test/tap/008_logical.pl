# 008_logical.pl: apikey.keys replicated by logical replication.  The
# apply worker fires row triggers only (never statement triggers), in
# replication role replica: the verified-key cache's invalidation trigger
# is a row trigger enabled ALWAYS, so a subscriber's backends see a
# replicated change to a key they have cached.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ApikeyTap;

my $conf = qq{
shared_preload_libraries = 'apikey'
apikey.flush_interval = 200
};
my $pub = PostgreSQL::Test::Cluster->new('publisher');
$pub->init(allows_streaming => 'logical');
$pub->append_conf('postgresql.conf', $conf);
$pub->start;
my $sub = PostgreSQL::Test::Cluster->new('subscriber');
$sub->init;
$sub->append_conf('postgresql.conf', $conf);
$sub->start;

$pub->safe_psql('postgres', q{
CREATE EXTENSION apikey;
CREATE TABLE tk (name text PRIMARY KEY, key text);
INSERT INTO tk SELECT n, key FROM unnest(ARRAY['replicated', 'deleted']) n, apikey.apikey_create(n, '{jobs:read}') k;
CREATE PUBLICATION keys_pub FOR TABLE apikey.keys, tk;
});
$sub->safe_psql('postgres', q{
CREATE EXTENSION apikey;
CREATE TABLE tk (name text PRIMARY KEY, key text);
});
my $connstr = $pub->connstr . ' dbname=postgres';
$sub->safe_psql('postgres', "CREATE SUBSCRIPTION keys_sub CONNECTION '$connstr' PUBLICATION keys_pub");
$sub->wait_for_subscription_sync($pub, 'keys_sub');

my $app = $sub->background_psql('postgres');
sub code { return $app->query_safe("SELECT (apikey.apikey_verify(key, '{jobs:read}')).code FROM tk WHERE name = '$_[0]'"); }
sub hits { return $sub->safe_psql('postgres', "SELECT cache_hits FROM apikey.stats WHERE scope = 'server'"); }

is(code('replicated') . ' ' . code('deleted'), 'VALID VALID', 'keys copied to the subscriber verify there');
my $h = hits();
is(code('replicated') . ' ' . code('deleted'), 'VALID VALID', 'and again');
is(hits() - $h, 2, 'from the subscriber session\'s cache');

$pub->safe_psql('postgres', "UPDATE apikey.keys SET scopes = '{billing:read}' WHERE name = 'replicated'");
$pub->safe_psql('postgres', "DELETE FROM apikey.keys WHERE name = 'deleted'");
$pub->wait_for_catchup('keys_sub');
is(code('replicated') . ' ' . code('deleted'), 'INSUFFICIENT_SCOPE NOT_FOUND',
	'after replicated UPDATE and DELETE, the cached keys are INSUFFICIENT_SCOPE and NOT_FOUND');
$app->quit;

$sub->stop;
$pub->stop;
done_testing();
