/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  The SQL functions behind the view apikey.stats: apikey.key_stats()
 *	  (the live figures of this database's tracked keys, as many as the
 *	  caller may see), and for administrators apikey.server_stats() (the
 *	  server's), apikey.cache_stats() (the shared verified-key cache's)
 *	  and apikey.backend_stats() (each backend's cache lookups).  They
 *	  read shared memory through tracker.h and keycache.h and, for what a
 *	  manager may see, run one query as the caller (SPI).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "acting_role.h"
#include "catalog.h"
#include "codes.h"
#include "common.h"
#include "keycache.h"
#include "tracker.h"

/*
 * apikey.key_stats() returns setof (key_id, unflushed_uses, last_used_at,
 * rate_limit, bucket_tokens): the live figures of this database's tracked
 * keys: all of them for superusers and apikey_admin, otherwise those of
 * the keys the caller can see in apikey.keys (row-level security: a
 * manager's own), whether it is called directly or through apikey.stats.
 */
APIKEY_SQL_FUNCTION(apikey_key_stats);
APIKEY_SQL_FUNCTION(apikey_key_balances);
APIKEY_SQL_FUNCTION(apikey_owner_stats);

typedef struct KeyStatsOut
{
	ReturnSetInfo *rsinfo;
	int64	   *visible;		/* sorted ids the caller may see; NULL: all */
	int			nvisible;
	bool		balances;		/* apikey.key_balances(): metered keys' balances */
	bool		owners;			/* apikey.owner_stats(): owners' entries */
} KeyStatsOut;

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : x > y;
}

/*
 * put_key_stats: one key's row of apikey.key_stats(), or of
 * apikey.key_balances() (1.2: key_id, credits_remaining; metered keys
 * whose balance is in shared memory only).
 */
static void
put_key_stats(void *arg, const ApikeyKeyStats *k)
{
	KeyStatsOut *out = (KeyStatsOut *) arg;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	if (out->visible != NULL &&
		bsearch(&k->key_id, out->visible, out->nvisible, sizeof(int64), cmp_int64) == NULL)
		return;
	if (out->owners)
	{
		values[0] = Int64GetDatum(k->key_id);
		values[1] = Int32GetDatum(k->rate_limit);
		nulls[1] = k->rate_limit == 0;
		values[2] = Float8GetDatum(k->tokens);
		nulls[2] = k->rate_limit == 0;
		values[3] = Int64GetDatum(k->credits_remaining);
		nulls[3] = !k->has_balance;
		tuplestore_putvalues(out->rsinfo->setResult, out->rsinfo->setDesc, values, nulls);
		return;
	}
	if (out->balances)
	{
		if (!k->has_balance)
			return;
		values[0] = Int64GetDatum(k->key_id);
		values[1] = Int64GetDatum(k->credits_remaining);
		tuplestore_putvalues(out->rsinfo->setResult, out->rsinfo->setDesc, values, nulls);
		return;
	}

	values[0] = Int64GetDatum(k->key_id);
	values[1] = Int64GetDatum(k->pending_uses);
	values[2] = TimestampTzGetDatum(k->last_used_at);
	nulls[2] = k->last_used_at == 0;
	values[3] = Int32GetDatum(k->rate_limit);
	nulls[3] = k->rate_limit == 0;
	values[4] = Float8GetDatum(k->tokens);
	nulls[4] = k->rate_limit == 0;
	tuplestore_putvalues(out->rsinfo->setResult, out->rsinfo->setDesc, values, nulls);
}

/*
 * visible_keys: the ids of the rows the caller can read in apikey.keys (or
 * apikey.owners), sorted (a query as the caller: row-level security
 * decides).
 */
static int64 *
visible_keys(const char *table, int *n)
{
	int64	   *ids;
	uint64		i;
	Oid			nsp = apikey_extension_schema();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(psprintf("SELECT id FROM %s.%s ORDER BY id",
							 quote_identifier(get_namespace_name(nsp)), table), true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the visible keys");
	ids = MemoryContextAlloc(TopTransactionContext, sizeof(int64) * (SPI_processed + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	*n = (int) SPI_processed;
	SPI_finish();
	return ids;
}

/*
 * key_stats: the rows of apikey.key_stats(), apikey.key_balances() or
 * apikey.owner_stats()
 */
static Datum
key_stats(FunctionCallInfo fcinfo, bool balances, bool owners)
{
	KeyStatsOut out;
	const ApikeyCatalog *cat;

	InitMaterializedSRF(fcinfo, 0);
	if (!apikey_tracker_active())
		return (Datum) 0;
	cat = apikey_catalog_lock(AccessShareLock);
	if (owners && !OidIsValid(cat->owners_relid))
		return (Datum) 0;
	out.balances = balances;
	out.owners = owners;
	out.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	out.visible = NULL;
	out.nvisible = 0;
	if (!apikey_is_admin(GetUserId()))
		out.visible = visible_keys(owners ? "owners" : "keys", &out.nvisible);
	apikey_tracker_key_stats(MyDatabaseId, owners ? cat->owners_relid : cat->keys_relid,
							 put_key_stats, &out);
	return (Datum) 0;
}

Datum
apikey_key_stats(PG_FUNCTION_ARGS)
{
	return key_stats(fcinfo, false, false);
}

Datum
apikey_key_balances(PG_FUNCTION_ARGS)
{
	return key_stats(fcinfo, true, false);
}

Datum
apikey_owner_stats(PG_FUNCTION_ARGS)
{
	return key_stats(fcinfo, false, true);
}

/*
 * admin_result: start a set-returning function's result, and return where
 * its rows go if the caller may see a server's figures (superusers and
 * members of apikey_admin) and, with need_tracker, shared memory is there;
 * NULL (no rows) otherwise.
 */
static ReturnSetInfo *
admin_result(FunctionCallInfo fcinfo, bool need_tracker)
{
	InitMaterializedSRF(fcinfo, 0);
	if ((need_tracker && !apikey_tracker_active()) || !apikey_is_admin(GetUserId()))
		return NULL;
	return (ReturnSetInfo *) fcinfo->resultinfo;
}

/*
 * apikey.server_stats() returns setof (verifications jsonb, queue_depth,
 * queue_size, dropped, untracked, started_at, cache_hits, cache_misses):
 * this server's figures, one
 * row, for superusers and members of apikey_admin only (none otherwise,
 * and none without shared memory).
 */
APIKEY_SQL_FUNCTION(apikey_server_stats);

Datum
apikey_server_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	ApikeyServerStats s;
	StringInfoData codes;
	Datum		values[8];
	bool		nulls[8] = {0};
	int			i;

	if ((rsinfo = admin_result(fcinfo, true)) == NULL)
		return (Datum) 0;
	apikey_tracker_server_stats(&s);
	initStringInfo(&codes);
	appendStringInfoChar(&codes, '{');
	for (i = 0; i < APIKEY_NUM_CODES; i++)
		appendStringInfo(&codes, "%s\"%s\": " UINT64_FORMAT, i > 0 ? ", " : "",
						 apikey_code_name((ApikeyCode) i), s.verifications[i]);
	appendStringInfoChar(&codes, '}');
	values[0] = DirectFunctionCall1(jsonb_in, CStringGetDatum(codes.data));
	values[1] = Int32GetDatum(s.queue_depth);
	values[2] = Int32GetDatum(s.queue_size);
	values[3] = Int64GetDatum((int64) s.dropped);
	values[4] = Int64GetDatum((int64) s.untracked);
	values[5] = TimestampTzGetDatum(s.started_at);
	values[6] = Int64GetDatum((int64) s.cache_hits);
	values[7] = Int64GetDatum((int64) s.cache_misses);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/*
 * apikey.backend_stats() returns setof (pid, cache_hits, cache_misses):
 * each running backend's lookups in the verified-key cache, for
 * superusers and members of apikey_admin (none otherwise, and none
 * without shared memory).
 */
APIKEY_SQL_FUNCTION(apikey_backend_stats);

Datum
apikey_backend_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	ApikeyBackendStats *b;
	int			n;
	int			i;

	if ((rsinfo = admin_result(fcinfo, true)) == NULL)
		return (Datum) 0;
	n = apikey_tracker_backend_stats(&b);
	for (i = 0; i < n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {0};

		values[0] = Int32GetDatum(b[i].pid);
		values[1] = Int64GetDatum((int64) b[i].cache_hits);
		values[2] = Int64GetDatum((int64) b[i].cache_misses);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * apikey.cache_stats() returns setof (keys, capacity, bytes,
 * variable_bytes): the shared verified-key cache's live keys, how many it
 * can hold, the shared memory it takes and the part of it holding the
 * keys' variable fields now; one row, for superusers and members of
 * apikey_admin (none otherwise, and none without the shared cache).
 */
APIKEY_SQL_FUNCTION(apikey_shared_cache_stats);

Datum
apikey_shared_cache_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	int64		keys;
	int64		capacity;
	int64		bytes;
	int64		variable_bytes;
	Datum		values[4];
	bool		nulls[4] = {0};

	if ((rsinfo = admin_result(fcinfo, false)) == NULL)
		return (Datum) 0;
	apikey_keycache_stats(&keys, &capacity, &bytes, &variable_bytes);
	if (capacity == 0)
		return (Datum) 0;
	values[0] = Int64GetDatum(keys);
	values[1] = Int64GetDatum(capacity);
	values[2] = Int64GetDatum(bytes);
	values[3] = Int64GetDatum(variable_bytes);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
