# 005_dump_restore.pl: pg_dump a database using apikey, drop it, restore it
# (custom format with pg_restore, and plain SQL with psql): every key
# verifies as before, keys, hashes, usage and the audit are identical (no
# create row logged again), and ids continue after the restore.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->start;
my $db = 'apikey_dump_src';
my $tmp = PostgreSQL::Test::Utils::tempdir;

sub run_sql { return $node->safe_psql($db, $_[0]); }
sub recreate
{
	$node->safe_psql('postgres', "DROP DATABASE IF EXISTS $db");
	$node->safe_psql('postgres', "CREATE DATABASE $db");
}

recreate();
run_sql("CREATE EXTENSION apikey");
# five keys: plain, rotated with grace, disabled, updated, deleted
run_sql("CREATE TABLE public.raw AS SELECT k.key_id, k.key, 'k' || g AS tag
     FROM generate_series(1, 5) g, LATERAL apikey.apikey_create('key ' || g, '{jobs:read}', owner => 'o' || g) k");
run_sql("INSERT INTO public.raw SELECT key_id, apikey.apikey_rotate(key_id, '1 day'), 'k2-new' FROM public.raw WHERE tag = 'k2'");
run_sql("UPDATE apikey.keys SET enabled = false WHERE id = (SELECT key_id FROM public.raw WHERE tag = 'k3')");
run_sql("UPDATE apikey.keys SET scopes = '{jobs:read,jobs:write}' WHERE id = (SELECT key_id FROM public.raw WHERE tag = 'k4')");
run_sql("DELETE FROM apikey.keys WHERE id = (SELECT key_id FROM public.raw WHERE tag = 'k5')");
# usage as the worker writes it (this server does not preload apikey)
run_sql("INSERT INTO apikey.usage SELECT key_id, '2026-01-01', 7 FROM public.raw WHERE tag = 'k1'");

my $codes = "SELECT string_agg(tag || '=' || (apikey.apikey_verify(key, '{jobs:read}')).code, ',' ORDER BY tag) FROM public.raw";
my $audit = "SELECT string_agg(id || ':' || action || ':' || key_id || ':' || actor_current_user, ',' ORDER BY id) FROM apikey.audit";
my $keys = "SELECT string_agg(id || name || encode(secret_hash, 'hex') || coalesce(encode(grace_secret_hash, 'hex'), ''), ',' ORDER BY id) FROM apikey.keys";
my $usage = "SELECT string_agg(key_id || ':' || use_count || ':' || last_used_at, ',') FROM apikey.usage";
my %before = (codes => run_sql($codes), audit => run_sql($audit), keys => run_sql($keys), usage => run_sql($usage));
is($before{codes}, 'k1=VALID,k2=VALID,k2-new=VALID,k3=DISABLED,k4=VALID,k5=NOT_FOUND', 'codes before the dump');
is(run_sql("SELECT count(*) FROM apikey.audit"), '9', 'nine audit rows before the dump');

command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr($db), '-f', "$tmp/db.dump" ], 'pg_dump -Fc');
command_ok([ 'pg_dump', '-d', $node->connstr($db), '-f', "$tmp/db.sql" ], 'pg_dump (plain SQL)');

sub same_as_before
{
	my ($how) = @_;
	is(run_sql($codes), $before{codes}, "$how: every key verifies as before");
	is(run_sql($audit), $before{audit}, "$how: the audit is identical (no create row logged again)");
	is(run_sql($keys), $before{keys}, "$how: keys and hashes identical");
	is(run_sql($usage), $before{usage}, "$how: usage identical");
}

recreate();
command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr($db), "$tmp/db.dump" ], 'pg_restore');
same_as_before('pg_restore');
# new keys and audit rows continue the sequences instead of colliding
run_sql("INSERT INTO public.raw SELECT key_id, key, 'k6' FROM apikey.apikey_create('key 6', '{jobs:read}')");
is(run_sql("SELECT key_id FROM public.raw WHERE tag = 'k6'"), '6', 'key ids continue after the restore');
is(run_sql("SELECT action || ':' || key_id FROM apikey.audit ORDER BY id DESC LIMIT 1"), 'create:6', 'the audit continues');
is(run_sql("SELECT count(*) FROM apikey.audit"), '10', 'one new audit row for the new key');

recreate();
command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($db), '-f', "$tmp/db.sql" ], 'the plain SQL dump replays');
same_as_before('plain SQL');

$node->stop;
done_testing();
