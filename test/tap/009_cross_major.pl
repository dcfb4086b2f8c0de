# 009_cross_major.pl: moving between PostgreSQL majors the way most users
# do, pg_dump on the old server and a restore on the new one.
#
# On every version this test makes a database with keys of every kind,
# usage written by the worker and an audit history, and dumps it (plain SQL
# and custom format) into $APIKEY_XMAJOR_DIR as pgMAJOR.sql / .dump, with
# what the keys answered beside it (pgMAJOR.expect).  It then restores every
# dump made there by an older major (scripts/test.sh --matrix runs 15, then
# 17, then 18, and carries the directory between them) and checks that every
# key verifies as before, that keys, hashes, usage and the audit arrived
# unchanged, and that the restored database counts new usage.  A version
# newer than the oldest supported one with no dump of that one to restore
# fails: the point is the move.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $oldest = 15;
my $dir = $ENV{APIKEY_XMAJOR_DIR} or BAIL_OUT('APIKEY_XMAJOR_DIR is not set (test/tap/run.sh sets it)');

my $node = PostgreSQL::Test::Cluster->new('xmajor');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'apikey'
apikey.flush_interval = 100
apikey.log_verifications = 'all'
});
$node->start;
my $major = $node->safe_psql('postgres', "SELECT current_setting('server_version_num')::int / 10000");

my $codes = "SELECT string_agg(tag || '=' || v.code || ':' || coalesce(v.owner, '-'), ',' ORDER BY tag)
	FROM public.raw, apikey.apikey_verify(key, '{jobs:read}', CASE WHEN tag = 'bound' THEN 'db-1' END,
	                                      CASE WHEN tag = 'bound' THEN '10.1.1.1'::inet END) v";
my $keys = "SET TimeZone = 'UTC'; SELECT md5(string_agg(id || name || encode(secret_hash, 'hex') || coalesce(encode(grace_secret_hash, 'hex'), '')
	|| (to_jsonb(k) - 'secret_hash' - 'grace_secret_hash')::text, ',' ORDER BY id)) FROM apikey.keys k";
my $usage = "SELECT string_agg(key_id || ':' || use_count || ':' || extract(epoch FROM last_used_at), ',' ORDER BY key_id) FROM apikey.usage";
# the audit but for verification outcomes, which the worker logs only in
# the database apikey.database names
my $audit = "SELECT count(*) || ':' || md5(string_agg(id || action || coalesce(key_id::text, '') || actor_current_user
	|| extract(epoch FROM at) || coalesce(detail::text, ''), ',' ORDER BY id)) FROM apikey.audit WHERE action <> 'verify'";

# --- this version's database and dump
my $src = "made_on_pg$major";
$node->safe_psql('postgres', "CREATE DATABASE $src");
$node->safe_psql($src, 'CREATE EXTENSION apikey');
$node->safe_psql($src, slurp_file('test/keys_of_every_kind.sql'));
# usage as the worker writes it (this database is not the one
# apikey.database names, so it is written here by hand, as 005 does)
$node->safe_psql($src, "INSERT INTO apikey.usage SELECT key_id, '2026-06-01 12:00:00+00', 7 FROM public.raw WHERE tag = 'plain'");
my $want_codes = 'bound=VALID:org-1,gone=NOT_FOUND:-,off=DISABLED:-,old=EXPIRED:-,plain=VALID:-,rot=VALID:-,rot-new=VALID:-';
is($node->safe_psql($src, $codes), $want_codes, "PostgreSQL $major: every kind of key answers as it should before the dump");

mkdir $dir unless -d $dir;
unlink glob("$dir/pg$major.*");
command_ok([ 'pg_dump', '-d', $node->connstr($src), '-f', "$dir/pg$major.sql" ], "PostgreSQL $major: pg_dump (plain SQL)");
command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr($src), '-f', "$dir/pg$major.dump" ], "PostgreSQL $major: pg_dump -Fc");
open(my $fh, '>', "$dir/pg$major.expect.tmp") or die "cannot write $dir: $!";
print $fh join("\t", 'codes', $node->safe_psql($src, $codes)), "\n";
print $fh join("\t", 'keys', $node->safe_psql($src, $keys)), "\n";
print $fh join("\t", 'usage', $node->safe_psql($src, $usage)), "\n";
print $fh join("\t", 'audit', $node->safe_psql($src, $audit)), "\n";
close $fh;
rename("$dir/pg$major.expect.tmp", "$dir/pg$major.expect") or die "rename: $!";

# --- every older major's dump, restored here
my @older = sort { $a <=> $b } grep { $_ < $major } map { m{/pg(\d+)\.expect$} ? $1 : () } glob("$dir/pg*.expect");
if ($major > $oldest)
{
	# the worker serves the database the oldest version's dump goes to
	$node->append_conf('postgresql.conf', "apikey.database = 'from_pg$oldest'");
	$node->restart;
	ok(scalar(grep { $_ == $oldest } @older), "PostgreSQL $major: a dump made on PostgreSQL $oldest is there to restore")
	  or diag("none in $dir: run scripts/test.sh --matrix, which runs $oldest first");
}

for my $from (@older)
{
	my %want;
	open(my $in, '<', "$dir/pg$from.expect") or die;
	while (<$in>)
	{
		chomp;
		my ($k, $v) = split /\t/, $_, 2;
		$want{$k} = $v // '';
	}
	close $in;

	for my $format ('sql', 'dump')
	{
		my $db = $format eq 'sql' ? "from_pg$from" : "from_pg${from}_fc";
		my $how = "PostgreSQL $from to $major (" . ($format eq 'sql' ? 'plain SQL, psql' : 'custom format, pg_restore') . ')';
		$node->safe_psql('postgres', "CREATE DATABASE $db");
		if ($format eq 'sql')
		{
			command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($db), '-f', "$dir/pg$from.sql" ],
				"$how: the dump replays");
		}
		else
		{
			command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr($db), "$dir/pg$from.dump" ],
				"$how: pg_restore");
		}
		# usage first: verifying counts a use
		is($node->safe_psql($db, $usage), $want{usage}, "$how: usage is identical");
		is($node->safe_psql($db, $keys), $want{keys}, "$how: keys and hashes are identical");
		is($node->safe_psql($db, $audit), $want{audit}, "$how: the audit history is identical (the restore logged nothing)");
		is($node->safe_psql($db, $codes), $want{codes}, "$how: every key verifies as it did");
	}

	next unless $from == $oldest;
	# the database apikey.database names: new uses are counted on top of
	# the restored ones, and new keys continue the ids
	my $db = "from_pg$from";
	my $id = $node->safe_psql($db, "SELECT key_id FROM public.raw WHERE tag = 'plain'");
	$node->safe_psql($db, "SELECT apikey.apikey_verify(key) FROM public.raw, generate_series(1, 3) WHERE tag = 'plain'");
	my $sql = "SELECT use_count FROM apikey.usage WHERE key_id = $id";
	my $got = $node->poll_query_until($db, $sql, '11') ? '11' : $node->safe_psql($db, $sql);
	is($got, '11', "PostgreSQL $from to $major: the restored usage counts on (7 + 1 + 3 uses)");
	is($node->safe_psql($db, "SELECT (c.key_id > (SELECT max(key_id) FROM public.raw))::text FROM apikey.apikey_create('after', '{}') c"),
		'true', "PostgreSQL $from to $major: new key ids continue after the restored ones");
}

$node->stop;
done_testing();
