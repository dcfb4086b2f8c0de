# 004_crash.pl: kill -9 of the backend in the middle of apikey_create and
# of apikey_rotate (after the new secret is written, before its audit row
# and commit): after crash recovery exactly one of old and new verifies
# (both, within a grace period), nothing half-written is left, and the
# audit agrees with the keys.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ApikeyTap;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION apikey');

# stuck(sql): run sql in a session that will block on the audit table,
# which another session holds locked; returns the blocked backend's pid
my $holder = $node->background_psql('postgres');
sub stuck
{
	my ($sql) = @_;
	$holder->query_safe("BEGIN; LOCK TABLE apikey.audit IN ACCESS EXCLUSIVE MODE");
	my $h = $node->background_psql('postgres', on_error_stop => 0);
	$h->query_until(qr/go/, "\\echo go\n$sql;\n");
	my $waiting = "SELECT pid FROM pg_locks WHERE relation = 'apikey.audit'::regclass AND NOT granted LIMIT 1";
	$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($waiting) w");
	my $pid = $node->safe_psql('postgres', $waiting);
	return ($pid, $h);	# $h: keep the session until the crash
}

sub crash
{
	my ($pid) = @_;
	kill_and_recover($node, $pid);
	$holder = $node->background_psql('postgres');
}

sub code { return $node->safe_psql('postgres', "SELECT (apikey.apikey_verify('$_[0]')).code"); }
sub audit_of { return $node->safe_psql('postgres', "SELECT string_agg(action, ',' ORDER BY id) FROM apikey.audit WHERE key_id = $_[0]"); }

# a key to rotate
my ($id, $old) = split /\|/, $node->safe_psql('postgres', "SELECT key_id, key FROM apikey.apikey_create('k', '{}')");

# --- create, killed after its INSERT, waiting to write the audit row
my ($pid, $h) = stuck("SELECT * FROM apikey.apikey_create('half made', '{}')");
ok($pid, 'apikey_create is stuck after inserting its key, before its audit row');
crash($pid);
is($node->safe_psql('postgres', "SELECT count(*) FROM apikey.keys WHERE name = 'half made'"), '0',
	'after the crash no half-made key is left');
is($node->safe_psql('postgres', "SELECT count(*) FROM apikey.audit WHERE detail->'new'->>'name' = 'half made'"), '0',
	'and no audit row for it');

# --- rotate without grace, killed after the new secret is written
($pid, $h) = stuck("SELECT apikey.apikey_rotate($id)");
ok($pid, 'apikey_rotate is stuck after writing the new secret, before its audit row');
crash($pid);
is(code($old), 'VALID', 'after the crash the old secret still verifies (the rotation never committed)');
is(audit_of($id), 'create', 'and the audit shows no rotation');
is($node->safe_psql('postgres', "SELECT grace_secret_hash IS NULL AND rotated_at IS NULL FROM apikey.keys WHERE id = $id"), 't',
	'the row is as before the rotation');

# --- a committed rotation, then the crash: the new secret, and only it
my $new = $node->safe_psql('postgres', "SELECT apikey.apikey_rotate($id)");
crash($node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() LIMIT 1"));
is(code($old) . ' ' . code($new), 'NOT_FOUND VALID', 'a committed rotation survives a crash: only the new secret verifies');
is(audit_of($id), 'create,rotate', 'and the audit shows the rotation');

# --- rotate with a grace period, killed half-way, then committed
($pid, $h) = stuck("SELECT apikey.apikey_rotate($id, '1 hour')");
crash($pid);
is(code($new), 'VALID', 'a rotation with grace killed half-way leaves the current secret');
my $newer = $node->safe_psql('postgres', "SELECT apikey.apikey_rotate($id, '1 hour')");
$node->stop('immediate');
$node->start;
$holder = $node->background_psql('postgres');
is(code($new) . ' ' . code($newer), 'VALID VALID', 'a committed rotation with grace survives an immediate shutdown: both verify');
is(audit_of($id), 'create,rotate,rotate', 'the audit agrees');
is($node->safe_psql('postgres', "SELECT count(*) FROM apikey.keys"), '1', 'exactly the one key exists');

$holder->quit;
$node->stop;
done_testing();
