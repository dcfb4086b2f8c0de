# 018_shared_cache.pl: the shared verified-key cache
# (apikey.shared_cache_size).  Its shared memory per key, measured from
# pg_shmem_allocations at two sizes; one backend's verifications serve
# every other backend (the hits and misses of each backend in apikey.stats);
# the bound (more keys than room) and rows too large to keep; the hint to
# a key's tracker entry surviving the entry's recycling with every use
# counted once; and coherence under load: while other backends verify a key
# as fast as they can (filling and hitting its shared entry), it is changed
# 120 times, and after each commit a new backend must get exactly the
# committed answer.  The per-change-kind proofs with several backends are
# test/isolation/specs/cache_shared.spec.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);
use ApikeyTap;

my $node = PostgreSQL::Test::Cluster->new('shared_cache');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'apikey'
apikey.flush_interval = 200
apikey.max_tracked_keys = 100
apikey.shared_cache_size = 1000
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION apikey');

sub sql { return $node->safe_psql('postgres', $_[0]); }

# 1. memory per key: the size at two settings
sub cache_size
{
	return split /\|/, sql(q{
SELECT s.cache_capacity, s.cache_bytes, a.size
  FROM apikey.stats s, pg_shmem_allocations a
 WHERE s.scope = 'server' AND a.name = 'apikey verified-key cache'});
}
my ($cap1, $bytes1, $alloc1) = cache_size();
is($cap1, 1024, 'apikey.shared_cache_size = 1000 holds 1024 keys (whole sets in every partition)');
is($bytes1, $alloc1, 'apikey.stats shows the shared memory pg_shmem_allocations shows');

# a key too large for its partition at this size (1024 keys: 4 kB of
# blocks per partition) is not kept, and pushes out no other key
sql("CREATE TABLE small AS SELECT key FROM generate_series(1, 60) i, apikey.apikey_create('s' || i, '{}')");
sql("SELECT apikey.apikey_verify(key) FROM small");
my $before = sql("SELECT cache_keys FROM apikey.stats WHERE scope = 'server'");
my $wide = sql(q{SELECT key FROM apikey.apikey_create('wide', '{}', meta => jsonb_build_object('notes', repeat('n', 2000)))});
is(sql("SELECT string_agg(v.code, ' ') FROM generate_series(1, 3) g, apikey.apikey_verify('$wide' || repeat('', g)) v"),
	'VALID VALID VALID', 'a key with 2 kB of meta verifies in a cache of 1024 keys');
is(sql("SELECT cache_keys FROM apikey.stats WHERE scope = 'server'"), $before,
	'it is not kept there, and no other key was pushed out for it');
# (their tracker entries idle out, so that the next part finds room)
wait_for($node, "SELECT count(*) FROM apikey.stats WHERE scope = 'key'", '0');

$node->append_conf('postgresql.conf', 'apikey.shared_cache_size = 20000');
$node->restart;
my ($cap2, $bytes2, $alloc2) = cache_size();
is($cap2, 20480, 'apikey.shared_cache_size = 20000 holds 20480 keys');
my $per_key = ($alloc2 - $alloc1) / ($cap2 - $cap1);
note "shared memory per key: $per_key bytes";
is($per_key, 392, 'each key costs 392 bytes of shared memory, as the README states');

# 2. the hint to a key's tracker entry: the entry recycled (100 tracked
# keys at most; idle ones go once half are taken), the key's uses are
# still each counted once
my $k = sql("SELECT key FROM apikey.apikey_create('counted', '{}')");
my $id = sql("SELECT id FROM apikey.keys WHERE name = 'counted'");
sql("CREATE TABLE others AS SELECT key FROM generate_series(1, 60) i, apikey.apikey_create('o' || i, '{}')");
sql("SELECT apikey.apikey_verify('$k' || repeat('', g)) FROM generate_series(1, 5) g");
is(wait_for($node, "SELECT use_count FROM apikey.usage WHERE key_id = $id", '5'), '5', 'five uses counted');
# 60 other keys, over more than ten flushes: the key's entry goes idle and is recycled
my $gone = '1';
for my $round (1 .. 100)
{
	sql("SELECT apikey.apikey_verify(key) FROM others");
	$gone = sql("SELECT count(*) FROM apikey.stats WHERE scope = 'key' AND key_id = $id");
	last if $gone eq '0';
	usleep(100_000);
}
is($gone, '0', "the key's tracker entry was recycled");
sql("SELECT apikey.apikey_verify('$k' || repeat('', g)) FROM generate_series(1, 3) g");
is(wait_for($node, "SELECT use_count FROM apikey.usage WHERE key_id = $id", '8'), '8',
	'uses after the tracker entry was recycled are counted, once each');

# 3. keys of a typical shape fit in the share of the variable part per key
# (4 blocks of 64 bytes): 2000 keys, so few that no set of 8 overflows
sql(q{CREATE TABLE typical AS
SELECT key FROM generate_series(1, 2000) i,
  apikey.apikey_create('service key ' || i, ARRAY['jobs:read', 'jobs:write', 'billing:read'],
					   owner => 'org_' || (i % 97), meta => jsonb_build_object('plan', 'pro', 'team', i))});
is(sql("SELECT count(*) FILTER (WHERE (apikey.apikey_verify(key)).valid) FROM typical"), '2000', '2000 typical keys verified');
is(sql("SELECT cache_keys FROM apikey.stats WHERE scope = 'server'"), '2000', 'all 2000 are in the shared cache');
my $per_row = sql("SELECT variable_bytes / keys FROM apikey.cache_stats()");
note "variable part per typical key: $per_row bytes";
ok($per_row <= 256, "a typical key's variable fields fit in the 256 bytes each key has ($per_row)");

# 4. one backend's verifications serve the others
my $own = q{SELECT cache_hits || ' ' || cache_misses FROM apikey.stats WHERE scope = 'backend' AND pid = pg_backend_pid()};
is(sql("SELECT count(*) FILTER (WHERE (apikey.apikey_verify(key)).valid) FROM typical; $own"),
	"2000\n2000 0", 'a new backend finds all 2000 keys another backend verified: 2000 hits, no miss');
my @out = ApikeyTap::concurrently($node, 4,
	"SELECT count(*) FILTER (WHERE (apikey.apikey_verify(key)).valid) FROM typical; $own");
is_deeply(\@out, [ ("2000\n2000 0") x 4 ], 'so do four backends at once');
is(sql(q{SELECT count(*) FROM apikey.stats WHERE scope = 'backend'}), '0',
	'backends that have exited are not listed');
sql("CREATE ROLE mgr LOGIN IN ROLE apikey_manager");
is(ApikeyTap::safe_psql_as($node, 'mgr', "SELECT count(*) FROM apikey.stats WHERE scope IN ('backend', 'server')"),
	'0', 'a manager sees no server or backend figures');

# what empties the cache, and what does not: VACUUM and ANALYZE of the
# table, DDL on another database's table called apikey.keys, and an UPDATE
# of many keys in one transaction take nothing else out
sub cached { return sql("SELECT cache_keys FROM apikey.stats WHERE scope = 'server'"); }
my $n0 = cached();
sql("VACUUM apikey.keys; ANALYZE apikey.keys; CREATE INDEX keys_name_tmp ON apikey.keys (name)");
is(cached(), $n0, 'VACUUM, ANALYZE and CREATE INDEX on apikey.keys leave the shared cache alone');
sql("CREATE DATABASE other");
$node->safe_psql('other', "CREATE SCHEMA apikey; CREATE TABLE apikey.keys (x int); ALTER TABLE apikey.keys ADD COLUMN y int; TRUNCATE apikey.keys");
is(cached(), $n0, "DDL on another database's table named apikey.keys leaves it alone");
sql("CREATE TABLE bulk AS SELECT key FROM generate_series(1, 2000) i, apikey.apikey_create('b' || i, '{}')");
sql("SELECT apikey.apikey_verify(key) FROM bulk");
my $n1 = cached();
sql("UPDATE apikey.keys SET meta = '{\"bulk\": true}' WHERE name LIKE 'b%'");
is(cached(), $n1 - 2000, 'an UPDATE of 2000 cached keys in one transaction takes out those 2000, no more');
is(sql("SELECT count(*) FILTER (WHERE (apikey.apikey_verify(key)).meta = '{\"bulk\": true}') FROM bulk"), '2000',
	'and each answers with its new meta');
sql("ALTER TABLE apikey.keys DISABLE TRIGGER keys_cache_invalidate; ALTER TABLE apikey.keys ENABLE ALWAYS TRIGGER keys_cache_invalidate");
is(cached(), '0', 'DDL on apikey.keys that changes its triggers empties it');
sql("DROP INDEX apikey.keys_name_tmp");

# 5. bounded: 3000 more keys than room, verified three times: every answer right
sql("CREATE TABLE many AS SELECT key FROM generate_series(1, 30000) i, apikey.apikey_create('m' || i, '{}')");
is(sql("SELECT count(*) FILTER (WHERE (apikey.apikey_verify(key)).valid) FROM (SELECT key FROM many UNION ALL SELECT key FROM many UNION ALL SELECT key FROM many) s"),
	'90000', '30000 keys through a cache of 20480, three times: all VALID');
my $held = sql("SELECT cache_keys FROM apikey.stats WHERE scope = 'server'");
ok($held > 10000 && $held <= 20480, "the cache holds at most its capacity ($held keys)");

# a key whose fields take more than 16 kB is not kept, and verifies;
# one near the limit (meta of 8 kB) is kept
my $huge = sql(q{SELECT key FROM apikey.apikey_create('huge', '{}',
	resources => ARRAY(SELECT repeat('r', 200) || i FROM generate_series(1, 200) i))});
my $big = sql(q{SELECT key FROM apikey.apikey_create('big', '{}',
	meta => jsonb_build_object('notes', repeat('n', 8000)))});
is(sql("SELECT string_agg(v.code, ' ') FROM generate_series(1, 3) g, apikey.apikey_verify('$huge' || repeat('', g)) v; $own"),
	"VALID VALID VALID\n0 3", 'a key with 40 kB of resources verifies, from the table every time');
# (into a full set a key is let in at its second miss)
is(sql("SELECT (apikey.apikey_verify('$big' || repeat('', g))).valid FROM generate_series(1, 2) g;
SELECT string_agg(v.code || length(v.meta->>'notes'), ' ') FROM generate_series(1, 3) g, apikey.apikey_verify('$big' || repeat('', g)) v;
SELECT cache_hits || ' ' || cache_misses FROM apikey.stats WHERE scope = 'backend' AND pid = pg_backend_pid()"),
	"t\nt\nVALID8000 VALID8000 VALID8000\n3 2", 'a key with 8 kB of meta is kept: after two misses, hits');

# 6. coherence under load
sql(q{CREATE TABLE hot AS SELECT key_id, key FROM apikey.apikey_create('hot', ARRAY['jobs:read'])});
create_burst($node);
my @burst;
for my $i (1 .. 3)
{
	push @burst, IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', "SELECT public.burst(key, 60) FROM hot" ],
		'>', \my $bo, '2>', \my $be);
}
my @states = (
	[ 'enabled = false', 'DISABLED' ],
	[ 'enabled = true', 'VALID' ],
	[ q{scopes = '{billing:read}'}, 'INSUFFICIENT_SCOPE' ],
	[ q{scopes = '{jobs:read}'}, 'VALID' ],
	[ q{expires_at = now() - interval '1 minute'}, 'EXPIRED' ],
	[ 'expires_at = NULL', 'VALID' ]);
my $wrong = 0;
for my $i (0 .. 119)
{
	my ($set, $want) = @{ $states[ $i % @states ] };
	sql("UPDATE apikey.keys SET $set WHERE name = 'hot'");
	my $got = sql("SELECT (apikey.apikey_verify(key, '{jobs:read}')).code FROM hot");
	# the same once more, from another new backend
	my $again = sql("SELECT (apikey.apikey_verify(key, '{jobs:read}')).code FROM hot");
	$wrong++ if $got ne $want || $again ne $want;
	diag "change $i ($set): got $got then $again, want $want" if $got ne $want || $again ne $want;
}
$_->kill_kill for @burst;
is($wrong, 0, '120 changes under load: every next transaction of a new backend got the committed answer');

$node->stop;
done_testing();
