/*-------------------------------------------------------------------------
 *
 * tracker.h
 *	  Shared memory of the verify path (present only with
 *	  shared_preload_libraries = 'apikey'): per key the usage not yet
 *	  written and the token bucket of its rate limit, per server the
 *	  counts by result code and a bounded queue of outcomes for the log.
 *	  Its interface takes what it needs (a code, a key id, an address),
 *	  never the verify layer's types: it sits below the verify path.
 *
 *	tracker_shmem.c	the shared struct, its setup and locks, the settings
 *				that size it, the server-wide counters
 *	tracker_keys.c	the key table: buckets, usage, recycling idle entries
 *	tracker_credits.c	metered balances: refunds on abort, the plan clock
 *	tracker_log.c	the outcome queue and apikey.log_verifications
 *	tracker_state.c	the state file kept across a clean restart
 *	stats.c			the SQL functions behind apikey.stats
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_TRACKER_H
#define APIKEY_TRACKER_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "utils/inet.h"

#include "codes.h"
#include "plan.h"

/* one verification outcome waiting for apikey.audit (no secret in it) */
typedef struct ApikeyLogEntry
{
	TimestampTz at;
	Oid			dbid;
	uint8		tenant;			/* 0: no key; else 1 + the key owner's hash % 255
								 * (in what was padding: 1.1's layout holds) */
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
	bool		has_balance;	/* a metered key's balance changed: write it */
	PlanBalance balance;
	bool		is_owner;		/* an owner's balance (key_id: apikey.owners.id) */
} ApikeyUsage;

/* verifications of one key, hour and code (apikey.usage_hourly) */
typedef struct ApikeyHourly
{
	int64		key_id;
	TimestampTz hour;
	uint8		code;			/* ApikeyCode */
	int64		count;
} ApikeyHourly;

typedef struct ApikeyKeyStats
{
	int64		key_id;
	int64		pending_uses;
	TimestampTz last_used_at;	/* 0: no use since the last flush */
	int32		rate_limit;		/* 0: none seen */
	double		tokens;
	bool		has_balance;	/* a metered key's balance is known here */
	int64		credits_remaining;
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

/*
 * Where a key's entry in the key table was last found, so that the next
 * use skips the hash search (the shared verified-key cache keeps one per
 * key).  An entry gets a new incarnation whenever it is made and loses it
 * when removed: a hint whose incarnation the entry no longer carries is
 * ignored.
 */
typedef struct ApikeyTrackerHint
{
	void	   *entry;
	uint64		incarnation;	/* 0: no hint */
} ApikeyTrackerHint;

/*
 * One verification's draw on its key's tracker entry (apikey_tracker_use):
 * a token of the rate limit, cost credits of a metered balance, and the
 * use counted, all or nothing.
 */
typedef struct ApikeyDraw
{
	Oid			relid;			/* the key: its apikey.keys and id */
	int64		key_id;
	const char *owner_role;
	int32		rate_limit;		/* 0: none */
	const Interval *window;
	const PlanCredits *credits; /* NULL: unmetered */
	int64		cost;
	TimestampTz plan_now;		/* refills are judged at (apikey_plan_now) */
	ApikeyTrackerHint *hint;	/* in: where the entry was; out: where it is */
	/* the plan of its owner, if any: an entry of its own, (owner_relid, owner_id) */
	Oid			owner_relid;
	int64		owner_id;		/* 0: no owner plan */
	int32		owner_rate_limit;	/* 0: none */
	const Interval *owner_window;
	const PlanCredits *owner_credits;	/* NULL: unmetered */
	ApikeyTrackerHint *owner_hint;
	/* what happened */
	int64		retry_us;		/* RATE_LIMITED, or QUOTA_EXCEEDED (-1: no refill) */
	bool		has_remaining;	/* metered: the balance after the call */
	int64		remaining;
	PlanBalance taken_from;		/* VALID and metered: the balance drawn on */
	PlanBalance owner_taken_from;	/* the same of the owner's */
} ApikeyDraw;

/* what apikey_tracker_use decided */
typedef enum ApikeyDrawVerdict
{
	APIKEY_DRAW_VALID,
	APIKEY_DRAW_RATE_LIMITED,
	APIKEY_DRAW_QUOTA_EXCEEDED,
	APIKEY_DRAW_LOAD,			/* the key's balance is not in shared memory: load it */
	APIKEY_DRAW_LOAD_OWNER		/* the owner's, the same */
} ApikeyDrawVerdict;

/* one backend's verified-key cache lookups */
typedef struct ApikeyBackendStats
{
	int			pid;
	uint64		cache_hits;
	uint64		cache_misses;
} ApikeyBackendStats;

/* tracker_shmem.c */
extern int	apikey_queue_size;	/* outcomes the log queue holds (PGC_POSTMASTER) */
extern void apikey_tracker_init(void);
extern bool apikey_tracker_active(void);
extern void apikey_tracker_count_cache(bool hit);
extern void apikey_tracker_keys_changed(void);
extern uint64 apikey_tracker_keys_generation(void);
extern void apikey_tracker_mark_dirty(void);
extern bool apikey_tracker_take_dirty(void);
extern void apikey_tracker_server_stats(ApikeyServerStats *s);
extern int	apikey_tracker_backend_stats(ApikeyBackendStats **out);

/* tracker_keys.c */
extern ApikeyDrawVerdict apikey_tracker_use(ApikeyDraw *d);
extern void apikey_tracker_load_balance(const ApikeyDraw *d, bool owner,
										const PlanBalance *b);
extern int	apikey_tracker_collect_usage(Oid dbid, Oid relid, Oid owners_relid,
										 ApikeyUsage **out, int64 **spent, int *nspent,
										 ApikeyHourly **hourly, int *nhourly);
extern void apikey_tracker_count_outcome(Oid relid, int64 key_id, const char *owner_role,
										 ApikeyCode code, ApikeyTrackerHint *hint);
extern void apikey_tracker_forget_keys(Oid dbid, Oid relid, const int64 *ids, int n);
extern void apikey_tracker_key_stats(Oid dbid, Oid relid,
									 void (*fn) (void *arg, const ApikeyKeyStats *s),
									 void *arg);

/* tracker_credits.c */
extern bool apikey_refund_on_abort;
extern void apikey_tracker_credits_init(void);
extern TimestampTz apikey_plan_now(void);
extern void apikey_tracker_note_refund(const ApikeyDraw *d);

/* tracker_log.c */
extern void apikey_tracker_log_init(void);
extern void apikey_tracker_record(ApikeyCode code, int64 key_id,
								  const char *owner_role, const inet *client);
extern int	apikey_tracker_take_log(ApikeyLogEntry *out, int max);

#endif							/* APIKEY_TRACKER_H */
