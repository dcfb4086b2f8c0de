/*-------------------------------------------------------------------------
 *
 * secret.c
 *	  Minting keys from the server's strong random source and hashing them
 *	  with PostgreSQL's cryptohash API (SHA-256).  Every buffer that held
 *	  random bytes is wiped before it goes out of scope.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/cryptohash.h"
#include "fmgr.h"
#include "utils/resowner.h"

#include "apikey.h"

APIKEY_SQL_FUNCTION(apikey_hash_prefix);

/* Random bytes per attempt; rejection sampling needs ~33 for 32 chars. */
#define MINT_RANDOM_BYTES	96
#define MINT_ATTEMPTS		8

/*
 * apikey_secret_mint: write a new key for prefix into key (keysize bytes,
 * at least KF_KEY_BUFSZ).  The prefix must already be valid.
 */
void
apikey_secret_mint(const char *prefix, char *key, size_t keysize)
{
	uint8		rnd[MINT_RANDOM_BYTES];
	kf_status	st = KF_NEED_RANDOM;
	int			attempt;

	for (attempt = 0; attempt < MINT_ATTEMPTS && st == KF_NEED_RANDOM; attempt++)
	{
		if (!pg_strong_random(rnd, sizeof(rnd)))
		{
			kf_wipe(rnd, sizeof(rnd));
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate random bytes for an api key")));
		}
		st = kf_mint(prefix, strlen(prefix), rnd, sizeof(rnd), key, keysize);
	}
	kf_wipe(rnd, sizeof(rnd));

	if (st != KF_OK)
		elog(ERROR, "could not mint an api key: %s", kf_status_text(st));
}

/*
 * One SHA-256 context per backend, reused by every call: creating one costs
 * more than hashing a key.  It belongs to a resource owner of our own that
 * is never released, so it outlives transactions without a leak warning.
 */
static pg_cryptohash_ctx *hash_ctx = NULL;

static pg_cryptohash_ctx *
backend_hash_ctx(void)
{
	if (hash_ctx == NULL)
	{
		static ResourceOwner owner = NULL;
		ResourceOwner save = CurrentResourceOwner;

		if (owner == NULL)
			owner = ResourceOwnerCreate(NULL, "apikey hash context");
		CurrentResourceOwner = owner;
		PG_TRY();
		{
			hash_ctx = pg_cryptohash_create(PG_SHA256);
		}
		PG_FINALLY();
		{
			CurrentResourceOwner = save;
		}
		PG_END_TRY();
		if (hash_ctx == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
	}
	return hash_ctx;
}

/*
 * apikey_secret_hash: SHA-256 of key[0..len) into hash (APIKEY_HASH_LEN).
 */
void
apikey_secret_hash(const char *key, size_t len, uint8 *hash)
{
	pg_cryptohash_ctx *ctx = backend_hash_ctx();

	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) key, len) < 0 ||
		pg_cryptohash_final(ctx, hash, APIKEY_HASH_LEN) < 0)
		elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(ctx));
}

/*
 * apikey_hash_prefix(bytea) returns bigint: the key of the index the verify
 * path probes (see apikey_hash_prefix_of).
 */
Datum
apikey_hash_prefix(PG_FUNCTION_ARGS)
{
	bytea	   *h = PG_GETARG_BYTEA_PP(0);

	PG_RETURN_INT64(apikey_hash_prefix_of((const uint8 *) VARDATA_ANY(h),
										  VARSIZE_ANY_EXHDR(h)));
}
