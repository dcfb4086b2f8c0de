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

#include "apikey.h"

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
 * apikey_secret_hash: SHA-256 of key[0..len) into hash (APIKEY_HASH_LEN).
 */
void
apikey_secret_hash(const char *key, size_t len, uint8 *hash)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));

	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) key, len) < 0 ||
		pg_cryptohash_final(ctx, hash, APIKEY_HASH_LEN) < 0)
	{
		const char *msg = pstrdup(pg_cryptohash_error(ctx));

		pg_cryptohash_free(ctx);
		elog(ERROR, "could not compute SHA-256: %s", msg);
	}
	pg_cryptohash_free(ctx);
}
