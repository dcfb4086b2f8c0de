/*-------------------------------------------------------------------------
 *
 * verify_sql.c
 *	  The SQL function apikey_verify: unpack the arguments, run the shared
 *	  check (verify_check.c) and build an apikey.verification row (12 columns,
 *	  or 1.0's 11 until ALTER EXTENSION apikey UPDATE).  The row type's
 *	  descriptor is kept per backend while the type stays the same.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"
#include "utils/timestamp.h"

#include "common.h"
#include "keyformat.h"
#include "verify.h"

/*
 * 1.2 added credits_remaining and missing_scopes, 1.1 grace_until: a
 * database not yet updated has the first 12 or 11
 */
#define VERIFICATION_NATTS 14
#define VERIFICATION_NATTS_1_1 12
#define VERIFICATION_NATTS_1_0 11

APIKEY_SQL_FUNCTION(apikey_verify);

/*
 * result_desc: apikey.verification's descriptor, kept per backend rather
 * than in fn_extra: a prepared statement calling apikey_verify in FROM gets
 * a new FmgrInfo at every execution, and looking the row type up each time
 * was a syscache search and a descriptor copy per request.  The typcache's
 * tupDesc_identifier changes whenever the type's descriptor does (ALTER
 * EXTENSION apikey UPDATE adds a column; DROP and CREATE EXTENSION make a
 * new type), and the copy is then made again.
 */
static TupleDesc
result_desc(FunctionCallInfo fcinfo)
{
	static TupleDesc desc = NULL;
	static Oid	desc_type = InvalidOid;
	static uint64 desc_ident = 0;
	Oid			rettype = get_fn_expr_rettype(fcinfo->flinfo);
	TypeCacheEntry *tc;

	if (!OidIsValid(rettype))
		rettype = get_func_rettype(fcinfo->flinfo->fn_oid);
	tc = lookup_type_cache(rettype, TYPECACHE_TUPDESC);
	if (tc->tupDesc == NULL)
		elog(ERROR, "return type must be a row type");
	if (desc == NULL || desc_type != rettype || desc_ident != tc->tupDesc_identifier)
	{
		MemoryContext old;
		TupleDesc	copy;

		static const Oid types[VERIFICATION_NATTS] = {
			BOOLOID, TEXTOID, INT4OID, INT8OID, TEXTOID, TEXTOID, TEXTARRAYOID,
			TEXTARRAYOID, JSONBOID, TIMESTAMPTZOID, INTERVALOID, TIMESTAMPTZOID,
			INT8OID, TEXTARRAYOID
		};
		int			i;

		if (tc->tupDesc->natts != VERIFICATION_NATTS &&
			tc->tupDesc->natts != VERIFICATION_NATTS_1_1 &&
			tc->tupDesc->natts != VERIFICATION_NATTS_1_0)
			elog(ERROR, "apikey.verification has %d columns, expected %d",
				 tc->tupDesc->natts, VERIFICATION_NATTS);
		/* the values built below must match the columns' types exactly */
		for (i = 0; i < tc->tupDesc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(tc->tupDesc, i);

			if (att->attisdropped || att->atttypid != types[i])
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("type apikey.verification has been altered"),
						 errdetail("Column %d is not the %s apikey_verify returns.",
								   i + 1, format_type_be(types[i])),
						 errhint("Restore the type as the extension created it.")));
		}
		old = MemoryContextSwitchTo(TopMemoryContext);
		copy = CreateTupleDescCopy(tc->tupDesc);
		MemoryContextSwitchTo(old);
		if (desc != NULL)
			FreeTupleDesc(desc);
		desc = copy;
		desc_type = rettype;
		desc_ident = tc->tupDesc_identifier;
	}
	return desc;
}

/*
 * apikey_verify(key text, required_scopes text[], resource text,
 *				 client_addr inet [, cost integer]) returns apikey.verification
 *
 * The four-argument form costs 1; the five-argument one (1.2) takes cost
 * (0 to PLAN_MAX_COST) from a metered balance.
 */
Datum
apikey_verify(PG_FUNCTION_ARGS)
{
	TupleDesc	desc = result_desc(fcinfo);
	ApikeyRequest req;
	ApikeyResult res;
	Datum		values[VERIFICATION_NATTS];
	bool		nulls[VERIFICATION_NATTS];
	HeapTuple	tuple;

	memset(&req, 0, sizeof(req));
	/* a NULL here is a caller's bug: fail loudly, never skip the check */
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("required_scopes must not be null"),
				 errhint("Use '{}' to require no scope.")));
	apikey_request_set_scopes(&req, PG_GETARG_ARRAYTYPE_P(1));
	req.cost = 1;
	if (PG_NARGS() > 4)
	{
		if (PG_ARGISNULL(4))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("cost must not be null"),
					 errhint("Use 0 to check a key without taking credits.")));
		req.cost = PG_GETARG_INT32(4);
		if (req.cost < 0 || req.cost > PLAN_MAX_COST)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cost must be between 0 and %d", PLAN_MAX_COST)));
	}
	if (!PG_ARGISNULL(2))
	{
		text	   *r = PG_GETARG_TEXT_PP(2);

		req.resource = VARDATA_ANY(r);
		req.resource_len = VARSIZE_ANY_EXHDR(r);
	}
	req.client_isnull = PG_ARGISNULL(3);
	if (!req.client_isnull)
		req.client_addr = PG_GETARG_DATUM(3);

	if (PG_ARGISNULL(0) ||
		toast_raw_datum_size(PG_GETARG_DATUM(0)) - VARHDRSZ > KF_KEY_MAX_LEN)
	{
		/* NULL, or too long: MALFORMED without even detoasting it */
		apikey_check_key(NULL, KF_KEY_MAX_LEN + 1, &req, &res);
	}
	else
	{
		text	   *key = PG_GETARG_TEXT_PP(0);

		apikey_check_key(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), &req, &res);
	}

	memset(nulls, true, sizeof(nulls));
	values[0] = BoolGetDatum(res.code == APIKEY_VALID);
	nulls[0] = false;
	values[1] = apikey_code_text(res.code);
	nulls[1] = false;
	values[2] = Int32GetDatum(apikey_code_http_status(res.code));
	nulls[2] = false;
	if (res.has_identity)
	{
		values[3] = Int64GetDatum(res.key.key_id);
		nulls[3] = false;
		values[4] = res.key.name;
		nulls[4] = false;
		values[5] = res.key.owner;
		nulls[5] = res.key.owner_isnull;
		values[6] = res.key.scopes;
		nulls[6] = false;
		values[7] = res.key.resources;
		nulls[7] = res.key.resources_isnull;
		values[8] = res.key.meta;
		nulls[8] = false;
		values[9] = TimestampTzGetDatum(res.key.expires_at);
		nulls[9] = res.key.expires_isnull;
	}
	values[10] = res.retry_after;
	nulls[10] = res.retry_isnull;
	values[11] = TimestampTzGetDatum(res.key.grace_until);
	nulls[11] = res.key.grace_isnull;
	values[12] = Int64GetDatum(res.credits_remaining);
	nulls[12] = !res.has_remaining;
	if (res.code == APIKEY_INSUFFICIENT_SCOPE)
	{
		ArrayType  *missing = apikey_missing_scopes(res.key.scopes, &req);

		values[13] = PointerGetDatum(missing);
		nulls[13] = missing == NULL;
	}

	/* forming the tuple copies the identity out of the key's row */
	tuple = heap_form_tuple(desc, values, nulls);
	apikey_check_done(&res);
	PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}
