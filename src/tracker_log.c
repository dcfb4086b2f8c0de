/*-------------------------------------------------------------------------
 *
 * tracker_log.c
 *	  Counting verification outcomes and queueing them for the log:
 *	  apikey.log_verifications says which outcomes are queued; the worker
 *	  drains the queue into apikey.audit.  The queue is bounded and guarded
 *	  by the queue lock (tracker_int.h); a verification never waits for
 *	  the worker: a full queue drops the outcome and counts it.
 *
 *	  Fair shares, so that one tenant's flood of its own failures cannot
 *	  push another's out of the log: outcomes that name no key (MALFORMED,
 *	  NOT_FOUND: anyone can make them, for free) fill at most half the
 *	  queue; and once the queue is half full, the outcomes of one key owner
 *	  (owner_role; owners are hashed into 255 groups) may hold at most a
 *	  quarter of it.  A single busy tenant still gets half the queue.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "tracker_int.h"

typedef enum
{
	LOG_OFF,
	LOG_FAILURES,
	LOG_ALL
} LogVerifications;

static const struct config_enum_entry log_options[] = {
	{"off", LOG_OFF, false},
	{"failures", LOG_FAILURES, false},
	{"all", LOG_ALL, false},
	{NULL, 0, false}
};

static int	log_verifications = LOG_FAILURES;

/* apikey_tracker_log_init: define apikey.log_verifications (with or without preload) */
void
apikey_tracker_log_init(void)
{
	DefineCustomEnumVariable("apikey.log_verifications",
							 "Which verification outcomes are written to apikey.audit.",
							 "failures: every outcome but VALID. Written by the worker, so also for transactions that roll back.",
							 &log_verifications,
							 LOG_FAILURES,
							 log_options,
							 PGC_SUSET,
							 0,
							 NULL,
							 NULL,
							 NULL);
}

/* admitted: whether entry gets a slot (queue lock held; see the header) */
static bool
admitted(const ApikeyLogEntry *entry)
{
	int			count = tracker_shared->count;

	if (count >= apikey_queue_size)
		return false;
	if (entry->key_id == 0 || entry->tenant == 0)
		return count < apikey_queue_size / 2;
	return count < apikey_queue_size / 2 ||
		tracker_shared->tenant_count[entry->tenant] < apikey_queue_size / 4;
}

/*
 * count: count one verification outcome, and queue it for the log (entry
 * != NULL).
 */
static void
count(ApikeyCode code, const ApikeyLogEntry *entry)
{
	pg_atomic_fetch_add_u64(&tracker_shared->verifications[code], 1);
	if (entry == NULL)
		return;
	LWLockAcquire(tracker_queue_lock(), LW_EXCLUSIVE);
	if (admitted(entry))
	{
		tracker_shared->slots[(tracker_shared->head + tracker_shared->count) % apikey_queue_size] = *entry;
		tracker_shared->count++;
		tracker_shared->tenant_count[entry->tenant]++;
		entry = NULL;
	}
	LWLockRelease(tracker_queue_lock());
	if (entry != NULL)
		pg_atomic_fetch_add_u64(&tracker_shared->dropped, 1);
	apikey_tracker_mark_dirty();
}

/*
 * apikey_tracker_record: count the outcome of one verification of key
 * key_id (0: none identified) owned by owner_role (NULL: none) from client
 * (NULL: not given), and queue it for the log as apikey.log_verifications
 * says.  Without shared memory
 * nothing is recorded, and the first call in a backend says so.
 */
void
apikey_tracker_record(ApikeyCode code, int64 key_id, const char *owner_role,
					  const inet *client)
{
	static bool warned = false;
	ApikeyLogEntry entry;

	if (!apikey_tracker_active())
	{
		if (!warned)
		{
			warned = true;
			ereport(WARNING,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("apikey is not in shared_preload_libraries: usage and the verification log are not recorded"),
					 errhint("Add apikey to shared_preload_libraries and restart the server.")));
		}
		return;
	}
	if (log_verifications == LOG_OFF ||
		(log_verifications == LOG_FAILURES && code == APIKEY_VALID))
	{
		count(code, NULL);
		return;
	}

	memset(&entry, 0, sizeof(entry));
	entry.at = GetCurrentTimestamp();
	entry.dbid = MyDatabaseId;
	entry.key_id = key_id;
	if (key_id != 0 && owner_role != NULL)
		entry.tenant = tracker_tenant_of(owner_role);
	entry.code = (uint8) code;
	if (client != NULL)
	{
		entry.has_client = true;
		memcpy(&entry.client, VARDATA_ANY(client),
			   Min(VARSIZE_ANY_EXHDR(client), sizeof(inet_struct)));
	}
	namestrcpy(&entry.session_user, GetUserNameFromId(GetSessionUserId(), false));
	namestrcpy(&entry.current_user, GetUserNameFromId(GetUserId(), false));
	strlcpy(entry.application_name, application_name ? application_name : "",
			sizeof(entry.application_name));
	count(code, &entry);
}

/*
 * apikey_tracker_take_log: move up to max queued outcomes into out[];
 * returns how many.
 */
int
apikey_tracker_take_log(ApikeyLogEntry *out, int max)
{
	int			n;
	int			i;

	LWLockAcquire(tracker_queue_lock(), LW_EXCLUSIVE);
	n = Min(max, tracker_shared->count);
	for (i = 0; i < n; i++)
	{
		out[i] = tracker_shared->slots[(tracker_shared->head + i) % apikey_queue_size];
		tracker_shared->tenant_count[out[i].tenant]--;
	}
	tracker_shared->head = (tracker_shared->head + n) % apikey_queue_size;
	tracker_shared->count -= n;
	LWLockRelease(tracker_queue_lock());
	return n;
}
