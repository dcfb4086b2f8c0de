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
