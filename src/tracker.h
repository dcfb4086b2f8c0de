/*-------------------------------------------------------------------------
 *
 * tracker.h
 *	  Shared-memory usage counters, token buckets and the verification log
 *	  queue (tracker.c), and the background worker that writes them
 *	  (worker.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_TRACKER_H
#define APIKEY_TRACKER_H

#include "datatype/timestamp.h"
#include "utils/inet.h"

#include "apikey.h"

/* one verification outcome waiting for apikey.audit (no secret in it) */
typedef struct ApikeyLogEntry
{
	TimestampTz at;
	Oid			dbid;
	int64		key_id;			/* 0: no key identified */
	uint8		code;			/* ApikeyCode */
	bool		has_client;
	inet_struct client;			/* the client_addr the caller gave */
	NameData	session_user;
	NameData	current_user;
	char		application_name[NAMEDATALEN];
} ApikeyLogEntry;

typedef struct ApikeyUsage
{
	int64		key_id;
	int64		uses;
	TimestampTz last_used_at;
} ApikeyUsage;

typedef struct ApikeyKeyStats
{
	int64		key_id;
	int64		pending_uses;
	TimestampTz last_used_at;	/* 0: no use since the last flush */
	int32		rate_limit;		/* 0: none seen */
	double		tokens;
} ApikeyKeyStats;

typedef struct ApikeyServerStats
{
	uint64		verifications[APIKEY_NUM_CODES];
	uint64		dropped;
	uint64		untracked;
	uint64		cache_hits;
	uint64		cache_misses;
	int			queue_depth;
	int			queue_size;
	TimestampTz started_at;
} ApikeyServerStats;

/* tracker.c */
extern int	apikey_max_tracked_keys;
extern int	apikey_queue_size;
extern void apikey_tracker_init(void);
extern bool apikey_tracker_active(void);
extern bool apikey_tracker_use(Oid relid, int64 key_id, int32 rate_limit,
							   const Interval *window, int64 *retry_us);
extern void apikey_tracker_count(ApikeyCode code, const ApikeyLogEntry *entry);
extern void apikey_tracker_count_cache(bool hit);
extern void apikey_tracker_keys_changed(void);
extern uint64 apikey_tracker_keys_generation(void);
extern void apikey_tracker_record(ApikeyCode code, int64 key_id,
								  const ApikeyRequest *req);
extern void apikey_tracker_mark_dirty(void);
extern bool apikey_tracker_take_dirty(void);
extern int	apikey_tracker_collect_usage(Oid dbid, Oid relid, ApikeyUsage **out);
extern int	apikey_tracker_take_log(ApikeyLogEntry *out, int max);
extern void apikey_tracker_key_stats(Oid dbid, Oid relid,
									 void (*fn) (void *arg, const ApikeyKeyStats *s),
									 void *arg);
extern void apikey_tracker_server_stats(ApikeyServerStats *s);

/* worker.c */
extern void apikey_worker_init(void);

#endif							/* APIKEY_TRACKER_H */
