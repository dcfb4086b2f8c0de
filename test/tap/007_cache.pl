# 007_cache.pl: each backend's own verified-key cache (apikey.cache_size),
# with apikey preloaded and the shared one off (apikey.shared_cache_size =
# 0, as a hot standby's backends work; 018_shared_cache.pl is the shared
# one): hits and misses in apikey.stats, the bound, the time-based
# checks evaluated on every hit (expiry, the end of a grace period), a rate
# limit set on a cached key, changes made in replication role replica, and
# a cached key whose extension is dropped and created again.  Each "cached"
# session is one backend kept open across transactions, as a pooled
# connection is.  The per-change-kind coherence proofs are the isolation
# spec test/isolation/specs/cache.spec; the standby's are in 003_standby.pl.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use ApikeyTap;

my $node = PostgreSQL::Test::Cluster->new('cache');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'apikey'
apikey.flush_interval = 200
apikey.shared_cache_size = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION apikey');

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub key_of { return sql("SELECT key FROM $_[0]"); }
sub counts
{
	return split /\|/, sql("SELECT cache_hits, cache_misses FROM apikey.stats WHERE scope = 'server'");
}

# 1. hits and misses are counted per server
my $k = key_of("apikey.apikey_create('hot', '{jobs:read}')");
my ($h0, $m0) = counts();
is(sql("SELECT string_agg((apikey.apikey_verify('$k', '{jobs:read}')).code, ' ') FROM generate_series(1, 5)"),
	'VALID VALID VALID VALID VALID', 'a key verified five times in one backend');
my ($h1, $m1) = counts();
is($h1 - $h0, 4, 'four cache hits');
is($m1 - $m0, 1, 'one miss');
sql("SELECT apikey.apikey_verify('ak_notakey')");
my ($h2, $m2) = counts();
is("@{[$h2 - $h1]} @{[$m2 - $m1]}", '0 0', 'a malformed key never reaches the cache');

# 2. apikey.cache_size = 0 turns it off; only superusers may set it
$node->safe_psql('postgres', "SET apikey.cache_size = 0; SELECT apikey.apikey_verify('$k') FROM generate_series(1, 3)");
my ($h3, $m3) = counts();
is("@{[$h3 - $h2]} @{[$m3 - $m2]}", '0 0', 'with apikey.cache_size = 0 nothing is counted as a hit or a miss');
sql("CREATE ROLE app LOGIN IN ROLE apikey_verifier");
my ($ret, $out, $err) = $node->psql('postgres', "SET apikey.cache_size = 0", extra_params => [ '-U', 'app' ]);
like($err, qr/permission denied to set parameter "apikey.cache_size"/, 'a verifier role cannot change the cache size');

# 3. bounded: 16 entries, 200 distinct keys, every answer still right
sql("CREATE TABLE many AS SELECT key FROM generate_series(1, 200) i, apikey.apikey_create('m' || i, '{}')");
my $bounded = sql(q{
SET apikey.cache_size = 16;
SELECT count(*) FILTER (WHERE (apikey.apikey_verify(key)).valid) FROM many, generate_series(1, 3);
SELECT used_bytes < 16 * 2048 FROM pg_backend_memory_contexts WHERE name = 'apikey verified-key cache rows';
SELECT total_bytes < 64 * 1024 FROM pg_backend_memory_contexts WHERE name = 'apikey verified-key cache';
});
is($bounded, "600\nt\nt", 'with 16 entries and 200 keys: all 600 verifications VALID, the cache stays within its bound');
my $size = sql(q{
SELECT count(*) FILTER (WHERE (apikey.apikey_verify(key)).valid) FROM many;
SELECT total_bytes FROM pg_backend_memory_contexts WHERE name = 'apikey verified-key cache';
SELECT used_bytes FROM pg_backend_memory_contexts WHERE name = 'apikey verified-key cache rows';
});
my ($valid, $array, $rows) = split /\n/, $size;
is($valid, 200, 'the default cache (1024) holds 200 keys');
note("default apikey.cache_size: entry array $array bytes; 200 cached rows $rows bytes (" . int($rows / 200) . " per key)");
cmp_ok($rows / 200, '<', 1024, 'a cached row costs under 1 kB');

# a session kept open, as a pooled backend is; the keys it verifies are
# read from a table, so that no key is in the test's log
sql("CREATE TABLE tk (name text PRIMARY KEY, key text)");
sub make { sql("INSERT INTO tk SELECT '$_[0]', key FROM apikey.apikey_create('$_[0]', '{}'$_[1])"); }
my $app = $node->background_psql('postgres');
sub app_code { return $app->query_safe("SELECT (apikey.apikey_verify(key)).code FROM tk WHERE name = '$_[0]'"); }

# 4. time-based checks run on every hit: expiry.  The key's few seconds must
# cover the checks before it expires (a loaded machine is slow); then the
# test waits until the server's clock is past expires_at.
make('soon', ", expires_at => clock_timestamp() + interval '5 seconds'");
is(app_code('soon'), 'VALID', 'a key expiring in five seconds verifies');
my ($h4) = counts();
is(app_code('soon'), 'VALID', 'and again, from the cache');
my ($h5) = counts();
is($h5 - $h4, 1, 'that was a hit');
$node->poll_query_until('postgres', "SELECT now() > expires_at FROM apikey.keys WHERE name = 'soon'");
is(app_code('soon'), 'EXPIRED', 'once expires_at passes, the cached key is EXPIRED');

# and the end of a grace period
make('graceful', '');
is(app_code('graceful'), 'VALID', 'a key verified (cached)');
sql("INSERT INTO tk SELECT 'graceful new', apikey.apikey_rotate(id, '5 seconds') FROM apikey.keys WHERE name = 'graceful'");
is($app->query_safe("SELECT (v).code || ' ' || ((v).grace_until IS NOT NULL) FROM tk, apikey.apikey_verify(tk.key) v WHERE tk.name = 'graceful'"),
	'VALID true', 'after a rotation with a grace, its old secret is in its grace period');
is(app_code('graceful'), 'VALID', 'and again (a previous secret is looked up every time)');
$node->poll_query_until('postgres', "SELECT now() > grace_until FROM apikey.keys WHERE name = 'graceful'");
is(app_code('graceful'), 'NOT_FOUND', 'when the grace period ends, the old secret is NOT_FOUND in the same session');
is(app_code('graceful new'), 'VALID', 'the new secret verifies');

# 5. a rate limit set on a cached key applies at once
make('free', '');
is(app_code('free') . ' ' . app_code('free'), 'VALID VALID', 'an unlimited key verified twice');
sql("UPDATE apikey.keys SET rate_limit = 1, rate_window = '1 hour' WHERE name = 'free'");
is(app_code('free') . ' ' . app_code('free'), 'VALID RATE_LIMITED', 'a limit of 1 per hour set meanwhile: the second is RATE_LIMITED');

# 6. changes made in replication role replica (data-only restores,
# logical replication workers) invalidate too: the trigger fires ALWAYS
make('replicated', '');
is(app_code('replicated'), 'VALID', 'a key verified (cached)');
sql("SET session_replication_role = replica; UPDATE apikey.keys SET enabled = false WHERE name = 'replicated'");
is(app_code('replicated'), 'DISABLED', 'disabled with session_replication_role = replica: DISABLED at once');

# 7. the extension dropped and created again: the old rows are forgotten
make('gone', '');
is(app_code('gone'), 'VALID', 'a key verified (cached)');
sql("SET apikey.allow_drop = on; DROP EXTENSION apikey; CREATE EXTENSION apikey");
is(app_code('gone'), 'NOT_FOUND', 'after DROP and CREATE EXTENSION the cached key is NOT_FOUND');
# 8. only current secrets are cached: a previous secret in its grace
# period is looked up every time, so a row inserted later with it as its
# current secret (a superuser's restore) is found
make('shadowed', '');
sql("SELECT apikey.apikey_rotate(id, '1 hour') FROM apikey.keys WHERE name = 'shadowed'");
my $id_old = sql("SELECT id FROM apikey.keys WHERE name = 'shadowed'");
is($app->query_safe("SELECT (apikey.apikey_verify(key)).key_id FROM tk WHERE name = 'shadowed'"), $id_old,
	'the old secret of a rotated key verifies in its grace period');
my ($h6, $m6) = counts();
$app->query_safe("SELECT apikey.apikey_verify(key) FROM tk WHERE name = 'shadowed'");
my ($h7, $m7) = counts();
is("@{[$h7 - $h6]} @{[$m7 - $m6]}", '0 1', 'it is not cached: a miss again');
my $id_new = sql(q{INSERT INTO apikey.keys (name, prefix, hint, owner_role, scopes, secret_hash)
	SELECT 'restored', 'ak', 'ak_rest...ored', 'postgres', '{other}', grace_secret_hash FROM apikey.keys WHERE name = 'shadowed'
	RETURNING id});
is($app->query_safe("SELECT (apikey.apikey_verify(key)).key_id FROM tk WHERE name = 'shadowed'"), $id_new,
	'a row inserted with that secret as its current one is found at once');

# 9. TRUNCATE (allowed with apikey.allow_drop) gives the table a new file,
# which invalidates it: the cached keys are gone
make('truncated', '');
is(app_code('truncated') . ' ' . app_code('truncated'), 'VALID VALID', 'a key verified (cached)');
sql("SET apikey.allow_drop = on; TRUNCATE apikey.keys CASCADE");
is(app_code('truncated'), 'NOT_FOUND', 'after TRUNCATE apikey.keys it is NOT_FOUND');

# 10. with the invalidation trigger disabled, no backend caches, so a
# change that sends no invalidation is still seen
make('untriggered', '');
is(app_code('untriggered') . ' ' . app_code('untriggered'), 'VALID VALID', 'a key verified (cached)');
sql("ALTER TABLE apikey.keys DISABLE TRIGGER keys_cache_invalidate");
my ($h8) = counts();
is(app_code('untriggered') . ' ' . app_code('untriggered'), 'VALID VALID', 'with the trigger disabled it verifies');
my ($h9) = counts();
is($h9 - $h8, 0, 'without a hit: the session stopped caching');
sql("UPDATE apikey.keys SET enabled = false WHERE name = 'untriggered'");
is(app_code('untriggered'), 'DISABLED', 'a change that sent no invalidation is seen at once');
sql("ALTER TABLE apikey.keys ENABLE ALWAYS TRIGGER keys_cache_invalidate");
$app->quit;

# 11. a database still on 1.0 (no invalidation trigger) does not cache
$node->safe_psql('postgres', 'CREATE DATABASE old');
$node->safe_psql('old', "CREATE EXTENSION apikey VERSION '1.0'");
$node->safe_psql('old', "CREATE TABLE tk AS SELECT key FROM apikey.apikey_create('old', '{}')");
my $old = $node->background_psql('old');
is($old->query_safe("SELECT string_agg((apikey.apikey_verify(key)).code, ' ') FROM tk, generate_series(1, 3)"),
	'VALID VALID VALID', 'a key of a 1.0 database verifies');
my ($h10, $m10) = counts();
$old->query_safe("SELECT apikey.apikey_verify(key) FROM tk");
my ($h11, $m11) = counts();
is("@{[$h11 - $h10]} @{[$m11 - $m10]}", '0 0', 'without the cache: neither a hit nor a miss');
$node->safe_psql('old', "UPDATE apikey.keys SET enabled = false");
is($old->query_safe("SELECT (apikey.apikey_verify(key)).code FROM tk"), 'DISABLED', 'a change is seen at once');
$node->safe_psql('old', "UPDATE apikey.keys SET enabled = true");
$node->safe_psql('old', "ALTER EXTENSION apikey UPDATE");
is($old->query_safe("SELECT string_agg((apikey.apikey_verify(key)).code, ' ') FROM tk, generate_series(1, 2)"),
	'VALID VALID', 'after ALTER EXTENSION apikey UPDATE it verifies');
my ($h12) = counts();
$old->query_safe("SELECT apikey.apikey_verify(key) FROM tk");
my ($h13) = counts();
is($h13 - $h12, 1, 'and is cached');
$node->safe_psql('old', "UPDATE apikey.keys SET enabled = false");
is($old->query_safe("SELECT (apikey.apikey_verify(key)).code FROM tk"), 'DISABLED', 'and a change is seen at once');
$old->quit;

done_testing();
