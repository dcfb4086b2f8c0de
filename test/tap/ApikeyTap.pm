# ApikeyTap.pm: helpers the TAP suites share.
package ApikeyTap;
use strict;
use warnings;
use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Utils ();
use Time::HiRes qw(time usleep);

our @EXPORT = qw(wait_for concurrently create_burst kill_and_recover safe_psql_as);

# wait_for(node, sql, want[, seconds]): poll sql until it returns want;
# returns the last value seen.  The deadline is only for a test that fails:
# by default PostgreSQL's own (PG_TEST_TIMEOUT_DEFAULT, 180 s), since a
# loaded machine may be slow to get there.
sub wait_for
{
	my ($node, $sql, $want, $seconds) = @_;
	my $deadline = time + ($seconds // $PostgreSQL::Test::Utils::timeout_default);
	my $got;
	while (time < $deadline)
	{
		$got = $node->safe_psql('postgres', $sql);
		return $got if $got eq $want;
		usleep(50_000);
	}
	return $got;
}

# kill_and_recover(node, pid): kill -9 the backend pid and wait until the
# server has reinitialized after the crash and takes connections again.
# Waiting for a connection alone is not enough: one made before the
# postmaster saw the death would still get in, to a server about to crash.
sub kill_and_recover
{
	my ($node, $pid) = @_;
	my $offset = -s $node->logfile;
	kill 'KILL', $pid;
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	return $node->poll_query_until('postgres', 'SELECT 1', '1');
}

# concurrently(node, n, sql): run sql in n concurrent psql sessions and
# return their outputs
sub concurrently
{
	my ($node, $n, $sql) = @_;
	my (@h, @out);
	for my $i (0 .. $n - 1)
	{
		$out[$i] = '';
		push @h, IPC::Run::start(
			[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', $sql ],
			'>', \$out[$i], '2>', \my $err);
	}
	$_->finish for @h;
	chomp @out;
	return @out;
}

# create_burst(node): public.burst(key, seconds) verifies key for that many
# seconds, one verification after another, and returns how many were VALID
sub create_burst
{
	my ($node) = @_;
	$node->safe_psql('postgres', q{
CREATE FUNCTION public.burst(k text, secs float8) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
	n int := 0;
	stop timestamptz := clock_timestamp() + secs * interval '1 second';
BEGIN
	WHILE clock_timestamp() < stop LOOP
		IF (apikey.apikey_verify(k)).valid THEN
			n := n + 1;
		END IF;
	END LOOP;
	RETURN n;
END
$$});
}

# safe_psql_as(node, role, sql): safe_psql in database postgres, connected
# as role (a tenant, in the multi-tenant suites)
sub safe_psql_as
{
	my ($node, $role, $sql) = @_;
	return $node->safe_psql('postgres', $sql, extra_params => [ '-U', $role ]);
}

1;
