/* apikey--1.1--1.2.sql: version 1.2 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION apikey UPDATE TO '1.2'" to load this file. \quit

/*
 * How apikey's SQL is written from 1.2 on, as contrib's modules do: one full
 * script, apikey--1.0.sql, and a chain of update scripts.  A fresh install
 * of 1.2 runs apikey--1.0.sql, apikey--1.0--1.1.sql and this file; an
 * installed 1.0 or 1.1 runs the rest of the chain.  Every object is
 * written once, in the script of the version that brought it.  (1.1's own
 * full script, which repeated apikey--1.0--1.1.sql, is gone: 1.0 plus the
 * update equals it, as test/shell/upgrade.sh checks object by object.)
 *
 * 1.2's library builds and runs on PostgreSQL 15, 17 and 18; the schema
 * objects of 1.2 follow below this line.
 */

/*
 * No statistics of the secret hashes.  pg_stats shows an index's
 * expression statistics to anyone who may read the index, and
 * pg_read_all_data may read every relation: after ANALYZE it saw the
 * first 8 bytes of key hashes (the hash prefix index).  The table's own
 * hash columns are hidden by row-level security, but there is nothing to
 * plan with in a hash's statistics either.  ANALYZE keeps none from now
 * on, and the ones kept so far go.
 */
ALTER INDEX apikey.keys_hash_prefix_idx ALTER COLUMN 1 SET STATISTICS 0;
ALTER INDEX apikey.keys_grace_hash_prefix_idx ALTER COLUMN 1 SET STATISTICS 0;
ALTER TABLE apikey.keys ALTER COLUMN secret_hash SET STATISTICS 0;
ALTER TABLE apikey.keys ALTER COLUMN grace_secret_hash SET STATISTICS 0;
DELETE FROM pg_catalog.pg_statistic
 WHERE starelid OPERATOR(pg_catalog.=) ANY (ARRAY['apikey.keys_hash_prefix_idx'::pg_catalog.regclass,
											'apikey.keys_grace_hash_prefix_idx'::pg_catalog.regclass])
	OR (starelid OPERATOR(pg_catalog.=) 'apikey.keys'::pg_catalog.regclass
		AND staattnum OPERATOR(pg_catalog.=) ANY (ARRAY(
			SELECT attnum FROM pg_catalog.pg_attribute
			 WHERE attrelid OPERATOR(pg_catalog.=) 'apikey.keys'::pg_catalog.regclass
			   AND attname OPERATOR(pg_catalog.=) ANY (ARRAY['secret_hash', 'grace_secret_hash']::pg_catalog.name[]))));
