/*-------------------------------------------------------------------------
 *
 * apikey.c
 *	  Module entry point: PG_MODULE_MAGIC and _PG_init, which hands over to
 *	  each module's own init.  Nothing else lives here.
 *
 *	  Settings: each apikey.* setting is defined by the file that owns what
 *	  it controls, in that file's init, all of them called from here; the
 *	  settings that size shared memory (apikey.max_tracked_keys,
 *	  apikey.queue_size) and the worker's (apikey.database,
 *	  apikey.flush_interval) exist only when the library is loaded by
 *	  shared_preload_libraries.  After every init, the prefix "apikey" is
 *	  reserved.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "acting_role.h"
#include "catalog.h"
#include "create_rotate.h"
#include "dbrole.h"
#include "guards.h"
#include "identity.h"
#include "keycache.h"
#include "postgrest.h"
#include "tracker.h"
#include "verify.h"
#include "worker.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);

/*
 * _PG_init: define the settings and register the cache invalidation
 * callback.  Runs once per backend that loads the library.
 */
void
_PG_init(void)
{
	apikey_create_rotate_init();
	apikey_identity_init();
	apikey_dbrole_init();
	apikey_postgrest_init();
	apikey_tracker_init();
	apikey_tracker_log_init();
	apikey_tracker_credits_init();
	apikey_worker_init();
	apikey_catalog_init();
	apikey_cache_init();
	apikey_keycache_init();
	apikey_actor_init();
	apikey_guard_utility_init();
	apikey_guard_drop_init();
	/* after every module defined its settings: no other apikey.* names */
	MarkGUCPrefixReserved("apikey");
}
