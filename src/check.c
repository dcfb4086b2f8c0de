/*-------------------------------------------------------------------------
 *
 * check.c
 *	  The "check a key" path, shared by apikey_verify and the PostgREST
 *	  hook.  In order: parse and checksum (no table touched for a malformed
 *	  key), SHA-256, one probe of the index on the hash's 8-byte prefix
 *	  (a second probe, of the grace index, only when the first misses),
 *	  then DISABLED, EXPIRED, INSUFFICIENT_SCOPE, IP_DENIED, RESOURCE_DENIED,
 *	  RATE_LIMITED.
 *
 *	  No SPI, no catalog lookup (catalog.c caches the OIDs), no writes: it
 *	  works in READ ONLY transactions and on hot standbys.  Rate limits and
 *	  usage are counted in shared memory (tracker.c), and every outcome is
 *	  counted there and, per apikey.log_verifications, queued for the log.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inet.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "apikey.h"
#include "scope.h"
#include "tracker.h"

static const struct
{
	const char *name;
	int			http_status;
}			codes[APIKEY_NUM_CODES] =
{
	[APIKEY_VALID] = {"VALID", 200},
	[APIKEY_MALFORMED] = {"MALFORMED", 401},
	[APIKEY_NOT_FOUND] = {"NOT_FOUND", 401},
	[APIKEY_DISABLED] = {"DISABLED", 401},
	[APIKEY_EXPIRED] = {"EXPIRED", 401},
	[APIKEY_INSUFFICIENT_SCOPE] = {"INSUFFICIENT_SCOPE", 403},
	[APIKEY_IP_DENIED] = {"IP_DENIED", 403},
	[APIKEY_RESOURCE_DENIED] = {"RESOURCE_DENIED", 404},
	[APIKEY_RATE_LIMITED] = {"RATE_LIMITED", 429},
};

/*
 * apikey_code_text: the code as a text datum, made once per backend.
 */
Datum
apikey_code_text(ApikeyCode code)
{
	static text *texts[APIKEY_NUM_CODES];

	if (texts[code] == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		texts[code] = cstring_to_text(codes[code].name);
		MemoryContextSwitchTo(old);
	}
	return PointerGetDatum(texts[code]);
}

const char *
apikey_code_name(ApikeyCode code)
{
	return codes[code].name;
}

int
apikey_code_http_status(ApikeyCode code)
{
	return codes[code].http_status;
}

/*
 * apikey_request_set_scopes: validate the caller's required scopes.  A
 * malformed one is the caller's programming error and raises 22023; the
 * message does not echo it, in case a key was passed by mistake.
 */
void
apikey_request_set_scopes(ApikeyRequest *req, ArrayType *required)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	if (ARR_NDIM(required) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("required scopes must be a one-dimensional array")));
	n = ArrayGetNItems(ARR_NDIM(required), ARR_DIMS(required));
	if (n == 0)
	{
		req->nscopes = 0;		/* '{}', the common case */
		return;
	}
	if (n > APIKEY_MAX_SCOPES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("too many required scopes"),
				 errdetail("A verification requires at most %d scopes.", APIKEY_MAX_SCOPES)));
	deconstruct_array(required, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	req->nscopes = n;
	req->scopes = palloc(sizeof(char *) * n);
	req->scope_lens = palloc(sizeof(int) * n);
	for (i = 0; i < n; i++)
	{
		text	   *t;

		CHECK_FOR_INTERRUPTS();
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("required scope %d is null", i + 1)));
		t = DatumGetTextPP(elems[i]);
		req->scopes[i] = VARDATA_ANY(t);
		req->scope_lens[i] = VARSIZE_ANY_EXHDR(t);
		if (!scope_valid(req->scopes[i], req->scope_lens[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("required scope %d is malformed", i + 1),
					 errdetail(APIKEY_SCOPE_RULE,
							   SCOPE_MAX_LEN, SCOPE_MAX_SEGMENTS)));
	}
}

/*
 * probe: find the row whose hash column hash_att equals hash, through the
 * index on apikey.hash_prefix() of that column; true and the row in slot
 * if found.  Candidates sharing the 8-byte prefix are rechecked in full.
 */
static bool
probe(Relation rel, Oid indexoid, AttrNumber hash_att, const uint8 *hash,
	  TupleTableSlot *slot)
{
	Relation	index;
	IndexScanDesc scan;
	ScanKeyData skey;
	bool		found = false;

	ScanKeyInit(&skey, 1, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(apikey_hash_prefix_of(hash, APIKEY_HASH_LEN)));

	index = index_open(indexoid, AccessShareLock);
	scan = index_beginscan(rel, index, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &skey, 1, NULL, 0);
	while (!found && index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, hash_att, &isnull);

		if (!isnull)
		{
			bytea	   *h = DatumGetByteaPP(d);

			found = VARSIZE_ANY_EXHDR(h) == APIKEY_HASH_LEN &&
				memcmp(VARDATA_ANY(h), hash, APIKEY_HASH_LEN) == 0;
		}
	}
	index_endscan(scan);
	index_close(index, NoLock);
	return found;
}

/* scopes_satisfied: every required scope is granted by some granted scope */
static bool
scopes_satisfied(Datum granted, const ApikeyRequest *req)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	int			j;

	if (req->unsatisfiable)
		return false;
	if (req->nscopes == 0)
		return true;
	deconstruct_array(DatumGetArrayTypeP(granted), TEXTOID, -1, false,
					  TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < req->nscopes; i++)
	{
		bool		ok = false;

		for (j = 0; j < n && !ok; j++)
		{
			text	   *g;

			if (nulls[j])
				continue;
			g = DatumGetTextPP(elems[j]);
			ok = scope_grants(VARDATA_ANY(g), VARSIZE_ANY_EXHDR(g),
							  req->scopes[i], req->scope_lens[i]);
		}
		if (!ok)
			return false;
	}
	return true;
}

/*
 * ipv4_of_mapped: for an IPv4-mapped IPv6 address (::ffff:a.b.c.d, what
 * dual-stack servers report for IPv4 clients) the IPv4 address it carries;
 * 0 for any other address.
 */
static Datum
ipv4_of_mapped(Datum addr)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	inet	   *in = DatumGetInetPP(addr);
	inet	   *out;

	if (ip_family(in) != PGSQL_AF_INET6 || ip_bits(in) < 96 ||
		memcmp(ip_addr(in), mapped, sizeof(mapped)) != 0)
		return (Datum) 0;
	out = (inet *) palloc0(sizeof(inet));
	ip_family(out) = PGSQL_AF_INET;
	ip_bits(out) = ip_bits(in) - 96;
	memcpy(ip_addr(out), ip_addr(in) + 12, 4);
	SET_INET_VARSIZE(out);
	return InetPGetDatum(out);
}

/* in_network: addr lies in the network net */
static bool
in_network(Datum net, Datum addr)
{
	return DatumGetBool(DirectFunctionCall2(network_supeq, net, addr));
}

/*
 * address_allowed: the client address lies in one of the allowed networks.
 * IPv4-mapped IPv6 addresses and networks (::ffff:10.0.0.0/104) count as
 * the IPv4 ones they carry, whichever side is written which way: a
 * dual-stack server and an IPv4-only one get the same answer.
 */
static bool
address_allowed(Datum cidrs, const ApikeyRequest *req)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	Datum		addr4;

	if (req->client_isnull)
		return false;
	deconstruct_array(DatumGetArrayTypeP(cidrs), CIDROID, -1, false,
					  TYPALIGN_INT, &elems, &nulls, &n);
	addr4 = ipv4_of_mapped(req->client_addr);
	for (i = 0; i < n; i++)
	{
		Datum		net4;

		if (nulls[i])
			continue;
		if (in_network(elems[i], req->client_addr) ||
			(addr4 != (Datum) 0 && in_network(elems[i], addr4)))
			return true;
		net4 = ipv4_of_mapped(elems[i]);
		if (net4 != (Datum) 0 &&
			in_network(net4, addr4 != (Datum) 0 ? addr4 : req->client_addr))
			return true;
	}
	return false;
}

/* resource_allowed: the requested resource is one of the key's */
static bool
resource_allowed(Datum resources, const ApikeyRequest *req)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	deconstruct_array(DatumGetArrayTypeP(resources), TEXTOID, -1, false,
					  TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		text	   *t;

		if (nulls[i])
			continue;
		t = DatumGetTextPP(elems[i]);
		if (VARSIZE_ANY_EXHDR(t) == req->resource_len &&
			memcmp(VARDATA_ANY(t), req->resource, req->resource_len) == 0)
			return true;
	}
	return false;
}

/*
 * evaluate: run the checks after NOT_FOUND on the row in slot, and copy the
 * key's identity into result.
 */
static void
evaluate(const ApikeyCatalog *cat, TupleTableSlot *slot,
		 const ApikeyRequest *req, ApikeyResult *res)
{
	bool		isnull;
	Datum		d;
	Datum		cidrs;
	bool		cidrs_isnull;

	res->has_identity = true;
	res->key_id = DatumGetInt64(slot_getattr(slot, cat->att_id, &isnull));
	res->name = slot_getattr(slot, cat->att_name, &isnull);
	d = slot_getattr(slot, cat->att_owner, &res->owner_isnull);
	res->owner = res->owner_isnull ? (Datum) 0 : d;
	res->scopes = slot_getattr(slot, cat->att_scopes, &isnull);
	d = slot_getattr(slot, cat->att_resources, &res->resources_isnull);
	res->resources = res->resources_isnull ? (Datum) 0 : d;
	res->meta = slot_getattr(slot, cat->att_meta, &isnull);
	d = slot_getattr(slot, cat->att_expires_at, &res->expires_isnull);
	res->expires_at = res->expires_isnull ? 0 : DatumGetTimestampTz(d);
	res->owner_role = slot_getattr(slot, cat->att_owner_role, &isnull);
	if (cat->att_db_role != InvalidAttrNumber)
	{
		d = slot_getattr(slot, cat->att_db_role, &res->db_role_isnull);
		res->db_role = res->db_role_isnull ? (Datum) 0 : d;
	}
	d = slot_getattr(slot, cat->att_rate_window, &res->rate_window_isnull);
	res->rate_window = res->rate_window_isnull ? (Datum) 0 : d;

	if (!DatumGetBool(slot_getattr(slot, cat->att_enabled, &isnull)))
	{
		res->code = APIKEY_DISABLED;
		return;
	}
	if (!res->expires_isnull &&
		res->expires_at <= GetCurrentTransactionStartTimestamp())
	{
		res->code = APIKEY_EXPIRED;
		return;
	}
	if (!scopes_satisfied(res->scopes, req))
	{
		res->code = APIKEY_INSUFFICIENT_SCOPE;
		return;
	}
	cidrs = slot_getattr(slot, cat->att_allowed_cidrs, &cidrs_isnull);
	if (!cidrs_isnull && !address_allowed(cidrs, req))
	{
		res->code = APIKEY_IP_DENIED;
		return;
	}
	if (req->resource != NULL && !res->resources_isnull &&
		!resource_allowed(res->resources, req))
	{
		res->code = APIKEY_RESOURCE_DENIED;
		return;
	}

	/*
	 * The key passed every check but its rate limit: take a token from its
	 * bucket and count the use (tracker.c).  Without shared memory there
	 * are no buckets, and a limited key fails closed.
	 */
	d = slot_getattr(slot, cat->att_rate_limit, &isnull);
	if (apikey_tracker_active())
	{
		int64		retry_us;

		if (!apikey_tracker_use(cat->keys_relid, res->key_id, isnull ? 0 : DatumGetInt32(d),
								res->rate_window_isnull ? NULL :
								DatumGetIntervalP(res->rate_window),
								&retry_us))
		{
			Interval   *retry = palloc0(sizeof(Interval));

			retry->time = retry_us;
			res->retry_after = IntervalPGetDatum(retry);
			res->retry_isnull = false;
			res->code = APIKEY_RATE_LIMITED;
			return;
		}
	}
	else if (!isnull)
	{
		res->code = APIKEY_RATE_LIMITED;
		return;
	}
	res->code = APIKEY_VALID;
}

/*
 * apikey_check_key: check key[0..len) against req.  Never raises for a bad
 * key; result->code says what was found.  The caller must call
 * apikey_check_done(result) once it has used the identity fields.
 */
void
apikey_check_key(const char *key, size_t len, const ApikeyRequest *req,
				 ApikeyResult *result)
{
	const ApikeyCatalog *cat;
	uint8		hash[APIKEY_HASH_LEN];
	bool		found;

	memset(result, 0, sizeof(*result));
	result->owner_isnull = result->resources_isnull = true;
	result->expires_isnull = result->retry_isnull = true;
	result->grace_isnull = result->db_role_isnull = true;
	result->rate_window_isnull = true;

	if (len > KF_KEY_MAX_LEN || kf_parse(key, len, NULL) != KF_OK)
	{
		result->code = APIKEY_MALFORMED;
		apikey_tracker_record(result->code, 0, req);
		return;
	}

	apikey_secret_hash(key, len, hash);

	cat = apikey_catalog_lock(AccessShareLock);
	result->rel = table_open(cat->keys_relid, NoLock);
	result->slot = table_slot_create(result->rel, NULL);

	found = probe(result->rel, cat->prefix_idx, cat->att_secret_hash, hash,
				  result->slot);
	if (!found && probe(result->rel, cat->grace_prefix_idx,
						cat->att_grace_secret_hash, hash, result->slot))
	{
		bool		isnull;
		Datum		until = slot_getattr(result->slot, cat->att_grace_until, &isnull);

		/* the previous secret of a rotated key, still in its grace period */
		found = !isnull &&
			DatumGetTimestampTz(until) > GetCurrentTransactionStartTimestamp();
		if (found)
		{
			result->grace_until = DatumGetTimestampTz(until);
			result->grace_isnull = false;
		}
	}
	kf_wipe(hash, sizeof(hash));

	if (found)
		evaluate(cat, result->slot, req, result);
	else
		result->code = APIKEY_NOT_FOUND;
	apikey_tracker_record(result->code, result->has_identity ? result->key_id : 0, req);
}

/*
 * apikey_check_done: release the key's row; the identity fields of result
 * are invalid from here on.
 */
void
apikey_check_done(ApikeyResult *result)
{
	if (result->slot != NULL)
		ExecDropSingleTupleTableSlot(result->slot);
	if (result->rel != NULL)
		table_close(result->rel, NoLock);
	result->slot = NULL;
	result->rel = NULL;
	result->has_identity = false;
}
