# 001_tracking.pl: usage, rate limits and the verification log with apikey
# in shared_preload_libraries: nothing written by the verifying
# transaction, usage and outcomes written by the worker, exact counts and
# exact buckets across concurrent sessions, the queue bounded, the stats
# view; and what happens without preload.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ApikeyTap;

my $node = PostgreSQL::Test::Cluster->new('tracking');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'apikey'
apikey.flush_interval = 200
apikey.queue_size = 64
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION apikey');

sub key_of
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', "SELECT key FROM $sql");
}

my $k = key_of("apikey.apikey_create('usage', '{jobs:read}')");
my $id = $node->safe_psql('postgres', "SELECT id FROM apikey.keys WHERE name = 'usage'");

# 1. usage appears within flush_interval + 1 s, written by the worker
my $t0 = time;
is($node->safe_psql('postgres', "SELECT (apikey.apikey_verify('$k')).code"), 'VALID', 'a key verifies');
is(wait_for($node, "SELECT use_count FROM apikey.usage WHERE key_id = $id", '1', 1.2), '1',
	'its use is in apikey.usage within flush_interval + 1 s');
ok($node->safe_psql('postgres', "SELECT last_used_at > now() - interval '5 seconds' FROM apikey.usage WHERE key_id = $id") eq 't',
	'with a current last_used_at');
is($node->safe_psql('postgres', "SELECT use_count || ' ' || (last_used_at IS NOT NULL) FROM apikey.key_status WHERE id = $id"),
	'1 true', 'key_status shows it');

# 2. exact counts after a burst from several concurrent sessions
my @counts = concurrently($node, 3, "SELECT count(*) FILTER (WHERE (apikey.apikey_verify('$k')).valid) FROM generate_series(1, 300)");
is(join(',', @counts), '300,300,300', 'three concurrent sessions: 300 VALID each');
is(wait_for($node, "SELECT use_count FROM apikey.usage WHERE key_id = $id", '901'), '901',
	'use_count is exact after the burst (1 + 3 x 300)');

# 2b. a key's usage row is updated in place, like a sequence: the same row
# version (ctid, xmin) after every flush, no dead rows; and the write is
# WAL-logged, so it survives a crash (tested at the end)
my $row = $node->safe_psql('postgres', "SELECT ctid || ' ' || xmin FROM apikey.usage WHERE key_id = $id");
my ($upd0, $dead0) = split /\|/, $node->safe_psql('postgres',
	"SELECT pg_stat_get_tuples_updated('apikey.usage'::regclass), pg_stat_get_dead_tuples('apikey.usage'::regclass)");
$node->safe_psql('postgres', "SELECT apikey.apikey_verify('$k') FROM generate_series(1, 4)");
is(wait_for($node, "SELECT use_count FROM apikey.usage WHERE key_id = $id", '905'), '905', 'four more uses are written');
$node->safe_psql('postgres', "SELECT apikey.apikey_verify('$k')");
is(wait_for($node, "SELECT use_count FROM apikey.usage WHERE key_id = $id", '906'), '906', 'and one more, in another flush');
is($node->safe_psql('postgres', "SELECT ctid || ' ' || xmin FROM apikey.usage WHERE key_id = $id"), $row,
	'the usage row is the same row version after both flushes (updated in place)');
# the worker reports its table statistics after each flush, flush after
# flush: once a later flush's INSERT of a new key's first usage row shows
# in them, so does whatever the two flushes above counted
my $ins0 = $node->safe_psql('postgres', "SELECT pg_stat_get_tuples_inserted('apikey.usage'::regclass)");
my $marker = key_of("apikey.apikey_create('stats marker', '{}')");
$node->safe_psql('postgres', "SELECT apikey.apikey_verify('$marker')");
ok($node->poll_query_until('postgres', "SELECT pg_stat_get_tuples_inserted('apikey.usage'::regclass) > $ins0"),
	'a later flush, which inserts a row, has reported its statistics');
my ($upd1, $dead1) = split /\|/, $node->safe_psql('postgres',
	"SELECT pg_stat_get_tuples_updated('apikey.usage'::regclass), pg_stat_get_dead_tuples('apikey.usage'::regclass)");
is("$upd1 $dead1", "$upd0 $dead0", 'no UPDATE was counted and no dead row left for VACUUM');

# 2c. many keys in one flush: the worker's scan of shared memory lets its
# locks go every 512 entries; every use is still written, exactly once
$node->safe_psql('postgres', "CREATE TABLE many AS SELECT c.key FROM generate_series(1, 1500) g, apikey.apikey_create('many ' || g, '{}') c");
is($node->safe_psql('postgres', "SELECT count(*) FILTER (WHERE (apikey.apikey_verify(key)).valid) FROM many"), '1500',
	'1500 new keys verify');
is(wait_for($node, "SELECT count(*) || ' ' || sum(u.use_count) FROM apikey.usage u JOIN apikey.keys k ON k.id = u.key_id WHERE k.name LIKE 'many %'", '1500 1500'),
	'1500 1500', 'and each has its one use written');
$node->safe_psql('postgres', "SELECT apikey.apikey_verify(key) FROM many");
is(wait_for($node, "SELECT count(*) || ' ' || sum(u.use_count) FROM apikey.usage u JOIN apikey.keys k ON k.id = u.key_id WHERE k.name LIKE 'many %'", '1500 3000'),
	'1500 3000', 'a second round of uses is added to the same rows');
$node->safe_psql('postgres', "DELETE FROM apikey.keys WHERE name LIKE 'many %'; DROP TABLE many");

# 2d. a key deleted before its first use is written gets no usage row: the
# worker takes the uses from shared memory, then waits for apikey.usage,
# which a session holds locked until the key is deleted
my $brief = key_of("apikey.apikey_create('brief', '{}')");
my $brief_id = $node->safe_psql('postgres', "SELECT id FROM apikey.keys WHERE name = 'brief'");
my $kept = key_of("apikey.apikey_create('kept', '{}')");
my $holder = $node->background_psql('postgres');
$holder->query_safe("BEGIN; LOCK TABLE apikey.usage IN SHARE MODE");
is($node->safe_psql('postgres', "SELECT (apikey.apikey_verify('$brief')).code || ' ' || (apikey.apikey_verify('$kept')).code"),
	'VALID VALID', 'two new keys verify');
my $worker_waits = "SELECT wait_event_type || ' ' || wait_event FROM pg_stat_activity WHERE backend_type = 'apikey worker'";
is(wait_for($node, $worker_waits, 'Lock relation'), 'Lock relation', 'the worker has taken their uses and waits to write them');
$node->safe_psql('postgres', "DELETE FROM apikey.keys WHERE id = $brief_id");
$holder->query_safe("COMMIT");
$holder->quit;
is(wait_for($node, "SELECT count(*) FROM apikey.usage u JOIN apikey.keys k ON k.id = u.key_id WHERE k.name = 'kept'", '1'), '1',
	'the kept key\'s first use is written');
is($node->safe_psql('postgres', "SELECT count(*) FROM apikey.usage WHERE key_id = $brief_id"), '0',
	'the key deleted before the flush got no usage row');

# 2e. rows that must not be overwritten in place are written by SQL:
# with an index holding use_count/last_used_at (an in-place write would
# leave it stale), and while another transaction is updating the row
# (its version would replace the write when it commits)
$node->safe_psql('postgres', "CREATE EXTENSION amcheck");
$node->safe_psql('postgres', "CREATE INDEX usage_last_used ON apikey.usage (last_used_at, use_count)");
my $c0 = $node->safe_psql('postgres', "SELECT use_count FROM apikey.usage WHERE key_id = $id");
$node->safe_psql('postgres', "SELECT apikey.apikey_verify('$k') FROM generate_series(1, 2)");
is(wait_for($node, "SELECT use_count FROM apikey.usage WHERE key_id = $id", $c0 + 2), $c0 + 2, 'two uses are written with an index on last_used_at, use_count');
is($node->safe_psql('postgres', "SET enable_seqscan = off; SELECT count(*) FROM apikey.usage WHERE key_id = $id AND use_count = " . ($c0 + 2) . " AND last_used_at > '-infinity'"),
	'1', 'and an index scan on it finds the row with its new count');
is($node->safe_psql('postgres', "SELECT bt_index_check('apikey.usage_last_used', true)"), '', 'amcheck: every heap row has its index entry');
$node->safe_psql('postgres', "DROP INDEX apikey.usage_last_used");
my $updater = $node->background_psql('postgres');
$updater->query_safe("BEGIN; UPDATE apikey.usage SET last_used_at = last_used_at WHERE key_id = $id");
$node->safe_psql('postgres', "SELECT apikey.apikey_verify('$k') FROM generate_series(1, 3)");
is(wait_for($node, $worker_waits, 'Lock transactionid'), 'Lock transactionid',
	'the worker writes them by SQL, which waits for the updating transaction');
$updater->query_safe("COMMIT");
$updater->quit;
is(wait_for($node, "SELECT use_count FROM apikey.usage WHERE key_id = $id", $c0 + 5), $c0 + 5,
	'three uses counted while another transaction updated the row are not lost when it commits');

# 3. verification writes nothing itself: READ ONLY, no xid, with logging on
is($node->safe_psql('postgres', "BEGIN READ ONLY; SELECT (apikey.apikey_verify('$k')).code || ' ' || (apikey.apikey_verify('ak_nope')).code || ' ' || (pg_current_xact_id_if_assigned() IS NULL); COMMIT"),
	'VALID MALFORMED true', 'verification in a READ ONLY transaction, tracking and logging on, assigns no xid');

# 4. a failure inside a transaction that rolls back is still logged
my $gone = key_of("apikey.apikey_create('gone', '{}')");
$node->safe_psql('postgres', "DELETE FROM apikey.keys WHERE name = 'gone'");
$node->safe_psql('postgres', "BEGIN; SELECT apikey.apikey_verify('$gone', client_addr => '192.0.2.7'); ROLLBACK");
is(wait_for($node, "SELECT count(*) FROM apikey.audit WHERE action = 'verify' AND detail->>'code' = 'NOT_FOUND' AND client_addr = '192.0.2.7'", '1'), '1',
	'a NOT_FOUND in a rolled-back transaction is in the audit (as PostgREST aborts on 401)');
is($node->safe_psql('postgres', "SELECT count(*) FROM apikey.audit WHERE action = 'verify' AND detail->>'code' = 'VALID'"), '0',
	'log_verifications = failures: no VALID outcome is logged');
is($node->safe_psql('postgres', "SELECT string_agg(DISTINCT actor_current_user || ' ' || actor_session_user || ' ' || application_name, ',') FROM apikey.audit WHERE action = 'verify'"),
	'postgres postgres 001_tracking.pl', 'the log names the verifying roles and application');
is($node->safe_psql('postgres', "SELECT count(*) FROM apikey.audit a WHERE strpos(a::text, substr('$k', 4)) > 0 OR strpos(a::text, substr('$gone', 4)) > 0"),
	'0', 'no key in any audit row');

# 5. log_verifications = all and off
$node->safe_psql('postgres', "ALTER SYSTEM SET apikey.log_verifications = 'all'; SELECT pg_reload_conf()");
$node->safe_psql('postgres', "SELECT apikey.apikey_verify('$k')");
is(wait_for($node, "SELECT count(*) FROM apikey.audit WHERE action = 'verify' AND detail->>'code' = 'VALID' AND key_id = $id", '1'), '1',
	'log_verifications = all logs a VALID one too, with its key and owner role');
$node->safe_psql('postgres', "ALTER SYSTEM SET apikey.log_verifications = 'off'; SELECT pg_reload_conf()");
my $before = $node->safe_psql('postgres', "SELECT count(*) FROM apikey.audit");
$node->safe_psql('postgres', "SELECT apikey.apikey_verify('ak_nope', client_addr => '192.0.2.50')");
$node->safe_psql('postgres', "ALTER SYSTEM RESET apikey.log_verifications; SELECT pg_reload_conf()");
# a failure logged after it: the queue is written in order, so once this one
# is in the audit, the one before would be too
$node->safe_psql('postgres', "SELECT apikey.apikey_verify('ak_nope', client_addr => '192.0.2.51')");
wait_for($node, "SELECT count(*) FROM apikey.audit WHERE client_addr = '192.0.2.51'", '1');
is($node->safe_psql('postgres', "SELECT count(*) - $before || ' ' || count(*) FILTER (WHERE client_addr = '192.0.2.51') FROM apikey.audit"),
	'1 1', 'log_verifications = off logs nothing (only the failure logged after it is there)');

# 6. usage writes never wait on a key's row lock, nor block an admin's change.
# The count so far: 1 + 900 (2) + 4 + 1 (2b) + 2 + 3 (2e) + 1 (3) + 1 (5) =
# 913, all written by now: section 5 waited for the audit row of a failure
# made after its last use, and the worker takes the queue after the uses.  The use made
# here must take it to 914: waiting for 913 would pass before the worker
# wrote it (and fail when the worker happened to be quicker than the poll).
is($node->safe_psql('postgres', "SELECT use_count FROM apikey.usage WHERE key_id = $id"), '913',
	'every use so far is written, each once');
my $locker = $node->background_psql('postgres');
$locker->query_safe("BEGIN; UPDATE apikey.keys SET name = 'usage locked' WHERE id = $id");
$node->safe_psql('postgres', "SELECT apikey.apikey_verify('$k')");
is(wait_for($node, "SELECT use_count FROM apikey.usage WHERE key_id = $id", '914'), '914',
	'usage is written while an admin holds the key row locked');
$locker->query_safe("COMMIT");
$locker->quit;
is($node->safe_psql('postgres', "SELECT count(*) FROM apikey.audit WHERE key_id = $id AND action <> 'verify'"), '2',
	'and it fires no audit row (create and the rename only)');

# 7. rate limits: from a full bucket, a burst of concurrent sessions gets
# exactly rate_limit VALID
my $lim = key_of("apikey.apikey_create('limited', '{}', rate_limit => 50, rate_window => '1 hour')");
@counts = concurrently($node, 3, "SELECT count(*) FILTER (WHERE (apikey.apikey_verify('$lim')).valid) FROM generate_series(1, 40)");
my $sum = 0;
$sum += $_ for @counts;
is($sum, 50, "3 concurrent sessions x 40 verifications: exactly 50 VALID (@counts)");
my ($code, $retry) = split /\|/, $node->safe_psql('postgres', "SELECT code, extract(epoch FROM retry_after) FROM apikey.apikey_verify('$lim')");
is($code, 'RATE_LIMITED', 'the next one is RATE_LIMITED');
ok($retry > 60 && $retry <= 72, "retry_after is when the next token is back (3600 s / 50 = 72 s; got $retry)");
is($node->safe_psql('postgres', "SELECT rate_limit || ' ' || (bucket_tokens < 1) FROM apikey.stats WHERE name = 'limited'"),
	'50 true', 'apikey.stats shows the bucket');

# a window too long to count in microseconds saturates: it is no way around the limit
my $huge = key_of("apikey.apikey_create('huge window', '{}', rate_limit => 1, rate_window => '1000000 years')");
is($node->safe_psql('postgres', "SELECT string_agg((apikey.apikey_verify('$huge')).code, ' ') FROM generate_series(1, 3)"),
	'VALID RATE_LIMITED RATE_LIMITED', 'a rate window of a million years still limits');

# 8. refill within the SPEC's bound: over T, at most rate_limit * (1 + T / rate_window)
my $fast = key_of("apikey.apikey_create('fast', '{}', rate_limit => 10, rate_window => '1 second')");
create_burst($node);
$node->safe_psql('postgres', "ALTER SYSTEM SET apikey.log_verifications = 'off'; SELECT pg_reload_conf()");
my $start = time;
@counts = concurrently($node, 2, "SELECT public.burst('$fast', 2)");
my $elapsed = time - $start;
$sum = 0;
$sum += $_ for @counts;
my $bound = 10 * (1 + $elapsed / 1);
ok($sum <= $bound, sprintf('over %.2f s, %d VALID <= the bound %.1f', $elapsed, $sum, $bound));
ok($sum >= 10 + 10 * 1.5, sprintf('and the bucket refills: %d VALID >= 25 in about 2 s', $sum));
$node->safe_psql('postgres', "ALTER SYSTEM RESET apikey.log_verifications; SELECT pg_reload_conf()");

# 9. the queue is bounded: a full queue drops, counts and logs, never blocks.
# The worker is held in a flush meanwhile: it has a use to write, and waits
# for apikey.usage, locked here, before it takes the queue.
$holder = $node->background_psql('postgres');
$holder->query_safe("BEGIN; LOCK TABLE apikey.usage IN SHARE MODE");
$node->safe_psql('postgres', "SELECT apikey.apikey_verify('$k')");
is(wait_for($node, $worker_waits, 'Lock relation'), 'Lock relation', 'the worker waits to write a use');
is($node->safe_psql('postgres', "SELECT count(*) FILTER (WHERE NOT (apikey.apikey_verify('ak_flood')).valid) FROM generate_series(1, 200)"),
	'200', '200 failures answer at once with a queue of 64');
my ($depth, $dropped) = split /\|/, $node->safe_psql('postgres', "SELECT queue_depth, dropped FROM apikey.stats WHERE scope = 'server'");
ok($depth == 32 && $dropped >= 168, "outcomes that name no key fill half the queue (32 of 64: $depth), the rest is dropped and counted ($dropped)");
my $gone2 = key_of("apikey.apikey_create('gone2', '{}')");
$node->safe_psql('postgres', "UPDATE apikey.keys SET enabled = false WHERE name = 'gone2'");
$node->safe_psql('postgres', "SELECT apikey.apikey_verify('$gone2') FROM generate_series(1, 5)");
is($node->safe_psql('postgres', "SELECT queue_depth FROM apikey.stats WHERE scope = 'server'"), '37',
	'so a flood of garbage cannot push out the failures of real keys');
$holder->query_safe("COMMIT");
$holder->quit;
ok(wait_for($node, "SELECT queue_depth FROM apikey.stats WHERE scope = 'server'", '0') eq '0', 'the worker drains the queue');
ok($node->wait_for_log(qr/verification outcomes were not logged: the queue was full/), 'and logs how many were dropped');

# 10. who sees what in apikey.stats
$node->safe_psql('postgres', "CREATE ROLE mgr LOGIN IN ROLE apikey_manager");
my $mine = $node->safe_psql('postgres', "SET ROLE mgr; SELECT key FROM apikey.apikey_create('mine', '{}')");
$node->safe_psql('postgres', "SELECT apikey.apikey_verify('$mine')");
is($node->safe_psql('postgres', "SET ROLE mgr; SELECT string_agg(scope || ':' || coalesce(name, '-'), ',') FROM apikey.stats"),
	'key:mine', 'a manager sees only its own keys in apikey.stats, and no server row');
is($node->safe_psql('postgres', "SET ROLE mgr; SELECT count(*) FROM apikey.key_stats()"), '1',
	'also when it calls apikey.key_stats() directly');
is($node->safe_psql('postgres', "SELECT count(*) > 1 FROM apikey.stats WHERE scope = 'key'"), 't',
	'an admin (superuser) sees every key');
is($node->safe_psql('postgres', "SELECT (verifications->>'VALID')::int > 900 FROM apikey.stats WHERE scope = 'server'"), 't',
	'and the server row counts verifications by code');

# 11. a manager cannot stop every tenant's verifications with LOCK TABLE:
# with the library preloaded the refusal holds in a session that never
# used apikey
$node->safe_psql('postgres', "ALTER ROLE mgr LOGIN");
my ($lret, $lout, $lerr) = $node->psql('postgres', "BEGIN; LOCK TABLE apikey.keys IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT", extra_params => [ '-U', 'mgr' ]);
like($lerr, qr/reserved to its owner and superusers/, 'a fresh manager session cannot LOCK apikey.keys IN ACCESS EXCLUSIVE MODE');
my $locker2 = $node->background_psql('postgres', extra_params => [ '-U', 'mgr' ]);
$locker2->query_safe("BEGIN; LOCK TABLE apikey.keys IN ROW EXCLUSIVE MODE");
# (timed in the server: the connection's start is no part of it)
my ($vcode, $vsecs) = split /\|/, $node->safe_psql('postgres',
	"SET statement_timeout = '2s'; SELECT (apikey.apikey_verify('$mine')).code, extract(epoch FROM clock_timestamp() - statement_timestamp())");
is($vcode, 'VALID', 'while a manager holds the locks it may take, verification answers at once');
ok($vsecs < 1.5, "without waiting ($vsecs s)");
$locker2->query_safe("COMMIT");
$locker2->quit;

# 12. other lock routes: a view over apikey.keys, CREATE RULE, CREATE
# TRIGGER and foreign keys lock the table before PostgreSQL checks who is
# asking; all are refused to non-owners
$node->safe_psql('postgres', "CREATE SCHEMA mgr_own AUTHORIZATION mgr; CREATE ROLE verifier_only LOGIN IN ROLE apikey_verifier");
my @routes = (
	[ 'mgr', 'CREATE VIEW mgr_own.v AS SELECT id FROM apikey.keys; LOCK mgr_own.v IN ACCESS EXCLUSIVE MODE', 'LOCK of a view over apikey.keys' ],
	[ 'mgr', 'CREATE VIEW mgr_own.v1 AS SELECT id FROM apikey.keys; CREATE VIEW mgr_own.v2 AS SELECT * FROM mgr_own.v1; LOCK mgr_own.v2 IN ACCESS EXCLUSIVE MODE', 'LOCK of a view over a view over it' ],
	[ 'verifier_only', 'CREATE RULE r AS ON INSERT TO apikey.keys DO INSTEAD NOTHING', 'CREATE RULE on apikey.keys, even by a verifier' ],
	[ 'mgr', 'CREATE RULE r AS ON INSERT TO apikey.audit DO INSTEAD NOTHING', 'CREATE RULE on apikey.audit' ],
	[ 'mgr', 'CREATE RULE r AS ON INSERT TO apikey.usage DO INSTEAD NOTHING', 'CREATE RULE on apikey.usage' ],
	[ 'mgr', 'CREATE TRIGGER t BEFORE UPDATE ON apikey.keys FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()', 'CREATE TRIGGER on apikey.keys' ],
	[ 'mgr', 'CREATE TABLE mgr_own.fk (k bigint REFERENCES apikey.keys (id))', 'a foreign key to apikey.keys in CREATE TABLE' ],
	[ 'mgr', 'CREATE TABLE mgr_own.fk2 (k bigint); ALTER TABLE mgr_own.fk2 ADD FOREIGN KEY (k) REFERENCES apikey.keys (id)', 'and in ALTER TABLE' ]);
for my $r (@routes)
{
	my ($who, $sql, $what) = @$r;
	my ($rr, $ro, $re) = $node->psql('postgres', "BEGIN; $sql; ROLLBACK", extra_params => [ '-U', $who ]);
	like($re, qr/reserved to its owner and superusers/, "refused: $what");
}
my $blocker = $node->background_psql('postgres', extra_params => [ '-U', 'mgr' ]);
$blocker->query_safe("BEGIN; CREATE VIEW mgr_own.ok AS SELECT id FROM apikey.keys; LOCK mgr_own.ok IN ROW EXCLUSIVE MODE");
is($node->safe_psql('postgres', "SET statement_timeout = '2s'; SELECT (apikey.apikey_verify('$mine')).code"), 'VALID',
	'a weak lock through a view is allowed, and verification goes on');
$blocker->query_safe("ROLLBACK");
$blocker->quit;

# 13. without shared_preload_libraries
my $plain = PostgreSQL::Test::Cluster->new('no_preload');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION apikey');
my ($ret, $out, $err) = $plain->psql('postgres', "SELECT * FROM apikey.apikey_create('x', '{}', rate_limit => 5, rate_window => '1 minute')");
like($err, qr/rate limits require apikey in shared_preload_libraries/, 'without preload, setting a limit is refused');
like($err, qr/HINT:  Add apikey to shared_preload_libraries/, 'with a hint that says what to do');
my $pk = $plain->safe_psql('postgres', "SELECT key FROM apikey.apikey_create('p', '{}')");
$plain->safe_psql('postgres', "SET session_replication_role = replica; UPDATE apikey.keys SET rate_limit = 5, rate_window = '1 minute' WHERE name = 'p'");
($ret, $out, $err) = $plain->psql('postgres', "SELECT (apikey.apikey_verify('$pk')).code; SELECT (apikey.apikey_verify('$pk')).code");
is($out, "RATE_LIMITED\nRATE_LIMITED", 'a limited key fails closed');
is(scalar(() = $err =~ /WARNING:  apikey is not in shared_preload_libraries/g), 1, 'one WARNING per backend says nothing is tracked');
is($plain->safe_psql('postgres', "SELECT count(*) FROM apikey.stats"), '0', 'apikey.stats is empty');
$plain->stop;

# 14. usage written in place survives a crash: WAL replay restores it
$before = $node->safe_psql('postgres', "SELECT use_count FROM apikey.usage WHERE key_id = $id");
$node->safe_psql('postgres', "SELECT apikey.apikey_verify('$k') FROM generate_series(1, 3)");
my $after = $before + 3;
is(wait_for($node, "SELECT use_count FROM apikey.usage WHERE key_id = $id", $after), $after, 'three more uses are written');
# a commit flushes the WAL up to its record, the in-place writes before it too
$node->safe_psql('postgres', "CREATE TABLE flush_wal ()");
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', "SELECT use_count FROM apikey.usage WHERE key_id = $id"), $after,
	'after kill -9 and crash recovery, use_count is what was written in place');

# 15. a verification type altered by hand is refused with an error, not a crash
$node->safe_psql('postgres', "CREATE DATABASE altered");
$node->safe_psql('altered', "CREATE EXTENSION apikey");
my $ak = $node->safe_psql('altered', "SELECT key FROM apikey.apikey_create('a', '{}')");
($ret, $out, $err) = $node->psql('altered', "SELECT (apikey.apikey_verify('$ak')).code; ALTER TYPE apikey.verification ALTER ATTRIBUTE http_status TYPE text; SELECT (apikey.apikey_verify('$ak')).code");
like($err, qr/type apikey.verification has been altered/, 'after ALTER TYPE of a column, verify raises an error in the same session');
is($node->safe_psql('altered', "SELECT 1"), '1', 'and the server is still up');
($ret, $out, $err) = $node->psql('altered', "SELECT (apikey.apikey_verify('garbage')).code");
like($err, qr/type apikey.verification has been altered/, 'a new session gets the same error');

$node->stop;
done_testing();
