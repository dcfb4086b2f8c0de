/*-------------------------------------------------------------------------
 *
 * create_rotate.c
 *	  The SQL functions apikey_create and apikey_rotate: validate the
 *	  arguments (validate.c), mint a key (secret.c), and write apikey.keys
 *	  through SPI; and apikey.default_prefix, the prefix of keys created
 *	  without one (USERSET: it only chooses a visible label).
 *
 *	  Both run as the caller (so owner_role and created_by are the caller's
 *	  current_user) and switch to the owner of apikey.keys only around their
 *	  own statements, the way PostgreSQL's RI triggers do; the switch is
 *	  undone by (sub)transaction abort if a statement fails.  The statements
 *	  are fully schema-qualified and the functions pin search_path.  The raw
 *	  key never reaches SPI: only its hash and hint are written.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "utils/guc.h"

#include "acting_role.h"
#include "catalog.h"
#include "common.h"
#include "create_rotate.h"
#include "dbrole.h"
#include "plan_sql.h"
#include "keyformat.h"
#include "secret.h"
#include "validate.h"
#define MAX_GRACE_DAYS		7

static char *default_prefix = NULL;

/*
 * check_default_prefix: GUC check hook; the prefix must be one we can mint.
 */
static bool
check_default_prefix(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || !kf_prefix_valid(*newval, strlen(*newval)))
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		/* the default message quotes the value: not if it could be a key */
		if (*newval != NULL && strlen(*newval) > KF_PREFIX_MAX)
			GUC_check_errmsg("invalid value for parameter \"%s\"",
							 "apikey.default_prefix");
		GUC_check_errdetail(APIKEY_PREFIX_RULE);
		return false;
	}
	return true;
}

/* apikey_create_rotate_init: define apikey.default_prefix */
void
apikey_create_rotate_init(void)
{
	DefineCustomStringVariable("apikey.default_prefix",
							   "Prefix of keys created without an explicit prefix.",
							   NULL,
							   &default_prefix,
							   "ak",
							   PGC_USERSET,
							   0,
							   check_default_prefix,
							   NULL,
							   NULL);
}

APIKEY_SQL_FUNCTION(apikey_create);
APIKEY_SQL_FUNCTION(apikey_rotate);

/* A freshly minted key and what is stored of it. */
typedef struct Minted
{
	text	   *key;			/* returned to the caller, once */
	bytea	   *hash;
	text	   *hint;
} Minted;

/*
 * mint: a new key for prefix.  The stack copy of the key is wiped before
 * returning; the only copy left is the text datum handed to the caller.
 */
static Minted
mint(const char *prefix)
{
	Minted		m;
	char		buf[KF_KEY_BUFSZ];
	char		hint[KF_HINT_BUFSZ];
	size_t		len;

	apikey_secret_mint(prefix, buf, sizeof(buf));
	len = strlen(buf);

	m.hash = palloc(VARHDRSZ + APIKEY_HASH_LEN);
	SET_VARSIZE(m.hash, VARHDRSZ + APIKEY_HASH_LEN);
	apikey_secret_hash(buf, len, (uint8 *) VARDATA(m.hash));
	if (kf_hint(buf, len, hint, sizeof(hint)) != KF_OK)
	{
		kf_wipe(buf, sizeof(buf));
		elog(ERROR, "could not make a hint for a minted key");
	}
	m.hint = cstring_to_text(hint);
	m.key = cstring_to_text_with_len(buf, len);
	kf_wipe(buf, sizeof(buf));
	return m;
}

static void
validate_rate_limit(FunctionCallInfo fcinfo)
{
	bool		has_limit = !PG_ARGISNULL(7);
	bool		has_window = !PG_ARGISNULL(8);
	Interval	zero = {0, 0, 0};

	if (!has_limit && !has_window)
		return;
	if (has_limit != has_window)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rate_limit and rate_window must be given together")));
	if (PG_GETARG_INT32(7) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rate_limit must be positive")));
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, PG_GETARG_DATUM(8),
										  IntervalPGetDatum(&zero))) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rate_window must be positive")));

	apikey_require_tracker_for_limits();
}

/*
 * refuse_group_role: a key owned by the role apikey_manager itself would be
 * shared by every manager (any of them can SET ROLE to it), so keys are
 * owned by the roles that are members, never by the group.
 */
static void
refuse_group_role(Oid caller)
{
	if (caller == get_role_oid("apikey_manager", true))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("keys cannot be owned by role \"apikey_manager\""),
				 errhint("Create and manage keys as a role that is a member of apikey_manager, not as apikey_manager itself.")));
}

/*
 * apikey_create(name, scopes, expires_at, prefix, owner, resources, meta,
 *				 rate_limit, rate_window, allowed_cidrs, db_role, credits,
 *				 refill_amount, refill_interval, refill_day)
 *	returns table (key_id bigint, key text)
 *
 * 1.0's SQL declaration has no db_role (10 arguments); the same C function
 * serves both until ALTER EXTENSION apikey UPDATE.
 */
#define CREATE_NARGS 19

Datum
apikey_create(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *prefix;
	Oid			caller = GetUserId();
	Datum		caller_name;
	const ApikeyCatalog *cat;
	Minted		m;
	bool		has_db_role = PG_NARGS() > 10;
	bool		has_plan = PG_NARGS() > 11;
	Oid			argtypes[CREATE_NARGS] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, NAMEOID,
		TEXTARRAYOID, TEXTARRAYOID, CIDRARRAYOID, JSONBOID, TIMESTAMPTZOID,
	INT4OID, INTERVALOID, NAMEOID, BYTEAOID, NAMEOID, INT8OID, INT8OID, TEXTOID, INT4OID};
	Datum		args[CREATE_NARGS];
	char		argnulls[CREATE_NARGS];
	ApikeyActorSwitch saved;
	int64		key_id;
	bool		isnull;
	int			ret;
	Datum		outvals[2];
	bool		outnulls[2] = {false, false};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key name must not be null")));
	apikey_validate_name(PG_GETARG_TEXT_PP(0));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("scopes must not be null"),
				 errhint("Use '{}' for a key that carries no scopes.")));
	apikey_validate_scopes(PG_GETARG_ARRAYTYPE_P(1));
	if (!PG_ARGISNULL(2) &&
		PG_GETARG_TIMESTAMPTZ(2) <= GetCurrentTransactionStartTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expires_at must be in the future")));
	prefix = PG_ARGISNULL(3) ? default_prefix : text_to_cstring(PG_GETARG_TEXT_PP(3));
	apikey_validate_prefix(prefix);
	if (!PG_ARGISNULL(4) && !apikey_owner_ok(PG_GETARG_TEXT_PP(4)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("owner is too long"),
				 errdetail("An owner id has at most %d characters.", OWNER_MAX_CHARS)));
	if (!PG_ARGISNULL(5))
		apikey_validate_resources(PG_GETARG_ARRAYTYPE_P(5));
	if (PG_ARGISNULL(6))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("meta must not be null"),
				 errhint("Use '{}' for no metadata.")));
	if (!JB_ROOT_IS_OBJECT(PG_GETARG_JSONB_P(6)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("meta must be a JSON object")));
	if (VARSIZE_ANY(PG_GETARG_JSONB_P(6)) > META_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("meta is too large"),
				 errdetail("A key's meta has at most %d bytes.", META_MAX_BYTES)));
	validate_rate_limit(fcinfo);
	if (!PG_ARGISNULL(9))
		apikey_validate_cidrs(PG_GETARG_ARRAYTYPE_P(9));

	if (has_plan)
	{
		/* a refill without credits starts full: credits = refill_amount */
		if (PG_ARGISNULL(11) && !PG_ARGISNULL(12))
		{
			fcinfo->args[11].value = fcinfo->args[12].value;
			fcinfo->args[11].isnull = false;
		}
		apikey_plan_check(fcinfo, 11, caller);
	}

	refuse_group_role(caller);
	if (has_db_role && !PG_ARGISNULL(10))
		apikey_db_role_validate(NameStr(*PG_GETARG_NAME(10)), caller);

	InitMaterializedSRF(fcinfo, 0);
	caller_name = apikey_role_name(caller);
	m = mint(prefix);

	/* name, prefix, hint, owner, owner_role, scopes, resources, ... */
	memset(argnulls, ' ', sizeof(argnulls));
	args[0] = PG_GETARG_DATUM(0);
	args[1] = CStringGetTextDatum(prefix);
	args[2] = PointerGetDatum(m.hint);
	args[3] = PG_GETARG_DATUM(4);
	argnulls[3] = PG_ARGISNULL(4) ? 'n' : ' ';
	args[4] = caller_name;
	args[5] = PG_GETARG_DATUM(1);
	args[6] = PG_GETARG_DATUM(5);
	argnulls[6] = PG_ARGISNULL(5) ? 'n' : ' ';
	args[7] = PG_GETARG_DATUM(9);
	argnulls[7] = PG_ARGISNULL(9) ? 'n' : ' ';
	args[8] = PG_GETARG_DATUM(6);
	args[9] = PG_GETARG_DATUM(2);
	argnulls[9] = PG_ARGISNULL(2) ? 'n' : ' ';
	args[10] = PG_GETARG_DATUM(7);
	argnulls[10] = PG_ARGISNULL(7) ? 'n' : ' ';
	args[11] = PG_GETARG_DATUM(8);
	argnulls[11] = PG_ARGISNULL(8) ? 'n' : ' ';
	args[12] = caller_name;
	args[13] = PointerGetDatum(m.hash);
	if (has_db_role)
	{
		args[14] = PG_GETARG_DATUM(10);
		argnulls[14] = PG_ARGISNULL(10) ? 'n' : ' ';
	}
	if (has_plan)
	{
		int			i;

		for (i = 0; i < 4; i++)
		{
			args[15 + i] = PG_GETARG_DATUM(11 + i);
			argnulls[15 + i] = PG_ARGISNULL(11 + i) ? 'n' : ' ';
		}
	}

	cat = apikey_catalog_lock(RowExclusiveLock);
	saved = apikey_actor_begin(cat->keys_owner);
	ret = apikey_actor_execute(has_plan ?
							   "INSERT INTO apikey.keys (name, prefix, hint, owner, owner_role, scopes,"
							   " resources, allowed_cidrs, meta, expires_at, rate_limit, rate_window,"
							   " created_by, secret_hash, db_role, credits, refill_amount, refill_interval,"
							   " refill_day)"
							   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,"
							   " $16, $17, $18, $19)"
							   " RETURNING id" :
							   has_db_role ?
							   "INSERT INTO apikey.keys (name, prefix, hint, owner, owner_role, scopes,"
							   " resources, allowed_cidrs, meta, expires_at, rate_limit, rate_window,"
							   " created_by, secret_hash, db_role)"
							   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
							   " RETURNING id" :
							   "INSERT INTO apikey.keys (name, prefix, hint, owner, owner_role, scopes,"
							   " resources, allowed_cidrs, meta, expires_at, rate_limit, rate_window,"
							   " created_by, secret_hash)"
							   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
							   " RETURNING id",
							   has_plan ? 19 : has_db_role ? 15 : 14, argtypes, args, argnulls, 1);
	if (ret != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "could not insert into apikey.keys: %s", SPI_result_code_string(ret));
	key_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 1, &isnull));
	apikey_actor_end(saved);

	outvals[0] = Int64GetDatum(key_id);
	outvals[1] = PointerGetDatum(m.key);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, outvals, outnulls);
	return (Datum) 0;
}

/*
 * apikey_rotate(key_id bigint, grace interval) returns text
 */
Datum
apikey_rotate(PG_FUNCTION_ARGS)
{
	Oid			caller = GetUserId();
	int64		key_id;
	Interval   *grace;
	Interval	max_grace = {0, MAX_GRACE_DAYS, 0};
	TimestampTz now;
	TimestampTz until;
	TimestampTz max_until;
	bool		admin;
	bool		keep_old;
	const ApikeyCatalog *cat;
	ApikeyActorSwitch saved;
	Oid			selargtypes[3] = {INT8OID, NAMEOID, BOOLOID};
	Datum		selargs[3];
	Oid			updargtypes[5] = {INT8OID, BYTEAOID, TEXTOID, BOOLOID, TIMESTAMPTZOID};
	Datum		updargs[5];
	char	   *prefix;
	Minted		m;
	int			ret;
	MemoryContext fncxt = CurrentMemoryContext;
	MemoryContext oldcxt;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key_id must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("grace must not be null"),
				 errhint("Use '0' to invalidate the old key at commit.")));
	key_id = PG_GETARG_INT64(0);
	grace = PG_GETARG_INTERVAL_P(1);
	admin = apikey_is_admin(caller);
	if (!admin)
		refuse_group_role(caller);

	/*
	 * Bound the end of the grace period, not the interval: interval
	 * comparison counts a month as 30 days, so '120000 mons -3599993 days'
	 * would compare as a week and yet end in another century.  Either
	 * "7 days" (calendar) or 168 hours (elapsed) is accepted across DST.
	 */
	now = GetCurrentTransactionStartTimestamp();
	until = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
													TimestampTzGetDatum(now),
													IntervalPGetDatum(grace)));
	max_until = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
														TimestampTzGetDatum(now),
														IntervalPGetDatum(&max_grace)));
	max_until = Max(max_until, now + (int64) MAX_GRACE_DAYS * USECS_PER_DAY);
	if (until < now || until > max_until)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("grace must be between 0 and %d days", MAX_GRACE_DAYS),
				 errdetail("The old key would stop working at now() + grace.")));
	keep_old = until > now;

	cat = apikey_catalog_lock(RowExclusiveLock);
	saved = apikey_actor_begin(cat->keys_owner);

	/*
	 * Lock the row: a concurrent rotation waits here, then sees ours.  Only
	 * rows the caller may manage are locked (or waited for), so someone
	 * else's key behaves exactly like a missing one, even when it is busy.
	 */
	selargs[0] = Int64GetDatum(key_id);
	selargs[1] = apikey_role_name(caller);
	selargs[2] = BoolGetDatum(admin);
	ret = apikey_actor_execute("SELECT prefix FROM apikey.keys"
							   " WHERE id OPERATOR(pg_catalog.=) $1"
							   " AND ($3 OR owner_role OPERATOR(pg_catalog.=) $2)"
							   " FOR UPDATE",
							   3, selargtypes, selargs, NULL, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not lock api key: %s", SPI_result_code_string(ret));
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("api key %lld does not exist", (long long) key_id)));
	prefix = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

	/* the key must outlive SPI_finish: mint it in the caller's context */
	oldcxt = MemoryContextSwitchTo(fncxt);
	m = mint(prefix);
	MemoryContextSwitchTo(oldcxt);
	updargs[0] = Int64GetDatum(key_id);
	updargs[1] = PointerGetDatum(m.hash);
	updargs[2] = PointerGetDatum(m.hint);
	updargs[3] = BoolGetDatum(keep_old);
	updargs[4] = TimestampTzGetDatum(until);
	ret = apikey_actor_execute("UPDATE apikey.keys SET"
							   " grace_secret_hash = CASE WHEN $4 THEN secret_hash END,"
							   " grace_until = CASE WHEN $4 THEN $5 END,"
							   " secret_hash = $2, hint = $3, rotated_at = pg_catalog.now()"
							   " WHERE id OPERATOR(pg_catalog.=) $1",
							   5, updargtypes, updargs, NULL, 0);
	if (ret != SPI_OK_UPDATE || SPI_processed != 1)
		elog(ERROR, "could not rotate api key: %s", SPI_result_code_string(ret));
	apikey_actor_end(saved);

	PG_RETURN_TEXT_P(m.key);
}
