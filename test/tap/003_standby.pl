# 003_standby.pl: a streaming hot standby with apikey preloaded.  Keys
# created, rotated and disabled on the primary verify (and stop verifying)
# there after replay; rate limits and usage are counted per server and
# shown in apikey.stats; the worker never runs there and nothing errors;
# the verified-key cache of a standby backend follows replay.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ApikeyTap;

my $conf = qq{
shared_preload_libraries = 'apikey'
apikey.flush_interval = 100
};
my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $conf);
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION apikey');
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;

sub on_standby { return $standby->safe_psql('postgres', $_[0]); }
sub replay { $primary->wait_for_catchup($standby, 'replay'); }

my $live = $primary->safe_psql('postgres', "SELECT key FROM apikey.apikey_create('live', '{jobs:read}')");
my $lim = $primary->safe_psql('postgres', "SELECT key FROM apikey.apikey_create('lim', '{}', rate_limit => 4, rate_window => '1 hour')");
my $rot = $primary->safe_psql('postgres', "SELECT key FROM apikey.apikey_create('rot', '{}')");
replay();
is(on_standby("SELECT pg_is_in_recovery()"), 't', 'the standby is in recovery');
is(on_standby("SELECT (apikey.apikey_verify('$live', '{jobs:read}')).code"), 'VALID', 'a key created on the primary verifies on the standby');

# rotation and disabling reach the standby
my $rot2 = $primary->safe_psql('postgres', "SELECT apikey.apikey_rotate(id) FROM apikey.keys WHERE name = 'rot'");
$primary->safe_psql('postgres', "UPDATE apikey.keys SET enabled = false WHERE name = 'live'");
replay();
is(on_standby("SELECT string_agg((apikey.apikey_verify(k)).code, ' ' ORDER BY n) FROM unnest(ARRAY['$rot', '$rot2', '$live']) WITH ORDINALITY AS t(k, n)"),
	'NOT_FOUND VALID DISABLED', 'after replay: the old secret is gone, the new one verifies, the disabled key is DISABLED');

# rate limits apply on the standby, counted there
is(on_standby("SELECT count(*) FILTER (WHERE (apikey.apikey_verify('$lim')).valid) FROM generate_series(1, 6)"),
	'4', 'the standby enforces the rate limit: 4 of 6 VALID');
is(on_standby("SELECT rate_limit || ' ' || (bucket_tokens < 1) FROM apikey.stats WHERE name = 'lim'"), '4 true',
	'and shows its bucket in apikey.stats');
is($primary->safe_psql('postgres', "SELECT count(*) FILTER (WHERE (apikey.apikey_verify('$lim')).valid) FROM generate_series(1, 6)"),
	'4', 'the primary has its own bucket');

# usage is counted on the standby and shown live, never written
on_standby("SELECT apikey.apikey_verify('$rot2') FROM generate_series(1, 7)");
is(on_standby("SELECT unflushed_uses FROM apikey.stats WHERE name = 'rot'"), '8',
	'usage on the standby is counted in shared memory (1 + 7)');
is(on_standby("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'apikey worker'"), '0', 'no worker runs on the standby');
is(wait_for($primary, "SELECT string_agg(k.name, ',') FROM apikey.usage u JOIN apikey.keys k ON k.id = u.key_id", 'lim'), 'lim',
	'the primary writes only its own usage (lim, verified there)');
# what the primary's worker writes in place reaches the standby by WAL
$primary->safe_psql('postgres', "SELECT apikey.apikey_verify('$rot2') FROM generate_series(1, 3)");
is(wait_for($primary, "SELECT use_count FROM apikey.usage u JOIN apikey.keys k ON k.id = u.key_id WHERE k.name = 'rot'", '3'), '3',
	'the primary writes its own usage of rot (3)');
$primary->safe_psql('postgres', "SELECT apikey.apikey_verify('$rot2') FROM generate_series(1, 2)");
is(wait_for($primary, "SELECT use_count FROM apikey.usage u JOIN apikey.keys k ON k.id = u.key_id WHERE k.name = 'rot'", '5'), '5',
	'and adds two more uses in place (5)');
# the primary's worker has flushed twice since the standby counted its uses,
# at the same flush_interval: a worker on the standby would have too
is(on_standby("SELECT unflushed_uses FROM apikey.stats WHERE name = 'rot'"), '8',
	'the standby\'s uses stay in its shared memory meanwhile: nothing flushes them');
$primary->safe_psql('postgres', "CREATE TABLE flush_wal ()");
replay();
is(on_standby("SELECT use_count FROM apikey.usage u JOIN apikey.keys k ON k.id = u.key_id WHERE k.name = 'rot'"), '5',
	'the standby reads the same use_count after replay');
ok(!$standby->log_contains(qr/ERROR|FATAL/), 'the standby logged no error');

# the standby refuses writes, verification keeps working
my ($ret, $out, $err) = $standby->psql('postgres', "SELECT * FROM apikey.apikey_create('nope', '{}')");
like($err, qr/read-only transaction/, 'apikey_create is refused on the standby (read-only)');
is(on_standby("SELECT (apikey.apikey_verify('ak_malformed')).code"), 'MALFORMED', 'a malformed key is MALFORMED there');

# verification failures on the standby are counted, not written
on_standby("SELECT apikey.apikey_verify('ak_nope')");
is(on_standby("SELECT (verifications->>'MALFORMED')::int >= 1 AND queue_depth >= 1 FROM apikey.stats WHERE scope = 'server'"), 't',
	'a failure on the standby is counted and held in its queue');

# the verified-key cache of a standby backend follows replay: a session
# kept open there (as a pooled connection is) caches a key, the primary
# changes it, and the session's next transaction after replay sees the
# change.  Keys come from a replicated table, so none is in this log.
$primary->safe_psql('postgres', q{
CREATE TABLE ck (name text PRIMARY KEY, key text);
INSERT INTO ck SELECT n, key FROM unnest(ARRAY['c disable', 'c rotate', 'c quiet']) n, apikey.apikey_create(n, '{}') k;
});
replay();
my $pooled = $standby->background_psql('postgres');
sub pooled { return $pooled->query_safe("SELECT (apikey.apikey_verify(key)).code FROM ck WHERE name = '$_[0]'"); }
sub hits { return on_standby("SELECT cache_hits FROM apikey.stats WHERE scope = 'server'"); }
is(pooled('c disable') . ' ' . pooled('c rotate') . ' ' . pooled('c quiet'), 'VALID VALID VALID',
	'a standby session verifies three keys');
my $hits = hits();
is(pooled('c disable') . ' ' . pooled('c rotate') . ' ' . pooled('c quiet'), 'VALID VALID VALID', 'and again');
is(hits() - $hits, 3, 'from its cache: three hits on the standby');
$primary->safe_psql('postgres', "UPDATE apikey.keys SET enabled = false WHERE name = 'c disable'");
$primary->safe_psql('postgres', "SELECT apikey.apikey_rotate(id) FROM apikey.keys WHERE name = 'c rotate'");
replay();
is(pooled('c disable') . ' ' . pooled('c rotate'), 'DISABLED NOT_FOUND',
	'after replay, the cached keys disabled and rotated on the primary are DISABLED and NOT_FOUND');

# with the invalidation trigger disabled on the primary (replayed as a
# catalog change), the standby's sessions stop caching: a change that sends
# no invalidation is still seen at once
$primary->safe_psql('postgres', "ALTER TABLE apikey.keys DISABLE TRIGGER keys_cache_invalidate");
replay();
is(pooled('c quiet'), 'VALID', 'with the invalidation trigger disabled on the primary, the key verifies');
$hits = hits();
is(pooled('c quiet'), 'VALID', 'and again');
is(hits() - $hits, 0, 'not from a cache: the standby session stopped caching');
$primary->safe_psql('postgres', "UPDATE apikey.keys SET enabled = false WHERE name = 'c quiet'");
replay();
is(pooled('c quiet') . ' ' . on_standby("SELECT (apikey.apikey_verify(key)).code FROM ck WHERE name = 'c quiet'"),
	'DISABLED DISABLED', 'a change made without the trigger is seen at once by the pooled session and a new one');
$primary->safe_psql('postgres', "ALTER TABLE apikey.keys ENABLE ALWAYS TRIGGER keys_cache_invalidate");
replay();
is(pooled('c quiet'), 'DISABLED', 'and after the trigger is enabled again');
$pooled->quit;

$standby->stop;
$primary->stop;
done_testing();
