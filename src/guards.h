/*-------------------------------------------------------------------------
 *
 * guards.h
 *	  What refuses what, beyond privileges and row-level security:
 *	  guard_keys.c (triggers on apikey.keys: forged hashes and direct
 *	  INSERTs, db_role and rate-limit rules on UPDATE), guard_utility.c
 *	  (utility statements that would lock apikey's tables for everyone),
 *	  guard_drop.c (DROP EXTENSION while keys exist).  The PL/pgSQL guards
 *	  (the append-only audit, the schema's name and owner) are in the SQL
 *	  scripts.  Only the hooks need initialising; the triggers are SQL
 *	  functions.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_GUARDS_H
#define APIKEY_GUARDS_H

extern void apikey_guard_utility_init(void);
extern void apikey_guard_drop_init(void);

#endif							/* APIKEY_GUARDS_H */
