/*-------------------------------------------------------------------------
 *
 * verify_eval.c
 *	  The checks a found key must pass, in order: DISABLED, EXPIRED,
 *	  INSUFFICIENT_SCOPE, IP_DENIED, RESOURCE_DENIED.  apikey_evaluate is
 *	  pure: it reads only the ApikeyKey, the request and the time it is
 *	  given, touches no table and no shared state, so whoever found the key
 *	  (the index probe today) gets the same answer.  The rate limit, which
 *	  consumes a token, is the caller's next step (verify_check.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inet.h"

#include "common.h"
#include "scope.h"
#include "values.h"
#include "verify.h"

/* granted_scope: whether some of the n granted scopes satisfies required scope i */
static bool
granted_scope(text **elems, int n, const ApikeyRequest *req, int i)
{
	int			j;

	for (j = 0; j < n; j++)
		if (scope_grants(VARDATA_ANY(elems[j]), VARSIZE_ANY_EXHDR(elems[j]),
						 req->scopes[i], req->scope_lens[i]))
			return true;
	return false;
}

/* scopes_satisfied: every required scope is granted by some granted scope */
static bool
scopes_satisfied(Datum granted, const ApikeyRequest *req)
{
	text	  **elems;
	int			n;
	int			i;

	if (req->unsatisfiable)
		return false;
	if (req->nscopes == 0)
		return true;
	n = apikey_text_elems(granted, &elems);
	for (i = 0; i < req->nscopes; i++)
		if (!granted_scope(elems, n, req, i))
			return false;
	return true;
}

/*
 * apikey_missing_scopes: the required scopes of req that no granted scope
 * satisfies, as a text[] (what INSUFFICIENT_SCOPE tells the caller), in
 * the order required; NULL if none is missing.
 */
ArrayType *
apikey_missing_scopes(Datum granted, const ApikeyRequest *req)
{
	text	  **elems;
	Datum	   *missing;
	int			nmissing = 0;
	int			n;
	int			i;

	if (req->nscopes == 0)
		return NULL;
	n = apikey_text_elems(granted, &elems);
	missing = palloc(sizeof(Datum) * req->nscopes);
	for (i = 0; i < req->nscopes; i++)
	{
		if (!granted_scope(elems, n, req, i))
			missing[nmissing++] =
				PointerGetDatum(cstring_to_text_with_len(req->scopes[i], req->scope_lens[i]));
	}
	if (nmissing == 0)
		return NULL;
	return construct_array(missing, nmissing, TEXTOID, -1, false, TYPALIGN_INT);
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

/*
 * mapped_of_ipv4: for an IPv4 address, the IPv4-mapped IPv6 form of it
 * (::ffff:a.b.c.d, with 96 more bits of mask); 0 for any other address.
 */
static Datum
mapped_of_ipv4(Datum addr)
{
	inet	   *in = DatumGetInetPP(addr);
	inet	   *out;

	if (ip_family(in) != PGSQL_AF_INET)
		return (Datum) 0;
	out = (inet *) palloc0(sizeof(inet));
	ip_family(out) = PGSQL_AF_INET6;
	ip_bits(out) = ip_bits(in) + 96;
	ip_addr(out)[10] = 0xff;
	ip_addr(out)[11] = 0xff;
	memcpy(ip_addr(out) + 12, ip_addr(in), 4);
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
 * An IPv4 address and its IPv4-mapped IPv6 form (::ffff:a.b.c.d, what
 * dual-stack servers report for IPv4 clients) are one client: the client
 * is allowed if either form lies in a network, whichever form the network
 * and the address are written in.  So ::ffff:10.0.0.0/104 allows 10.0.0.1,
 * 10.0.0.0/8 allows ::ffff:10.0.0.1, and an IPv6 range that contains the
 * mapped addresses (::/0, ::ffff:0:0/96) allows IPv4 clients in both
 * forms.  A dual-stack server and an IPv4-only one get the same answer.
 */
static bool
address_allowed(Datum cidrs, const ApikeyRequest *req)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	Datum		other;

	if (req->client_isnull)
		return false;
	deconstruct_array(DatumGetArrayTypeP(cidrs), CIDROID, -1, false,
					  TYPALIGN_INT, &elems, &nulls, &n);
	other = ipv4_of_mapped(req->client_addr);
	if (other == (Datum) 0)
		other = mapped_of_ipv4(req->client_addr);
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			continue;
		if (in_network(elems[i], req->client_addr) ||
			(other != (Datum) 0 && in_network(elems[i], other)))
			return true;
	}
	return false;
}

/* resource_allowed: the requested resource is one of the key's */
static bool
resource_allowed(Datum resources, const ApikeyRequest *req)
{
	text	  **elems;
	int			n = apikey_text_elems(resources, &elems);
	int			i;

	for (i = 0; i < n; i++)
	{
		if (VARSIZE_ANY_EXHDR(elems[i]) == req->resource_len &&
			memcmp(VARDATA_ANY(elems[i]), req->resource, req->resource_len) == 0)
			return true;
	}
	return false;
}

/*
 * apikey_evaluate: the first check key fails for req at time now, or
 * APIKEY_VALID when it passes them all (its rate limit aside).
 */
ApikeyCode
apikey_evaluate(const ApikeyKey *key, const ApikeyRequest *req,
				TimestampTz now)
{
	if (!key->enabled)
		return APIKEY_DISABLED;
	if (!key->expires_isnull && key->expires_at <= now)
		return APIKEY_EXPIRED;
	if (!scopes_satisfied(key->scopes, req))
		return APIKEY_INSUFFICIENT_SCOPE;
	if (!key->cidrs_isnull && !address_allowed(key->allowed_cidrs, req))
		return APIKEY_IP_DENIED;
	if (req->resource != NULL && !key->resources_isnull &&
		!resource_allowed(key->resources, req))
		return APIKEY_RESOURCE_DENIED;
	return APIKEY_VALID;
}
