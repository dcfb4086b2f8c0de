# 019_plans.pl: metered keys (credits) under concurrency, restarts and
# crashes.  Backends drawing one balance at once, some of them aborting
# (their credits come back): exactly the credits given are ever taken by
# committed calls.  The worker writes balances into apikey.usage; a clean
# restart keeps every balance; kill -9 under load loses at most the debits
# made since the worker's last write (measured here: the README states the
# bound) and never grants a refill twice.  The per-rule checks are
# sql/plans.sql; the interleavings, test/isolation/specs/credits.spec.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);
use ApikeyTap;

my $flush_ms = 200;
my $node = PostgreSQL::Test::Cluster->new('plans');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'apikey'
apikey.flush_interval = $flush_ms
apikey.log_verifications = off
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION apikey');

sub sql { return $node->safe_psql('postgres', $_[0]); }

# the balance a cost-0 call sees (live, in shared memory)
sub balance { return sql("SELECT (apikey.apikey_verify('$_[0]', '{}', NULL, NULL, 0)).credits_remaining"); }

# 1. four backends draw one balance of 700 at once: two commit every call
# (400 calls each: together more than there is), two take 50 at a time in
# a subtransaction that then fails (their credits come back).  What the
# committed calls took plus what is left is exactly 700, and never below
# zero.
my $k = sql("SELECT key FROM apikey.apikey_create('race', '{}', credits => 700)");
sql(q{CREATE TABLE taken (n integer NOT NULL)});
sql(qq{CREATE PROCEDURE take(k text, calls integer) LANGUAGE plpgsql AS \$\$
BEGIN
	FOR i IN 1 .. calls LOOP
		INSERT INTO taken SELECT 1 FROM apikey.apikey_verify(k) v WHERE v.code = 'VALID';
		COMMIT;
	END LOOP;
END \$\$});
sql(qq{CREATE PROCEDURE take_and_fail(k text, rounds integer) LANGUAGE plpgsql AS \$\$
BEGIN
	FOR r IN 1 .. rounds LOOP
		BEGIN
			PERFORM apikey.apikey_verify(k) FROM generate_series(1, 50) g WHERE g > 0;
			RAISE EXCEPTION 'the work failed';
		EXCEPTION WHEN raise_exception THEN
			NULL;
		END;
		COMMIT;
	END LOOP;
END \$\$});
my @runs;
for my $call ("CALL take('$k', 400)", "CALL take('$k', 400)",
	"CALL take_and_fail('$k', 8)", "CALL take_and_fail('$k', 8)")
{
	my ($out, $err) = ('', '');
	push @runs, [ IPC::Run::start([ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', $call ],
		'>', \$out, '2>', \$err), \$err ];
}
$_->[0]->finish for @runs;
is(join('', map { ${ $_->[1] } } @runs), '', 'the four backends ran without error');
my $taken = sql("SELECT count(*) FROM taken");
my $left = balance($k);
is($taken + $left, 700, "committed calls took $taken, $left are left: 700 in all, none taken twice, every failed one given back");
cmp_ok($left, '>=', 0, 'the balance never went below zero');
is(sql("SELECT v.code FROM apikey.apikey_verify('$k', '{}', NULL, NULL, " . ($left + 1) . ") v"),
	'QUOTA_EXCEEDED', 'a cost above what is left is refused');

# 1b. one owner's balance of 600, drawn by four backends through four keys
# of its own (each key unmetered), 300 calls each: exactly 600 VALID
sql("INSERT INTO apikey.owners (owner, credits) VALUES ('acme', 600)");
my @okeys = map { sql("SELECT key FROM apikey.apikey_create('acme $_', '{}', owner => 'acme')") } 1 .. 4;
sql("TRUNCATE taken");
@runs = ();
for my $ok (@okeys)
{
	my ($out, $err) = ('', '');
	push @runs, [ IPC::Run::start([ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
		'-c', "CALL take('$ok', 300)" ], '>', \$out, '2>', \$err), \$err ];
}
$_->[0]->finish for @runs;
is(join('', map { ${ $_->[1] } } @runs), '', 'the four backends ran without error');
is(sql("SELECT count(*) FROM taken"), '600', 'four keys of one owner took exactly its 600 credits');
is(balance($okeys[0]), '0', 'and its balance is 0, seen through any of its keys');
sql("UPDATE apikey.owners SET credits = 50 WHERE owner = 'acme'");
is(sql("SELECT (apikey.apikey_verify('$okeys[3]', '{}', NULL, NULL, 5)).credits_remaining"), '45',
	'a top-up of the owner is its balance at the next call');
is(wait_for($node, "SELECT credits_remaining FROM apikey.owner_usage u JOIN apikey.owners o ON o.id = u.owner_id WHERE o.owner = 'acme'", '45'),
	'45', 'the worker writes the owner\'s balance into apikey.owner_usage');

# 2. the worker writes balances into apikey.usage (never apikey.keys)
my $xmin = sql("SELECT xmin FROM apikey.keys WHERE name = 'race'");
is(wait_for($node, "SELECT credits_remaining FROM apikey.usage u JOIN apikey.keys k ON k.id = u.key_id WHERE k.name = 'race'", $left),
	$left, 'the worker writes the balance into apikey.usage');
is(sql("SELECT xmin FROM apikey.keys WHERE name = 'race'"), $xmin, 'and never writes the key\'s row');
is(sql("SELECT credits_remaining FROM apikey.key_status WHERE name = 'race'"), $left, 'apikey.key_status shows it');

# 3. a clean restart keeps every balance, written or not yet
sql("SELECT apikey.apikey_verify('$k', '{}', NULL, NULL, 7)");
my $before = balance($k);
$node->stop('fast');
$node->start;
is(balance($k), $before, "after a clean restart the balance is $before, as before it");

is(balance($okeys[1]), '45', 'and the owner\'s balance too');
sql("SELECT apikey.apikey_verify('$okeys[2]', '{}', NULL, NULL, 5)");
my $pid0 = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'apikey worker'");
wait_for($node, "SELECT credits_remaining FROM apikey.owner_usage u JOIN apikey.owners o ON o.id = u.owner_id WHERE o.owner = 'acme'", '40');
ok(kill_and_recover($node, $pid0), 'kill -9 of the worker: the server restarts');
is(balance($okeys[0]), '40', 'after a crash the owner\'s balance is read back from apikey.owner_usage');

# 4. a refill is never granted twice: one applied and written survives a
# crash (the clock of refills set for the whole database)
sql("ALTER DATABASE postgres SET apikey.debug_now = '2030-05-31 23:59:00'");
my $daily = sql("SELECT key FROM apikey.apikey_create('daily', '{}', credits => 10, refill_amount => 10, refill_interval => 'day')");
is(sql("SELECT (apikey.apikey_verify('$daily', '{}', NULL, NULL, 10)).credits_remaining"), '0', 'a daily key spends its 10 credits');
sql("ALTER DATABASE postgres SET apikey.debug_now = '2030-06-01 00:00:00'");
is(sql("SELECT (apikey.apikey_verify('$daily', '{}', NULL, NULL, 3)).credits_remaining"), '7',
	'at midnight UTC it is refilled to 10, and a call takes 3');
wait_for($node, "SELECT credits_refilled_at = '2030-06-01 00:00+00' AND credits_remaining = 7 FROM apikey.usage u JOIN apikey.keys k ON k.id = u.key_id WHERE k.name = 'daily'", 't');
my $pid = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'apikey worker'");
ok(kill_and_recover($node, $pid), 'kill -9 of the worker: the server restarts');
is(balance($daily), '7', 'after the crash the day\'s balance is 7: the refill is not granted again');
sql("ALTER DATABASE postgres RESET apikey.debug_now");

# 4b. the hourly history: per key, hour and code, written by the worker;
# the README's two recipes give the day's calls of a key and an owner's
# failures of the week
my ($hk_id, $hk) = split /\|/, sql("SELECT key_id, key FROM apikey.apikey_create('hist', '{jobs:read}', owner => 'hist-owner')");
sql("SELECT apikey.apikey_verify('$hk' || repeat('', g)) FROM generate_series(1, 5) g");
sql("SELECT apikey.apikey_verify('$hk', '{jobs:write}') FROM generate_series(1, 3) g WHERE g > 0");
sql("SELECT apikey.apikey_verify('$hk', '{}', 'r1', '192.0.2.1', 0)");
is(wait_for($node, "SELECT string_agg(code || '=' || count, ',' ORDER BY code) FROM apikey.usage_hourly WHERE key_id = $hk_id",
	'INSUFFICIENT_SCOPE=3,VALID=6'), 'INSUFFICIENT_SCOPE=3,VALID=6', 'apikey.usage_hourly counts each code of the key in its hour');
is(sql("SELECT count(*) FROM apikey.usage_hourly WHERE key_id = $hk_id AND hour = date_trunc('hour', now(), 'UTC')"), '2',
	'in the hour of the calls');
is(sql(qq{SELECT date_trunc('day', hour, 'UTC') AS day,
       sum(count) FILTER (WHERE code = 'VALID') AS calls,
       sum(count) FILTER (WHERE code <> 'VALID') AS refused
  FROM apikey.usage_hourly
 WHERE key_id = $hk_id
 GROUP BY 1 ORDER BY 1}) =~ s/^[^|]*\|//r, '6|3', 'the README recipe: calls per day for a key');
is(sql(q{SELECT h.code, sum(h.count) AS failures
  FROM apikey.usage_hourly h JOIN apikey.keys k ON k.id = h.key_id
 WHERE k.owner = 'hist-owner' AND h.code <> 'VALID' AND h.hour >= now() - interval '7 days'
 GROUP BY h.code ORDER BY 2 DESC}), 'INSUFFICIENT_SCOPE|3', 'the README recipe: failures this week for an owner');
# retention: rows older than apikey.usage_retention go
sql("INSERT INTO apikey.usage_hourly VALUES ($hk_id, date_trunc('hour', now()) - interval '3 days', 'VALID', 9)");
sql("ALTER SYSTEM SET apikey.usage_retention = '2d'");
sql("SELECT pg_reload_conf()");
# (applied at the worker's next write)
$node->poll_query_until('postgres', "SELECT current_setting('apikey.usage_retention') = '2d'");
sql("SELECT apikey.apikey_verify('$hk')");
is(wait_for($node, "SELECT count(*) FROM apikey.usage_hourly WHERE hour < now() - interval '2 days'", '0'), '0',
	'the worker removes the hours older than apikey.usage_retention');
is(sql("SELECT count(*) FROM apikey.usage_hourly WHERE key_id = $hk_id AND hour > now() - interval '2 days'"), '2',
	'and keeps the others');

# 5. kill -9 under load: two backends draw in a loop, each committed call
# leaving a row with its time.  After the crash the balance is what the
# worker last wrote: never below the truth (but for calls in flight at the
# kill, which took credits and never committed) and above it by at most
# the calls made since that write.
my $big = 1000000000;
my $hot = sql("SELECT key FROM apikey.apikey_create('hot', '{}', credits => $big)");
sql(q{CREATE TABLE drawn (at timestamptz NOT NULL DEFAULT clock_timestamp())});
sql(q{CREATE PROCEDURE drain(k text, seconds float8) LANGUAGE plpgsql AS $$
DECLARE
	stop timestamptz := clock_timestamp() + seconds * interval '1 second';
BEGIN
	WHILE clock_timestamp() < stop LOOP
		INSERT INTO drawn SELECT FROM apikey.apikey_verify(k) v WHERE v.code = 'VALID';
		COMMIT;
	END LOOP;
END $$});
my @load;
for (1 .. 2)
{
	my ($out, $err) = ('', '');
	push @load, IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', "CALL drain('$hot', 120)" ],
		'>', \$out, '2>', \$err);
}
wait_for($node, "SELECT count(*) > 3000 FROM drawn", 't');
# let the worker write a few times under load
ok($node->poll_query_until('postgres', "SELECT credits_remaining < $big - 3000 FROM apikey.usage u JOIN apikey.keys k ON k.id = u.key_id WHERE k.name = 'hot'"),
	'the worker writes the balance while calls go on');
usleep(3 * $flush_ms * 1000);
my $drainer = sql("SELECT pid FROM pg_stat_activity WHERE query LIKE 'CALL drain%' LIMIT 1");
ok(kill_and_recover($node, $drainer), 'kill -9 of a backend under load: the server restarts');
$_->finish for @load;
my ($committed, $last) = split /\|/, sql("SELECT count(*), max(at) FROM drawn");
my $truth = $big - $committed;
my $after = balance($hot);
my $lost = $after - $truth;
# (five flush intervals: the README's bound is one, plus the write itself)
my $in_window = sql("SELECT count(*) FROM drawn WHERE at > '$last'::timestamptz - interval '1 second'");
my $per_flush = sql("SELECT round(count(*) * $flush_ms / 1000.0 / greatest(extract(epoch FROM max(at) - min(at)), 0.001)) FROM drawn");
note("kill -9 under load: $committed committed calls, balance $after after recovery, truth $truth: "
	. "$lost debits lost (about $per_flush calls per flush interval of $flush_ms ms)");
cmp_ok($after, '>=', $truth - 2, 'never lower than the truth but for the two calls in flight at the kill');
cmp_ok($lost, '<=', $in_window, "higher by at most the calls of the last moments before the kill ($lost <= $in_window)");
is(sql("SELECT v.code FROM apikey.apikey_verify('$hot') v"), 'VALID', 'the key verifies after the crash');

# 6. a transaction that stays open while the worker recycles idle entries
# (the table more than half full): its entry is held, so its refund at the
# rollback still reaches the balance
$node->append_conf('postgresql.conf', 'apikey.max_tracked_keys = 100');
$node->restart;
sql("CREATE TABLE long_key AS SELECT key FROM apikey.apikey_create('long', '{}', credits => 1000)");
my $long = sql("SELECT key FROM long_key");
sql("CREATE TABLE filler AS SELECT key FROM generate_series(1, 60) i, apikey.apikey_create('filler ' || i, '{}')");
my $open = $node->background_psql('postgres');
$open->query_safe("BEGIN");
# (the key read from a table: background_psql logs its queries)
is($open->query_safe("SELECT v.credits_remaining FROM long_key, apikey.apikey_verify(long_key.key, '{}', NULL, NULL, 100) v"), '900',
	'an open transaction takes 100 of 1000');
# the other keys keep the table above half full for more than ten flushes
my $t0 = time;
sql("SELECT apikey.apikey_verify(key) FROM filler"), usleep(100_000) while time - $t0 < 4;
is(sql("SELECT count(*) FROM apikey.key_balances() b JOIN apikey.keys k ON k.id = b.key_id WHERE k.name = 'long'"), '1',
	'its entry was not recycled while the transaction is open');
$open->query_safe("ROLLBACK");
$open->quit;
is(balance($long), '1000', 'the rollback gives the 100 back');

done_testing();
