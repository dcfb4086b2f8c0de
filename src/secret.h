/*-------------------------------------------------------------------------
 *
 * secret.h
 *	  Minting a key from the strong random source and hashing it
 *	  (secret.c), and the hash prefix the key lookup probes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_SECRET_H
#define APIKEY_SECRET_H

#include "postgres.h"

#define APIKEY_HASH_LEN 32

/*
 * apikey_hash_prefix_of: the first 8 bytes of a hash as a bigint, big
 * endian.  The verify path probes an index on this (half the B-tree depth
 * of one on the 32-byte hash) and rechecks the whole hash.
 */
static inline int64
apikey_hash_prefix_of(const uint8 *hash, size_t len)
{
	uint64		v = 0;
	size_t		i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | (i < len ? hash[i] : 0);
	return (int64) v;
}

extern void apikey_secret_mint(const char *prefix, char *key, size_t keysize);
extern void apikey_secret_hash(const char *key, size_t len, uint8 *hash);

#endif							/* APIKEY_SECRET_H */
