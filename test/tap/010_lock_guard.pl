# 010_lock_guard.pl: no role but a superuser can make every tenant's
# verifications wait by queueing a strong lock on one of apikey's tables
# or indexes before PostgreSQL checks who is asking.
#
# A superuser session holds what verifications and apikey_create hold
# (ACCESS SHARE on apikey.keys and its indexes, ROW EXCLUSIVE on the
# tables); then a manager (UPDATE and DELETE on apikey.keys) runs, one per
# session, every utility statement that can name another role's table or
# index, with lock_timeout set.  A statement that queued for a lock the
# holder's conflict with would fail with 55P03 (and, without the timeout,
# stop every verification behind it): none may.  The ones apikey's hook
# refuses must fail with 42501 and its message; the rest fail (or are
# skipped) by PostgreSQL's own checks, made before any lock.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('lockguard');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'apikey'\n");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION apikey;
CREATE ROLE tenant LOGIN IN ROLE apikey_manager;
GRANT CREATE ON SCHEMA public TO tenant;
CREATE FUNCTION public.outcome(setup text, stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	IF setup <> '' THEN
		EXECUTE setup;
	END IF;
	BEGIN
		EXECUTE stmt;
	EXCEPTION WHEN OTHERS THEN
		RETURN SQLSTATE || ' ' || SQLERRM;
	END;
	RETURN 'ok';
END
$$;
});
# the key stays in a table: the framework prints background queries, and
# no key may reach a log
$node->safe_psql('postgres', "CREATE TABLE public.held AS SELECT key FROM apikey.apikey_create('held', '{}')");

# what a verification and an apikey_create in flight hold
my $holder = $node->background_psql('postgres');
$holder->query_safe("BEGIN");
$holder->query_safe("SELECT v.code FROM public.held, apikey.apikey_verify(held.key) v");
$holder->query_safe("LOCK TABLE apikey.keys, apikey.usage, apikey.audit IN ROW EXCLUSIVE MODE");

sub outcome
{
	my ($setup, $stmt) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres',
		"SET lock_timeout = '3s'; SELECT public.outcome(\$s\$$setup\$s\$, \$t\$$stmt\$t\$)",
		stdout => \$out, stderr => \$err, extra_params => [ '-U', 'tenant' ]);
	return $out eq '' ? "psql: $err" : $out;
}

# refused by apikey's hook: each would lock first, check after
my @refused = (
	[ '', 'CREATE TEMP TABLE evil PARTITION OF apikey.keys FOR VALUES IN (1)' ],
	[ '', 'CREATE TEMP TABLE evil () INHERITS (apikey.keys)' ],
	[ '', 'CREATE TABLE public.evil () INHERITS (apikey.usage)' ],
	[ 'CREATE TEMP TABLE p (id bigint) PARTITION BY LIST (id)', 'ALTER TABLE p ATTACH PARTITION apikey.keys FOR VALUES IN (1)' ],
	[ 'CREATE TEMP TABLE p (id bigint) PARTITION BY LIST (id)', 'ALTER TABLE p DETACH PARTITION apikey.keys' ],
	[ 'CREATE TABLE public.p (id bigint) PARTITION BY LIST (id)', 'ALTER TABLE public.p DETACH PARTITION apikey.audit FINALIZE' ],
	[ 'CREATE TEMP TABLE pt (h bigint) PARTITION BY RANGE (h); CREATE INDEX ppi ON ONLY pt (h)',
	  'ALTER INDEX ppi ATTACH PARTITION apikey.keys_hash_prefix_idx' ],
	[ 'CREATE TEMP TABLE c (id bigint)', 'ALTER TABLE c INHERIT apikey.keys' ],
	[ 'CREATE TEMP TABLE c (id bigint)', 'ALTER TABLE c NO INHERIT apikey.keys' ],
	[ '', 'LOCK TABLE apikey.keys IN SHARE MODE' ],
	[ '', 'LOCK TABLE apikey.usage IN ACCESS EXCLUSIVE MODE' ],
	[ 'CREATE VIEW public.v AS SELECT id FROM apikey.keys', 'LOCK TABLE public.v IN EXCLUSIVE MODE' ],
	[ 'CREATE TEMP TABLE f (k bigint)', 'ALTER TABLE f ADD FOREIGN KEY (k) REFERENCES apikey.keys (id)' ],
	[ 'CREATE TEMP TABLE f (k bigint)', 'ALTER TABLE f ADD COLUMN k2 bigint REFERENCES apikey.keys (id)' ],
	[ '', 'CREATE TEMP TABLE g (k bigint REFERENCES apikey.keys (id))' ],
	[ '', 'CREATE RULE r AS ON INSERT TO apikey.keys DO INSTEAD NOTHING' ],
	[ '', 'CREATE TRIGGER t BEFORE UPDATE ON apikey.keys FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()' ],
	# found by an independent attack: a foreign table as a partition, and
	# DEPENDS ON EXTENSION, which locks before it checks ownership
	[ '', 'CREATE FOREIGN TABLE public.ff PARTITION OF apikey.keys DEFAULT SERVER nosuch' ],
	[ '', 'CREATE FOREIGN TABLE public.fi () INHERITS (apikey.usage) SERVER nosuch' ],
	[ '', 'ALTER MATERIALIZED VIEW apikey.keys DEPENDS ON EXTENSION plpgsql' ],
	[ '', 'ALTER INDEX apikey.keys_hash_prefix_idx DEPENDS ON EXTENSION plpgsql' ],
	[ '', 'ALTER INDEX apikey.usage_pkey NO DEPENDS ON EXTENSION plpgsql' ],
	[ '', 'ALTER MATERIALIZED VIEW apikey.key_status DEPENDS ON EXTENSION plpgsql' ],
	[ '', 'ALTER MATERIALIZED VIEW apikey.keys_id_seq DEPENDS ON EXTENSION plpgsql' ],
);
for my $c (@refused)
{
	my ($setup, $stmt) = @$c;
	like(outcome($setup, $stmt), qr/^42501 .*is reserved to its owner and superusers/, "refused before any lock: $stmt");
}

# refused (or skipped) by PostgreSQL's own checks, made before it locks;
# none may wait on the held locks
my @checked = (
	'ALTER TABLE apikey.keys ADD COLUMN x int',
	'ALTER TABLE apikey.keys RENAME TO k2',
	'ALTER TABLE apikey.keys OWNER TO tenant',
	'ALTER TABLE apikey.keys DISABLE TRIGGER ALL',
	'ALTER TABLE apikey.usage ALTER COLUMN use_count SET STATISTICS 0',
	'DROP TABLE apikey.keys',
	'DROP INDEX apikey.keys_hash_prefix_idx',
	'ALTER INDEX apikey.keys_hash_prefix_idx SET (fillfactor = 50)',
	'TRUNCATE apikey.keys',
	'TRUNCATE apikey.usage',
	'CREATE INDEX ON apikey.keys (name)',
	'REINDEX TABLE apikey.keys',
	'REINDEX INDEX apikey.keys_hash_prefix_idx',
	'CLUSTER apikey.keys USING keys_pkey',
	'VACUUM FULL apikey.keys',
	'VACUUM apikey.usage',
	'ANALYZE apikey.keys',
	'CREATE POLICY p ON apikey.keys USING (true)',
	'ALTER POLICY keys_manager ON apikey.keys USING (true)',
	'COMMENT ON TABLE apikey.keys IS $$x$$',
	'COMMENT ON COLUMN apikey.keys.name IS $$x$$',
	'CREATE STATISTICS s ON name, owner FROM apikey.keys',
	'GRANT SELECT ON apikey.keys TO PUBLIC',
	'REFRESH MATERIALIZED VIEW apikey.keys',
	'ALTER SEQUENCE apikey.keys_id_seq RESTART',
	'SECURITY LABEL ON TABLE apikey.keys IS $$x$$',
);
for my $stmt (@checked)
{
	unlike(outcome('', $stmt), qr/^55P03/, "does not queue for a lock: $stmt");
}

# and the held locks are what a verification needs: another session
# verifies meanwhile (nothing queued in front of it)
is($node->safe_psql('postgres', "SET lock_timeout = '3s'; SELECT v.code FROM public.held, apikey.apikey_verify(held.key) v"),
	'VALID', 'a verification meanwhile is not kept waiting');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_locks WHERE NOT granted"), '0', 'no lock request is left waiting');
# a superuser may still do what it likes (here: what it is refused to others)
is($node->safe_psql('postgres', "SET lock_timeout = '1s'; CREATE TABLE public.su_p (id bigint) PARTITION BY LIST (id); SELECT 'ok'"),
	'ok', 'superusers are not refused by the hook');
$holder->query_safe("COMMIT");
$holder->quit;

$node->stop;
done_testing();
