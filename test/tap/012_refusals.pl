# 012_refusals.pl: a refused verification takes no token from the key's
# bucket and counts no use.  A 2-per-hour key refused for every reason a
# caller can cause (scope, resource, address, disabled, expired) is still
# VALID twice afterwards, then RATE_LIMITED; apikey.stats shows the bucket
# level and apikey.usage the uses after each step.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ApikeyTap;

my $node = PostgreSQL::Test::Cluster->new('refusals');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'apikey'
apikey.flush_interval = 100
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION apikey');
sub run_sql { return $node->safe_psql('postgres', $_[0]); }

my $k = run_sql("SELECT key FROM apikey.apikey_create('two an hour', '{jobs:read}', resources => '{db-1}',
	allowed_cidrs => '{10.0.0.0/8}', rate_limit => 2, rate_window => '1 hour')");
my $id = run_sql("SELECT id FROM apikey.keys WHERE name = 'two an hour'");
my $ok_args = "'{jobs:read}', 'db-1', '10.1.1.1'";

# every refusal, twice over
is(run_sql("SELECT string_agg(code, ',') FROM (
	SELECT (apikey.apikey_verify('$k', '{jobs:write}', 'db-1', '10.1.1.1')).code
	UNION ALL SELECT (apikey.apikey_verify('$k', '{jobs:read}', 'db-2', '10.1.1.1')).code
	UNION ALL SELECT (apikey.apikey_verify('$k', '{jobs:read}', 'db-1', '192.0.2.1')).code
	UNION ALL SELECT (apikey.apikey_verify('$k', '{jobs:read}', 'db-1', NULL)).code) c, generate_series(1, 2)"),
	'INSUFFICIENT_SCOPE,RESOURCE_DENIED,IP_DENIED,IP_DENIED,INSUFFICIENT_SCOPE,RESOURCE_DENIED,IP_DENIED,IP_DENIED',
	'eight refusals for scope, resource and address');
run_sql("UPDATE apikey.keys SET enabled = false WHERE id = $id");
is(run_sql("SELECT (apikey.apikey_verify('$k', $ok_args)).code FROM generate_series(1, 2) LIMIT 1"), 'DISABLED', 'refused while disabled');
run_sql("UPDATE apikey.keys SET enabled = true, expires_at = now() - interval '1 second' WHERE id = $id");
is(run_sql("SELECT (apikey.apikey_verify('$k', $ok_args)).code FROM generate_series(1, 2) LIMIT 1"), 'EXPIRED', 'refused while expired');
run_sql("UPDATE apikey.keys SET expires_at = NULL WHERE id = $id");

is(run_sql("SELECT count(*) FROM apikey.key_stats() WHERE key_id = $id AND bucket_tokens IS NOT NULL"), '0',
	'after twelve refusals the key has no bucket yet: no token was taken');
is(run_sql("SELECT coalesce((SELECT sum(unflushed_uses) FROM apikey.key_stats() WHERE key_id = $id), 0)
	+ coalesce((SELECT sum(use_count) FROM apikey.usage WHERE key_id = $id), 0)"), '0',
	'and no use was counted');

is(run_sql("SELECT string_agg((apikey.apikey_verify('$k', $ok_args)).code, ',') FROM generate_series(1, 3)"),
	'VALID,VALID,RATE_LIMITED', 'then the full bucket: two VALID, the third RATE_LIMITED');
is(wait_for($node, "SELECT use_count FROM apikey.usage WHERE key_id = $id", '2'), '2', 'exactly the two VALID ones are counted as uses');
is(run_sql("SELECT floor(bucket_tokens) FROM apikey.key_stats() WHERE key_id = $id"), '0', 'and the bucket is empty');

# a refusal of a key whose bucket is empty is the refusal, not RATE_LIMITED
is(run_sql("SELECT (apikey.apikey_verify('$k', '{jobs:write}', 'db-1', '10.1.1.1')).code"), 'INSUFFICIENT_SCOPE',
	'a refused verification of a spent key says why, not RATE_LIMITED');

$node->stop;
done_testing();
