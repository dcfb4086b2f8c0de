# 002_restart.pl: what survives a restart.  A clean shutdown loses nothing
# (usage, queued outcomes and buckets are saved and read back); kill -9 of
# a backend under load and an immediate shutdown lose at most one flush
# interval of usage, corrupt nothing, and never make a verification wrongly
# VALID (a disabled key stays DISABLED, and a spent bucket does not refill
# early).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time usleep);
use ApikeyTap;

my $node = PostgreSQL::Test::Cluster->new('restart');
$node->init;
# a long flush interval: what is in shared memory at shutdown is unflushed
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'apikey'
apikey.flush_interval = '1h'
apikey.log_verifications = 'all'
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION apikey');

my $k = $node->safe_psql('postgres', "SELECT key FROM apikey.apikey_create('k', '{}')");
my $id = $node->safe_psql('postgres', "SELECT id FROM apikey.keys WHERE name = 'k'");
my $lim = $node->safe_psql('postgres', "SELECT key FROM apikey.apikey_create('lim', '{}', rate_limit => 5, rate_window => '1 hour')");
my $off = $node->safe_psql('postgres', "SELECT key FROM apikey.apikey_create('off', '{}')");
$node->safe_psql('postgres', "UPDATE apikey.keys SET enabled = false WHERE name = 'off'");

# --- a clean shutdown loses nothing
$node->safe_psql('postgres', "SELECT apikey.apikey_verify('$k') FROM generate_series(1, 37)");
$node->safe_psql('postgres', "SELECT apikey.apikey_verify('ak_nope_1')");
is($node->safe_psql('postgres', "SELECT count(*) FILTER (WHERE (apikey.apikey_verify('$lim')).valid) FROM generate_series(1, 4)"),
	'4', 'four of the five tokens spent');
is($node->safe_psql('postgres', "SELECT count(*) FROM apikey.usage"), '0', 'nothing flushed yet (flush_interval = 1h)');
$node->stop('fast');
$node->start;
is($node->safe_psql('postgres', "SELECT count(*) FILTER (WHERE (apikey.apikey_verify('$lim')).valid) FROM generate_series(1, 3)"),
	'1', 'after a clean restart the bucket holds the one token it had, no more');
$node->safe_psql('postgres', "ALTER SYSTEM SET apikey.flush_interval = 100; SELECT pg_reload_conf()");
is(wait_for($node, "SELECT use_count FROM apikey.usage WHERE key_id = $id", '37'), '37',
	'the 37 uses counted before the clean shutdown are written after it');
is(wait_for($node, "SELECT count(*) FROM apikey.audit WHERE action = 'verify' AND detail->>'code' = 'MALFORMED'", '1'), '1',
	'and the outcome queued before it is logged');
$node->safe_psql('postgres', "ALTER SYSTEM SET apikey.flush_interval = 500; SELECT pg_reload_conf()");

# --- kill -9 of a backend under load
my $lim2 = $node->safe_psql('postgres', "SELECT key FROM apikey.apikey_create('lim2', '{}', rate_limit => 3, rate_window => '1 hour')");
is($node->safe_psql('postgres', "SELECT count(*) FILTER (WHERE (apikey.apikey_verify('$lim2')).valid) FROM generate_series(1, 5)"),
	'3', 'a second limited key spends its three tokens');
my $used_before = wait_for($node, "SELECT use_count FROM apikey.usage WHERE key_id = $id", '37');
my ($out, $err) = ('', '');
create_burst($node);
my $load = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', "SELECT public.burst('$k', 60)" ],
	'>', \$out, '2>', \$err);
my $burst_pid = "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT public.burst%' AND pid <> pg_backend_pid()";
$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($burst_pid) b");
my $pid = $node->safe_psql('postgres', $burst_pid);
ok($pid, 'a backend verifies in a loop');
# some flushes happen meanwhile
ok($node->poll_query_until('postgres', "SELECT use_count > $used_before FROM apikey.usage WHERE key_id = $id"),
	'the worker writes its uses while it runs');
# a use_count read may be a flush's in-place write whose transaction is still
# inserting the log (log_verifications = all), its WAL not yet written: the
# worker's next commit of log rows flushes the WAL past it
my ($mid, $last) = split /\|/, $node->safe_psql('postgres',
	"SELECT (SELECT use_count FROM apikey.usage WHERE key_id = $id), (SELECT max(id) FROM apikey.audit)");
$node->poll_query_until('postgres', "SELECT max(id) > $last FROM apikey.audit");
ok(kill_and_recover($node, $pid), 'the server restarts after the crash');
$load->finish;
my $after = wait_for($node, "SELECT 1 FROM pg_stat_activity WHERE backend_type = 'apikey worker'", '1');
ok($after eq '1', 'the worker runs again');
my $uses = $node->safe_psql('postgres', "SELECT use_count FROM apikey.usage WHERE key_id = $id");
ok($uses >= $mid && $uses > $used_before, "usage kept what was flushed before the crash ($used_before < $mid <= $uses)");
is($node->safe_psql('postgres', "SELECT (apikey.apikey_verify('$off')).code"), 'DISABLED', 'a disabled key is still DISABLED');
is($node->safe_psql('postgres', "SELECT (apikey.apikey_verify('$lim2')).code"), 'RATE_LIMITED',
	'a spent bucket is not refilled by the crash (it counts as emptied at the restart)');
is($node->safe_psql('postgres', "SELECT count(*) FROM apikey.keys"), '4', 'the keys are all there');
is($node->safe_psql('postgres', "SELECT count(*) FROM apikey.usage u WHERE u.use_count < 0 OR NOT EXISTS (SELECT 1 FROM apikey.keys k WHERE k.id = u.key_id)"),
	'0', 'apikey.usage holds no impossible row');
like($node->safe_psql('postgres', "SELECT (apikey.apikey_verify('$k')).code"), qr/^VALID$/, 'verification works after the crash');

# --- an immediate shutdown
$node->safe_psql('postgres', "SELECT apikey.apikey_verify('$k') FROM generate_series(1, 10)");
# a failure after them: once its log row is written (committed, so its WAL
# flushed), the uses before it are written too
$node->safe_psql('postgres', "SELECT apikey.apikey_verify('ak_nope_2', client_addr => '192.0.2.2')");
wait_for($node, "SELECT count(*) FROM apikey.audit WHERE client_addr = '192.0.2.2'", '1');
my $flushed = $node->safe_psql('postgres', "SELECT use_count FROM apikey.usage WHERE key_id = $id");
is($flushed, $uses + 11, 'the eleven uses since the crash are written');
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', "SELECT (apikey.apikey_verify('$off')).code || ' ' || (apikey.apikey_verify('$lim2')).code"),
	'DISABLED RATE_LIMITED', 'after an immediate shutdown: nothing wrongly VALID');
ok($node->safe_psql('postgres', "SELECT use_count FROM apikey.usage WHERE key_id = $id") >= $flushed,
	'and what was flushed is still there');
is($node->safe_psql('postgres', "SELECT count(*) FROM apikey.keys"), '4', 'no key lost');

# --- the state file apikey 1.1's library wrote at its clean shutdown is
# read by this one (a restart onto a new library): a key's spent tokens
# stay spent and its unwritten uses are written.  The file is made here
# byte for byte in 1.1's format: magic "APK2", 0, the entry count, each
# entry (dbid, relid, key_id, pending_uses, last_used_at, rate_limit,
# window_us, tokens, refilled_at), then the queue count.
my $lim3 = $node->safe_psql('postgres', "SELECT key FROM apikey.apikey_create('lim3', '{}', rate_limit => 5, rate_window => '1 hour')");
my ($dbid, $relid, $lim3_id) = split /\|/, $node->safe_psql('postgres',
	"SELECT (SELECT oid FROM pg_database WHERE datname = current_database()), 'apikey.keys'::regclass::oid, id FROM apikey.keys WHERE name = 'lim3'");
$node->stop('fast');
my $pg_now = int((time() - 946684800) * 1_000_000);
my $state = pack('L L l', 0x41504b32, 0, 1)
  . pack('L L q q q l x4 q d q', $dbid, $relid, $lim3_id, 3, $pg_now, 5, 3_600_000_000, 2.0, $pg_now)
  . pack('l', 0);
open(my $sf, '>', $node->data_dir . '/pg_stat/apikey.state') or die "cannot write the state file: $!";
binmode $sf;
print $sf $state;
close $sf;
$node->start;
is($node->safe_psql('postgres', "SELECT count(*) FILTER (WHERE (apikey.apikey_verify('$lim3')).valid) FROM generate_series(1, 5)"),
	'2', "1.1's state file: the bucket holds the 2 tokens it had, not a full 5");
is(wait_for($node, "SELECT use_count FROM apikey.usage WHERE key_id = $lim3_id", '5'), '5',
	"1.1's state file: its 3 unwritten uses are written, with the 2 new ones");
unlike(slurp_file($node->logfile), qr/ignoring incomplete, corrupt or foreign file/, 'and the file was not refused');

$node->stop;
done_testing();
