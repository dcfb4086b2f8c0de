/*-------------------------------------------------------------------------
 *
 * keycache.h
 *	  The shared verified-key cache (keycache.c): with
 *	  shared_preload_libraries, one copy of each recently verified key's
 *	  row for every backend of the server, found by the SHA-256 of the
 *	  presented secret, with a hint to the key's entry in the tracker's key
 *	  table, so that one lookup gives the row, the bucket and the usage
 *	  counters.  It sits in the verify layer: it stores ApikeyKey values.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_KEYCACHE_H
#define APIKEY_KEYCACHE_H

#include "postgres.h"

#include "catalog.h"
#include "tracker.h"
#include "verify.h"

/* what a lookup that missed saw, for the insert that may follow it */
typedef struct ApikeyKeycacheFill
{
	uint32		set_generation[2];	/* its two sets' invalidations then */
	uint64		generation;		/* the whole cache's flushes then */
	bool		admit;			/* the row, if found, may be kept */
} ApikeyKeycacheFill;

extern int	apikey_shared_cache_size;

extern void apikey_keycache_init(void);
extern bool apikey_keycache_active(const ApikeyCatalog *cat);
extern bool apikey_keycache_lookup(const ApikeyCatalog *cat, const uint8 *hash,
								   ApikeyKey *key, ApikeyKeycacheFill *fill);
extern void apikey_keycache_insert(const ApikeyCatalog *cat, const uint8 *hash,
								   const ApikeyKeycacheFill *fill,
								   const ApikeyKey *key);
extern void apikey_keycache_set_hint(const ApikeyCatalog *cat, const uint8 *hash,
									 const ApikeyTrackerHint *hint);
extern void apikey_keycache_forget_at_commit(const uint8 *hash);
extern void apikey_keycache_flush_at_commit(void);
extern void apikey_keycache_stats(int64 *entries, int64 *capacity,
								  int64 *bytes, int64 *variable_bytes);

#endif							/* APIKEY_KEYCACHE_H */
