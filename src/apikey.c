/*-------------------------------------------------------------------------
 *
 * apikey.c
 *	  Module entry point: PG_MODULE_MAGIC and _PG_init, which hands over to
 *	  each module's own init.  Nothing else lives here.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "apikey.h"
#include "tracker.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);

/* true when loaded by shared_preload_libraries (shared memory available) */
bool		apikey_loaded_at_startup = false;

/*
 * _PG_init: define the settings and register the cache invalidation
 * callback.  Runs once per backend that loads the library.
 */
void
_PG_init(void)
{
	apikey_loaded_at_startup = process_shared_preload_libraries_in_progress;
	apikey_guc_init();
	apikey_identity_init();
	apikey_postgrest_init();
	apikey_tracker_init();
	apikey_worker_init();
	apikey_catalog_init();
	apikey_cache_init();
	apikey_actor_init();
	apikey_utility_init();
	apikey_dropguard_init();
	/* after every module defined its settings: no other apikey.* names */
	MarkGUCPrefixReserved("apikey");
}
