/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background worker that writes what verification only counts in
 *	  shared memory (tracker.c): usage into apikey.usage and queued
 *	  verification outcomes into apikey.audit, every apikey.flush_interval,
 *	  in the database named by apikey.database.
 *
 *	  It is registered like pg_cron's launcher: started once recovery has
 *	  finished (so never on a hot standby, where nothing can be written),
 *	  restarted by the postmaster if it dies.  It sleeps on its latch while
 *	  nothing was recorded, survives errors in a flush (logs, backs off,
 *	  tries again), and flushes once more when asked to stop.
 *
 *	  The statements name apikey's tables through the extension's own
 *	  schema (found in pg_extension), never through search_path, and run
 *	  with search_path = pg_catalog, pg_temp.  Usage goes to its own table:
 *	  writing it never locks a key's row, so it never waits on, or blocks,
 *	  an administrator's change; it fires no audit row.
 *
 *	  A key's usage row, once it exists, is updated in place, the way
 *	  PostgreSQL keeps a sequence's counter: the new count and time
 *	  overwrite the old ones in the row itself (an in-place heap update,
 *	  WAL-logged, so it survives a crash and reaches standbys; taken under
 *	  the row's tuple lock where PostgreSQL has one, see compat.h), not as a
 *	  new row version.  At ~20,000 used keys a second that takes 2.5 times
 *	  less CPU than INSERT ... ON CONFLICT DO UPDATE, and leaves no dead
 *	  rows for VACUUM.  Like a sequence's, the write is not transactional
 *	  (a reader sees it at once; an abort does not undo it) and not part of
 *	  logical decoding; it fires no trigger.  Only a key's first usage row
 *	  is INSERTed, by SQL.  Rows are written by SQL too when an in-place
 *	  write could be wrong: an index holding more than key_id (it would go
 *	  stale), a changed column layout, or a row another transaction is
 *	  updating (apikey_row_busy, heaprow.c; an UPDATE that starts between
 *	  that check and the write is caught by the tuple lock where PostgreSQL
 *	  has one, see compat.h).  No role but a superuser may write
 *	  apikey.usage besides the worker.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/tuptable.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/bufmgr.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "commands/dbcommands.h"
#include "utils/lsyscache.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "codes.h"
#include "compat.h"
#include "heaprow.h"
#include "tracker.h"
#include "worker.h"

PGDLLEXPORT void apikey_worker_main(Datum arg);

/* settings */
static int	usage_retention_min = 90 * 24 * 60;	/* apikey.usage_retention */
static int	flush_interval_ms = 1000;
static char *worker_database = NULL;

/* rows per statement */
#define FLUSH_BATCH 1000
#define MAX_BACKOFF_MS 30000

/*
 * apikey_worker_init: define the worker's settings and, when loaded by
 * shared_preload_libraries, register it.
 */
void
apikey_worker_init(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("apikey.flush_interval",
							"How often the worker writes usage and the verification log.",
							NULL,
							&flush_interval_ms,
							1000,
							10,
							3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL,
							NULL,
							NULL);
	DefineCustomIntVariable("apikey.usage_retention",
							"How long the worker keeps rows of apikey.usage_hourly.",
							NULL,
							&usage_retention_min,
							90 * 24 * 60,
							60,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MIN,
							NULL,
							NULL,
							NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomStringVariable("apikey.database",
							   "Database whose apikey tables the worker writes.",
							   "Usage and the verification log of keys in other databases are counted but not written.",
							   &worker_database,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   NULL,
							   NULL,
							   NULL);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "apikey");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "apikey_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "apikey worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "apikey worker");
	RegisterBackgroundWorker(&worker);
}

/*
 * schema: apikey's schema, quoted, or NULL if not installed here; *keys
 * is the OID of its apikey.keys (tracked state is keyed by it).
 */
static const char *
schema(Oid *keys)
{
	Oid			nsp = apikey_extension_schema();

	*keys = OidIsValid(nsp) ? get_relname_relid("keys", nsp) : InvalidOid;
	return OidIsValid(*keys) ? quote_identifier(get_namespace_name(nsp)) : NULL;
}

static void
execute(const char *sql, int nargs, Oid *types, Datum *values)
{
	int			ret = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);

	if (ret < 0)
		elog(ERROR, "apikey worker: SPI_execute_with_args failed: %s",
			 SPI_result_code_string(ret));
}

/*
 * array_of: a one-dimensional array of n datums of a builtin type (nulls
 * NULL: none null), for the statements' array parameters
 */
static Datum
array_of(Datum *elems, bool *nulls, int n, Oid type)
{
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int			len;
	bool		byval;
	char		align;

	switch (type)
	{
		case INT8OID:
		case TIMESTAMPTZOID:
			len = 8, byval = true, align = TYPALIGN_DOUBLE;
			break;
		case BOOLOID:
			len = 1, byval = true, align = TYPALIGN_CHAR;
			break;
		case NAMEOID:
			len = NAMEDATALEN, byval = false, align = TYPALIGN_CHAR;
			break;
		case TEXTOID:
		case INETOID:
			len = -1, byval = false, align = TYPALIGN_INT;
			break;
		default:
			elog(ERROR, "apikey worker: no array of type %u", type);
	}
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, type, len, byval, align));
}

/* usage_by_key: qsort order of ApikeyUsage by key_id */
static int
usage_by_key(const void *a, const void *b)
{
	int64		x = ((const ApikeyUsage *) a)->key_id;
	int64		y = ((const ApikeyUsage *) b)->key_id;

	return (x > y) - (x < y);
}

/*
 * usage_layout_known: how many of rel's first columns are still (key_id
 * bigint, last_used_at timestamptz, use_count bigint) and 1.2's
 * (credits_remaining bigint, credits_set_at timestamptz,
 * credits_refilled_at timestamptz), so that a row without nulls holds them
 * at data offsets 0, 8, 16, 24, 32 and 40: 6, 3, or 0 if not even the first
 * three.
 */
static int
usage_layout_known(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	static const Oid types[6] = {INT8OID, TIMESTAMPTZOID, INT8OID,
	INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	int			i;

	for (i = 0; i < 6 && i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->atttypid != types[i] || att->attlen != 8)
			break;
	}
	return i >= 6 ? 6 : i >= 3 ? 3 : 0;
}

/*
 * usage_indexes_key_only: whether every index on rel holds key_id alone
 * (no other key or INCLUDE column, no expression, no predicate).  An
 * in-place write changes last_used_at and use_count without touching any
 * index, so an index holding either (a DBA's index on last_used_at) would
 * go stale: such a table is written by SQL.
 */
static bool
usage_indexes_key_only(Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	bool		ok = true;

	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), RowExclusiveLock);
		Form_pg_index ix = idx->rd_index;

		if (ix->indnatts != 1 || ix->indkey.values[0] != 1 ||
			!heap_attisnull(idx->rd_indextuple, Anum_pg_index_indexprs, NULL) ||
			!heap_attisnull(idx->rd_indextuple, Anum_pg_index_indpred, NULL))
			ok = false;
		index_close(idx, NoLock);
		if (!ok)
			break;
	}
	list_free(indexes);
	return ok;
}

/*
 * update_in_place: add each key's usage u[i] to its existing row of the
 * usage table usage_relid, in place (see the header comment), and set
 * done[i].  Keys without a row (and rows whose layout this code does not
 * know) are left for the caller's INSERT.  u is in key order, so the
 * probes of the primary key walk its pages in order.
 */
static void
update_in_place(Oid usage_relid, const ApikeyUsage *u, int n, bool *done)
{
	Relation	rel = table_open(usage_relid, RowExclusiveLock);
	Oid			pk = apikey_primary_key_index(rel);
	Relation	idx;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData skey;
	int			i;
	int			known = usage_layout_known(rel);

	/* the primary key is one of the indexes: on key_id alone, then */
	if (!OidIsValid(pk) || known == 0 || !usage_indexes_key_only(rel))
	{
		table_close(rel, NoLock);
		return;
	}
	idx = index_open(pk, RowExclusiveLock);
	slot = table_slot_create(rel, NULL);
	scan = apikey_index_beginscan(rel, idx, GetActiveSnapshot(), 1);
	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		ScanKeyInit(&skey, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(u[i].key_id));
		index_rescan(scan, &skey, 1, NULL, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			bool		should_free;
			HeapTuple	tup = ExecFetchSlotHeapTuple(slot, false, &should_free);
			Buffer		buf = ((BufferHeapTupleTableSlot *) slot)->buffer;

			/* a balance needs 1.2's columns, in the row itself */
			int			need = u[i].has_balance ? 6 : 3;

			if (!HeapTupleHasNulls(tup) && known >= need &&
				HeapTupleHeaderGetNatts(tup->t_data) >= need &&
				!apikey_row_busy(buf, tup) && apikey_inplace_begin(rel, tup, buf))
			{
				HeapTuple	copy = heap_copytuple(tup);
				char	   *data = (char *) copy->t_data + copy->t_data->t_hoff;
				TimestampTz at;
				int64		count;

				memcpy(&at, data + 8, sizeof(at));
				memcpy(&count, data + 16, sizeof(count));
				at = Max(at, u[i].last_used_at);
				if (pg_add_s64_overflow(count, u[i].uses, &count))
					count = PG_INT64_MAX;
				memcpy(data + 8, &at, sizeof(at));
				memcpy(data + 16, &count, sizeof(count));
				if (u[i].has_balance)
				{
					memcpy(data + 24, &u[i].balance.balance, sizeof(int64));
					memcpy(data + 32, &u[i].balance.set_at, sizeof(int64));
					memcpy(data + 40, &u[i].balance.period, sizeof(int64));
				}
				apikey_inplace_finish(rel, tup, copy, buf);
				heap_freetuple(copy);
				done[i] = true;
			}
			if (should_free)
				heap_freetuple(tup);
			ExecClearTuple(slot);
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, NoLock);
	table_close(rel, NoLock);

	/*
	 * Make the overwrites durable now.  Readers see an in-place write at
	 * once, but a transaction without an xid does not flush the WAL at
	 * commit, so a crash shortly after could lose counts someone had
	 * already read (usage going backwards).  Sequences get the same
	 * guarantee by taking an xid; flushing here also closes the window
	 * until the commit.
	 */
	XLogFlush(XactLastRecEnd);
}

/*
 * reclaim_missing: remove the tracker entries kept only for a spent
 * bucket whose key no longer exists (deleted, or created and verified in
 * a transaction that rolled back), so that no one can fill shared memory
 * with keys that never were.  ids are those apikey_tracker_collect_usage
 * found kept only for a spent bucket, collected only while the key table
 * is more than half full.  A key created in a transaction that
 * is still open after two flushes counts as missing: its bucket, spent in
 * that transaction, starts full again once it commits.
 */
static void
reclaim_missing(const char *nsp, Oid relid, const int64 *ids, int n)
{
	Datum	   *elems;
	Datum		arg;
	Oid			type = INT8ARRAYOID;
	int64	   *missing;
	uint64		i;
	int			m = 0;

	if (n == 0)
		return;
	elems = palloc(sizeof(Datum) * n);
	for (i = 0; i < (uint64) n; i++)
		elems[i] = Int64GetDatum(ids[i]);
	arg = array_of(elems, NULL, n, INT8OID);
	if (SPI_execute_with_args(psprintf("SELECT i FROM pg_catalog.unnest($1) AS i"
									   " WHERE NOT EXISTS (SELECT FROM %s.keys k WHERE k.id OPERATOR(pg_catalog.=) i)",
									   nsp),
							  1, &type, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "apikey worker: could not look up the tracked keys");
	missing = palloc(sizeof(int64) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			missing[m++] = DatumGetInt64(d);
	}
	apikey_tracker_forget_keys(MyDatabaseId, relid, missing, m);
}

/*
 * flush_usage: the usage counted since the last flush (u[0..total), from
 * apikey_tracker_collect_usage), into <nsp>.usage: in place into the rows
 * that exist, then the first row of each newly used key by INSERT (of a
 * key that still exists), FLUSH_BATCH keys per statement, in key order.
 */
static void
flush_usage(const char *nsp, Oid relid, ApikeyUsage *u, int total)
{
	Oid			usage_relid = get_relname_relid("usage", get_rel_namespace(relid));
	bool	   *done;
	int			from;
	int			left;
	Oid			types[7] = {INT8ARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID,
		BOOLARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID};
	bool		balances = false;
	int			i;
	char	   *sql;

	/*
	 * Balances go into 1.2's columns (a usage table of 1.1, in a database
	 * not updated yet, has no metered key to write); a row without one says
	 * so with credits_set_at -infinity (no grant is ever stamped so).  A
	 * balance without a use (a refill, a refund) has no last use to
	 * write: NULL, kept as it was by GREATEST.
	 */
	for (i = 0; i < total && !balances; i++)
		balances = u[i].has_balance;
	if (balances)
		sql = psprintf("INSERT INTO %s.usage AS u (key_id, last_used_at, use_count,"
					   " credits_remaining, credits_set_at, credits_refilled_at)"
					   " SELECT f.id, f.at, f.n, CASE WHEN f.has THEN f.bal ELSE 0 END,"
					   " CASE WHEN f.has THEN f.set_at ELSE '-infinity' END,"
					   " CASE WHEN f.has THEN f.period ELSE '-infinity' END"
					   " FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
					   " pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5),"
					   " pg_catalog.unnest($6), pg_catalog.unnest($7)) AS f(id, at, n, has, bal, set_at, period)"
					   " WHERE EXISTS (SELECT 1 FROM %s.keys k WHERE k.id OPERATOR(pg_catalog.=) f.id)"
					   " ON CONFLICT (key_id) DO UPDATE SET"
					   " use_count = u.use_count OPERATOR(pg_catalog.+) excluded.use_count,"
					   " last_used_at = GREATEST(u.last_used_at, excluded.last_used_at),"
					   " credits_remaining = CASE WHEN excluded.credits_set_at OPERATOR(pg_catalog.=) '-infinity'"
					   " THEN u.credits_remaining ELSE excluded.credits_remaining END,"
					   " credits_refilled_at = CASE WHEN excluded.credits_set_at OPERATOR(pg_catalog.=) '-infinity'"
					   " THEN u.credits_refilled_at ELSE excluded.credits_refilled_at END,"
					   " credits_set_at = CASE WHEN excluded.credits_set_at OPERATOR(pg_catalog.=) '-infinity'"
					   " THEN u.credits_set_at ELSE excluded.credits_set_at END",
					   nsp, nsp);
	else
		sql = psprintf("INSERT INTO %s.usage AS u (key_id, last_used_at, use_count)"
					   " SELECT f.id, f.at, f.n FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
					   " pg_catalog.unnest($3)) AS f(id, at, n)"
					   " WHERE EXISTS (SELECT 1 FROM %s.keys k WHERE k.id OPERATOR(pg_catalog.=) f.id)"
					   " ON CONFLICT (key_id) DO UPDATE SET"
					   " use_count = u.use_count OPERATOR(pg_catalog.+) excluded.use_count,"
					   " last_used_at = GREATEST(u.last_used_at, excluded.last_used_at)",
					   nsp, nsp);

	if (total == 0)
		return;
	qsort(u, total, sizeof(ApikeyUsage), usage_by_key);
	done = palloc0(sizeof(bool) * total);
	if (OidIsValid(usage_relid))
		update_in_place(usage_relid, u, total, done);

	/* what is left, in key order, keeps its place at the front of u */
	left = 0;
	for (from = 0; from < total; from++)
		if (!done[from])
			u[left++] = u[from];

	for (from = 0; from < left; from += FLUSH_BATCH)
	{
		int			n = Min(FLUSH_BATCH, left - from);
		Datum	   *ids = palloc(sizeof(Datum) * n);
		Datum	   *ats = palloc(sizeof(Datum) * n);
		Datum	   *uses = palloc(sizeof(Datum) * n);
		bool	   *at_nulls = palloc(sizeof(bool) * n);
		Datum		args[7];

		CHECK_FOR_INTERRUPTS();
		for (i = 0; i < n; i++)
		{
			ids[i] = Int64GetDatum(u[from + i].key_id);
			ats[i] = TimestampTzGetDatum(u[from + i].last_used_at);
			at_nulls[i] = u[from + i].uses == 0;
			uses[i] = Int64GetDatum(u[from + i].uses);
		}
		args[0] = array_of(ids, NULL, n, INT8OID);
		args[1] = array_of(ats, at_nulls, n, TIMESTAMPTZOID);
		args[2] = array_of(uses, NULL, n, INT8OID);
		if (balances)
		{
			Datum	   *has = palloc(sizeof(Datum) * n);
			Datum	   *bal = palloc(sizeof(Datum) * n);
			Datum	   *set_at = palloc(sizeof(Datum) * n);
			Datum	   *period = palloc(sizeof(Datum) * n);

			for (i = 0; i < n; i++)
			{
				has[i] = BoolGetDatum(u[from + i].has_balance);
				bal[i] = Int64GetDatum(u[from + i].balance.balance);
				set_at[i] = TimestampTzGetDatum(u[from + i].balance.set_at);
				period[i] = TimestampTzGetDatum(u[from + i].balance.period);
			}
			args[3] = array_of(has, NULL, n, BOOLOID);
			args[4] = array_of(bal, NULL, n, INT8OID);
			args[5] = array_of(set_at, NULL, n, TIMESTAMPTZOID);
			args[6] = array_of(period, NULL, n, TIMESTAMPTZOID);
		}
		execute(sql, balances ? 7 : 3, types, args);
	}
}

/*
 * flush_owner_balances: the owners' balances that changed (u[0..n), their
 * key_id an apikey.owners.id) into <nsp>.owner_usage, by SQL: owners are
 * few, and an owner deleted meanwhile gets no row.
 */
static void
flush_owner_balances(const char *nsp, const ApikeyUsage *u, int n)
{
	Oid			types[4] = {INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID};
	Datum		args[4];
	Datum	   *ids;
	Datum	   *bal;
	Datum	   *set_at;
	Datum	   *period;
	int			i;

	if (n == 0)
		return;
	ids = palloc(sizeof(Datum) * n);
	bal = palloc(sizeof(Datum) * n);
	set_at = palloc(sizeof(Datum) * n);
	period = palloc(sizeof(Datum) * n);
	for (i = 0; i < n; i++)
	{
		ids[i] = Int64GetDatum(u[i].key_id);
		bal[i] = Int64GetDatum(u[i].balance.balance);
		set_at[i] = TimestampTzGetDatum(u[i].balance.set_at);
		period[i] = TimestampTzGetDatum(u[i].balance.period);
	}
	args[0] = array_of(ids, NULL, n, INT8OID);
	args[1] = array_of(bal, NULL, n, INT8OID);
	args[2] = array_of(set_at, NULL, n, TIMESTAMPTZOID);
	args[3] = array_of(period, NULL, n, TIMESTAMPTZOID);
	execute(psprintf("INSERT INTO %s.owner_usage AS u (owner_id, credits_remaining, credits_set_at,"
					 " credits_refilled_at)"
					 " SELECT f.id, f.bal, f.set_at, f.period FROM ROWS FROM (pg_catalog.unnest($1),"
					 " pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4))"
					 " AS f(id, bal, set_at, period)"
					 " WHERE EXISTS (SELECT 1 FROM %s.owners o WHERE o.id OPERATOR(pg_catalog.=) f.id)"
					 " ON CONFLICT (owner_id) DO UPDATE SET credits_remaining = excluded.credits_remaining,"
					 " credits_set_at = excluded.credits_set_at,"
					 " credits_refilled_at = excluded.credits_refilled_at",
					 nsp, nsp),
			4, types, args);
}

/*
 * flush_hourly: verifications by key, hour and code (h[0..n)) added into
 * <nsp>.usage_hourly, and, once a minute and at the first flush after
 * apikey.usage_retention changed, the rows older than it removed.  A key deleted meanwhile gets no row.
 */
static void
flush_hourly(const char *nsp, Oid relid, const ApikeyHourly *h, int n)
{
	static TimestampTz last_trim = 0;
	static int	trimmed_for = -1;
	TimestampTz now = GetCurrentTimestamp();
	Oid			types[4] = {INT8ARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
	Datum		args[4];
	int			from;
	int			i;

	/* a database still on 1.1 has no history to write */
	if (!OidIsValid(relid))
		return;
	for (from = 0; from < n; from += FLUSH_BATCH)
	{
		int			m = Min(FLUSH_BATCH, n - from);
		Datum	   *ids = palloc(sizeof(Datum) * m);
		Datum	   *hours = palloc(sizeof(Datum) * m);
		Datum	   *codes = palloc(sizeof(Datum) * m);
		Datum	   *counts = palloc(sizeof(Datum) * m);

		CHECK_FOR_INTERRUPTS();
		for (i = 0; i < m; i++)
		{
			ids[i] = Int64GetDatum(h[from + i].key_id);
			hours[i] = TimestampTzGetDatum(h[from + i].hour);
			codes[i] = apikey_code_text((ApikeyCode) h[from + i].code);
			counts[i] = Int64GetDatum(h[from + i].count);
		}
		args[0] = array_of(ids, NULL, m, INT8OID);
		args[1] = array_of(hours, NULL, m, TIMESTAMPTZOID);
		args[2] = array_of(codes, NULL, m, TEXTOID);
		args[3] = array_of(counts, NULL, m, INT8OID);
		execute(psprintf("INSERT INTO %s.usage_hourly AS u (key_id, hour, code, count)"
						 " SELECT f.id, f.hour, f.code, f.n FROM ROWS FROM (pg_catalog.unnest($1),"
						 " pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4))"
						 " AS f(id, hour, code, n)"
						 " WHERE EXISTS (SELECT 1 FROM %s.keys k WHERE k.id OPERATOR(pg_catalog.=) f.id)"
						 " ON CONFLICT (key_id, hour, code) DO UPDATE SET"
						 " count = u.count OPERATOR(pg_catalog.+) excluded.count",
						 nsp, nsp),
				4, types, args);
	}
	if (now - last_trim >= 60 * USECS_PER_SEC || trimmed_for != usage_retention_min)
	{
		Oid			type = TIMESTAMPTZOID;
		Datum		arg = TimestampTzGetDatum(now - (int64) usage_retention_min * 60 * USECS_PER_SEC);

		execute(psprintf("DELETE FROM %s.usage_hourly WHERE hour OPERATOR(pg_catalog.<) $1", nsp),
				1, &type, &arg);
		last_trim = now;
		trimmed_for = usage_retention_min;
	}
}

/* flush_log: queued verification outcomes of this database into <nsp>.audit */
static int
flush_log(const char *nsp)
{
	ApikeyLogEntry *q = palloc(sizeof(ApikeyLogEntry) * FLUSH_BATCH);
	int			n = apikey_tracker_take_log(q, FLUSH_BATCH);
	int			m = 0;
	Datum	   *cols[7];
	bool	   *addr_nulls;
	bool	   *id_nulls;
	Oid			types[7] = {TIMESTAMPTZARRAYOID, INT8ARRAYOID, TEXTARRAYOID,
	NAMEARRAYOID, NAMEARRAYOID, TEXTARRAYOID, INETARRAYOID};
	Datum		args[7];
	int			i;
	int			c;

	if (n == 0)
		return 0;
	for (c = 0; c < 7; c++)
		cols[c] = palloc(sizeof(Datum) * n);
	addr_nulls = palloc(sizeof(bool) * n);
	id_nulls = palloc(sizeof(bool) * n);
	for (i = 0; i < n; i++)
	{
		ApikeyLogEntry *e = &q[i];

		/* outcomes of keys of other databases cannot be written here */
		if (e->dbid != MyDatabaseId)
			continue;
		cols[0][m] = TimestampTzGetDatum(e->at);
		cols[1][m] = Int64GetDatum(e->key_id);
		id_nulls[m] = e->key_id == 0;
		cols[2][m] = CStringGetTextDatum(apikey_code_name((ApikeyCode) e->code));
		cols[3][m] = NameGetDatum(&e->session_user);
		cols[4][m] = NameGetDatum(&e->current_user);
		cols[5][m] = CStringGetTextDatum(e->application_name);
		addr_nulls[m] = !e->has_client;
		if (e->has_client)
		{
			inet	   *addr = palloc0(sizeof(inet));

			memcpy(&addr->inet_data, &e->client, sizeof(inet_struct));
			SET_INET_VARSIZE(addr);
			cols[6][m] = InetPGetDatum(addr);
		}
		else
			cols[6][m] = (Datum) 0;
		m++;
	}
	if (m == 0)
		return n;
	args[0] = array_of(cols[0], NULL, m, TIMESTAMPTZOID);
	args[1] = array_of(cols[1], id_nulls, m, INT8OID);
	args[2] = array_of(cols[2], NULL, m, TEXTOID);
	args[3] = array_of(cols[3], NULL, m, NAMEOID);
	args[4] = array_of(cols[4], NULL, m, NAMEOID);
	args[5] = array_of(cols[5], NULL, m, TEXTOID);
	args[6] = array_of(cols[6], addr_nulls, m, INETOID);
	execute(psprintf("INSERT INTO %s.audit (at, action, key_id, key_owner_role, actor_session_user,"
					 " actor_current_user, detail, client_addr, application_name)"
					 " SELECT f.at, 'verify', f.id, k.owner_role, f.su, f.cu,"
					 " pg_catalog.jsonb_build_object('code', f.code), f.addr, f.app"
					 " FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3),"
					 " pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6),"
					 " pg_catalog.unnest($7)) WITH ORDINALITY AS f(at, id, code, su, cu, app, addr, n)"
					 " LEFT JOIN %s.keys k ON k.id OPERATOR(pg_catalog.=) f.id ORDER BY f.n",
					 nsp, nsp),
			7, types, args);
	return n;
}

/*
 * flush: one transaction writing what was recorded.  Raises on failure
 * (the caller logs and backs off; the usage taken is then lost, at most
 * one flush interval's worth).
 */
static void
flush(void)
{
	static uint64 dropped_reported = 0;
	ApikeyServerStats stats;
	const char *nsp;
	Oid			keys;
	int			rounds;

	/* say how many outcomes a full queue dropped since the last time */
	apikey_tracker_server_stats(&stats);
	if (stats.dropped > dropped_reported)
	{
		ereport(LOG,
				(errmsg("apikey: %llu verification outcomes were not logged: the queue was full",
						(unsigned long long) (stats.dropped - dropped_reported)),
				 errhint("Raise apikey.queue_size, or lower apikey.flush_interval.")));
		dropped_reported = stats.dropped;
	}

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "apikey worker: SPI_connect failed");
	pgstat_report_activity(STATE_RUNNING, "apikey: writing usage and the verification log");
	nsp = schema(&keys);
	if (nsp == NULL)
	{
		/*
		 * apikey is not installed in this database: nothing can be written
		 * here, but shared memory must not fill up.  Collecting with no
		 * table recycles every idle entry (and this database's, all
		 * stale), and the queue is drained: what it held is lost, and
		 * said so.
		 */
		ApikeyUsage *u;
		ApikeyLogEntry *q = palloc(sizeof(ApikeyLogEntry) * FLUSH_BATCH);
		int			n;
		uint64		discarded = 0;

		(void) apikey_tracker_collect_usage(MyDatabaseId, InvalidOid, InvalidOid, &u, NULL, NULL,
											NULL, NULL);
		for (rounds = apikey_queue_size / FLUSH_BATCH + 1; rounds > 0; rounds--)
		{
			if ((n = apikey_tracker_take_log(q, FLUSH_BATCH)) == 0)
				break;
			discarded += n;
		}
		if (discarded > 0)
			ereport(LOG,
					(errmsg("apikey: %llu verification outcomes were not logged: extension \"apikey\" is not installed in database \"%s\"",
							(unsigned long long) discarded, get_database_name(MyDatabaseId)),
					 errhint("Set apikey.database to the database where apikey is installed.")));
	}
	else
	{
		/*
		 * The log in batches until a short one, and never more than the
		 * queue holds: under a steady load of logged outcomes it never
		 * empties, and one transaction must not run forever.
		 */
		ApikeyUsage *u;
		int64	   *spent;
		int			nspent;
		Oid			owners = get_relname_relid("owners", get_rel_namespace(keys));
		ApikeyHourly *hourly;
		int			nhourly;
		int			total = apikey_tracker_collect_usage(MyDatabaseId, keys, owners,
														 &u, &spent, &nspent, &hourly, &nhourly);
		ApikeyUsage *ou = palloc(sizeof(ApikeyUsage) * Max(total, 1));
		int			nowners = 0;
		int			nkeys = 0;
		int			i;

		/* owners' balances apart: they go to their own table */
		for (i = 0; i < total; i++)
		{
			if (u[i].is_owner)
				ou[nowners++] = u[i];
			else
				u[nkeys++] = u[i];
		}
		flush_usage(nsp, keys, u, nkeys);
		flush_owner_balances(nsp, ou, nowners);
		flush_hourly(nsp, get_relname_relid("usage_hourly", get_rel_namespace(keys)), hourly, nhourly);
		reclaim_missing(nsp, keys, spent, nspent);
		for (rounds = apikey_queue_size / FLUSH_BATCH + 1; rounds > 0; rounds--)
		{
			CHECK_FOR_INTERRUPTS();
			if (flush_log(nsp) < FLUSH_BATCH)
				break;
		}
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	/* what it wrote, for autovacuum and pg_stat_user_tables */
	pgstat_report_stat(true);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * apikey_worker_main: the worker's entry point.
 */
void
apikey_worker_main(Datum arg)
{
	MemoryContext cxt;
	int			backoff_ms = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(worker_database, NULL, 0);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("application_name", "apikey worker", PGC_USERSET, PGC_S_OVERRIDE);
	elog(LOG, "apikey worker started in database \"%s\"", worker_database);

	cxt = AllocSetContextCreate(TopMemoryContext, "apikey worker",
								ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		bool		stopping;

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 flush_interval_ms + backoff_ms,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		stopping = ShutdownRequestPending;

		/* quiet when idle: no transaction while nothing was recorded */
		if (apikey_tracker_take_dirty())
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			PG_TRY();
			{
				flush();
				backoff_ms = 0;
			}
			PG_CATCH();
			{
				MemoryContextSwitchTo(cxt);
				EmitErrorReport();
				FlushErrorState();
				AbortCurrentTransaction();
				backoff_ms = Min(Max(backoff_ms * 2, 1000), MAX_BACKOFF_MS);
				ereport(LOG,
						(errmsg("apikey worker: flush failed, next flush in %d ms",
								flush_interval_ms + backoff_ms),
						 errdetail("The uses this flush had not yet written and the verification outcomes it had collected are lost (rows it had already updated in place keep their counts).")));
				/* try again next round, even if nothing new is recorded */
				if (!stopping)
					apikey_tracker_mark_dirty();
			}
			PG_END_TRY();
			MemoryContextSwitchTo(old);
			MemoryContextReset(cxt);
		}
		if (stopping)
			break;
	}
	elog(LOG, "apikey worker stopped");
	proc_exit(0);
}
