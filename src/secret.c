/*-------------------------------------------------------------------------
 *
 * secret.c
 *	  Minting keys from the server's strong random source and hashing them
 *	  (SHA-256, OpenSSL's EVP interface, as pgcrypto uses it).  Every buffer that held
 *	  random bytes is wiped before it goes out of scope.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include "fmgr.h"

#include "common.h"
#include "compat.h"
#include "keyformat.h"
#include "secret.h"

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
 * SHA-256 through OpenSSL's EVP interface, with the algorithm fetched once
 * per backend and one context reused by every call.  PostgreSQL's
 * cryptohash API asks OpenSSL 3 to look the algorithm up again at every
 * init (a lock and a provider search, about 0.25 µs, more than hashing a
 * key); with the fetched algorithm a key hashes in about 0.1 µs.  The
 * context lives in OpenSSL's own memory for the life of the backend.
 */
static EVP_MD_CTX *hash_ctx = NULL;
static EVP_MD *hash_md = NULL;

static void
hash_failed(void)
{
	const char *reason = ERR_reason_error_string(ERR_get_error());

	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("could not compute SHA-256"),
			 errdetail("OpenSSL: %s", reason ? reason : "no error reported")));
}

/*
 * apikey_secret_hash: SHA-256 of key[0..len) into hash (APIKEY_HASH_LEN).
 */
void
apikey_secret_hash(const char *key, size_t len, uint8 *hash)
{
	unsigned int hlen = 0;

	if (hash_ctx == NULL)
	{
		if (hash_md == NULL &&
			(hash_md = EVP_MD_fetch(NULL, "SHA2-256", NULL)) == NULL)
			hash_failed();
		if ((hash_ctx = EVP_MD_CTX_new()) == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
	}
	if (EVP_DigestInit_ex2(hash_ctx, hash_md, NULL) != 1 ||
		EVP_DigestUpdate(hash_ctx, key, len) != 1 ||
		EVP_DigestFinal_ex(hash_ctx, hash, &hlen) != 1 ||
		hlen != APIKEY_HASH_LEN)
		hash_failed();
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
