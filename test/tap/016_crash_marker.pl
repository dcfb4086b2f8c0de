# 016_crash_marker.pl: the marker of a running server
# (pg_stat_tmp/apikey.running) is what tells the start after a crash that
# spent rate-limit tokens must stay spent.  If it cannot be made, the
# server must not start as if all were well: a later crash would look like
# a first start and refill every bucket.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('marker');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'apikey'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION apikey');
ok(-e $node->data_dir . '/pg_stat_tmp/apikey.running', 'a running server has its marker');
$node->stop;
ok(!-e $node->data_dir . '/pg_stat_tmp/apikey.running', 'a clean shutdown removes it');

my $dir = $node->data_dir . '/pg_stat_tmp';
chmod 0500, $dir or die "chmod: $!";
my $started = $node->start(fail_ok => 1);
ok(!$started, 'with the marker impossible to make, the server does not start');
like(slurp_file($node->logfile), qr/could not create file "pg_stat_tmp\/apikey.running"/,
	'and the log says why');
chmod 0700, $dir or die "chmod: $!";
$node->start;
is($node->safe_psql('postgres', "SELECT count(*) FROM apikey.keys"), '0', 'made writable again, it starts');
$node->stop;
done_testing();
