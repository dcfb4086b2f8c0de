\set VERBOSITY terse
SET client_min_messages = error;
SELECT v.code AS first_verification FROM apikey.apikey_verify('') v;
SET client_min_messages = warning;
SET timezone = 'UTC';
--
-- Usage plans: credits on keys, refilled on a calendar.  The calendar and
-- the rules are checked here on every server; balances need shared memory
-- (sql/preload.sql shows the refusals without it), so the rest runs only
-- where apikey is preloaded: this file has two expected outputs,
-- plans.out (preloaded) and plans_1.out (not).
--
SELECT 'apikey' = ANY (string_to_array(regexp_replace(
           current_setting('shared_preload_libraries'), '[\s"]|\$libdir/', '', 'g'), ','))
       AS preloaded \gset
SELECT :'preloaded' AS preloaded;

--
-- The calendar, against an oracle written with PostgreSQL's own dates: the
-- first refill after a time is 00:00 UTC of the next day, or of refill_day
-- of this month or the next (a month without that day: its last day).
-- Times every 7h13m over 2023-2025 (a leap February among them) and the
-- edges themselves, for every refill day.
--
CREATE TEMP TABLE times AS
SELECT g AS at FROM generate_series('2023-01-01 00:00+00'::timestamptz, '2025-03-02 00:00+00', '7 hours 13 minutes') g
UNION ALL
SELECT (d::timestamp + o) AT TIME ZONE 'UTC'
  FROM generate_series('2023-12-25'::date, '2024-03-05'::date, '1 day') d,
       (VALUES (interval '0'), (interval '-1 microsecond'), (interval '1 microsecond')) AS o(o);
WITH cases AS (
	SELECT t.at, d.day,
		   (SELECT min(c.at)
			  FROM generate_series(0, 1) k,
				   LATERAL (SELECT date_trunc('month', t.at AT TIME ZONE 'UTC') + make_interval(months => k) AS m) mm,
				   LATERAL (SELECT (mm.m + make_interval(days => least(d.day,
							extract(day FROM mm.m + interval '1 month' - interval '1 day')::int) - 1))
							AT TIME ZONE 'UTC' AS at) c
			 WHERE c.at > t.at) AS expected
	  FROM times t, generate_series(1, 31) AS d(day))
SELECT count(*) AS cases,
	   count(*) FILTER (WHERE apikey.next_refill('month', day, at) IS DISTINCT FROM expected) AS wrong
  FROM cases;
SELECT count(*) AS cases,
	   count(*) FILTER (WHERE apikey.next_refill('day', NULL, at) IS DISTINCT FROM
						(date_trunc('day', at AT TIME ZONE 'UTC') + interval '1 day') AT TIME ZONE 'UTC') AS wrong
  FROM times;
-- the months of a 31st: February's last day (29 in a leap year), April's 30th
SELECT apikey.next_refill('month', 31, a)::text AS next
  FROM (VALUES ('2024-01-31 00:00+00'::timestamptz), ('2024-02-01 00:00+00'), ('2025-02-27 23:59:59+00'),
			   ('2025-02-28 00:00+00'), ('2025-04-29 12:00+00')) AS t(a);
SELECT apikey.next_refill('month', NULL, '2025-06-15 00:00+00')::text AS first_of_next_month,
	   apikey.next_refill(NULL, 3, now()) AS no_refill,
	   apikey.next_refill('day', NULL, 'infinity') AS never;
SELECT apikey.next_refill('week', NULL, now());
SELECT apikey.next_refill('month', 32, now());

-- what a plan may hold (the CHECK on apikey.keys and apikey_create's rule)
SELECT n, apikey.plan_valid(c, a, i, d) AS valid
  FROM (VALUES (1, NULL, NULL, NULL, NULL), (2, 0, NULL, NULL, NULL), (3, 1000000000000000, NULL, NULL, NULL),
			   (4, -1, NULL, NULL, NULL), (5, 1000000000000001, NULL, NULL, NULL),
			   (6, 10, 100, 'month', 31), (7, 10, 100, 'day', NULL), (8, 10, 100, 'week', NULL),
			   (9, 10, 100, NULL, NULL), (10, 10, NULL, 'day', NULL), (11, NULL, 100, 'day', NULL),
			   (12, 10, 100, 'day', 1), (13, 10, 100, 'month', 0), (14, 10, 100, 'month', 32),
			   (15, 10, -5, 'month', NULL), (16, 10, NULL, NULL, 5)) AS t(n, c, a, i, d)
 ORDER BY n;

\if :preloaded
--
-- apikey_create: a plan only from an administrator, by its rules (22023);
-- a refill without credits starts full
--
SELECT * FROM apikey.apikey_create('p', '{}', credits => -1);
SELECT * FROM apikey.apikey_create('p', '{}', credits => 1000000000000001);
SELECT * FROM apikey.apikey_create('p', '{}', credits => 5, refill_amount => 10);
SELECT * FROM apikey.apikey_create('p', '{}', credits => 5, refill_amount => 10, refill_interval => 'week');
SELECT * FROM apikey.apikey_create('p', '{}', credits => 5, refill_amount => 10, refill_interval => 'day', refill_day => 2);
SELECT * FROM apikey.apikey_create('p', '{}', credits => 5, refill_amount => 10, refill_interval => 'month', refill_day => 0);
SELECT count(*) AS keys FROM apikey.keys WHERE name = 'p';
SELECT key_id AS full_id FROM apikey.apikey_create('full', '{}', refill_amount => 7, refill_interval => 'month') \gset
SELECT credits, refill_amount, refill_interval, refill_day, credits_set_at IS NOT NULL AS stamped
  FROM apikey.keys WHERE id = :full_id;
CREATE ROLE regress_plans_mgr IN ROLE apikey_manager;
CREATE ROLE regress_plans_admin IN ROLE apikey_admin;
SET ROLE regress_plans_mgr;
SELECT * FROM apikey.apikey_create('m', '{}', credits => 5);
SELECT key_id AS mgr_id FROM apikey.apikey_create('m', '{}') \gset
UPDATE apikey.keys SET credits = 100 WHERE id = :mgr_id;
UPDATE apikey.keys SET refill_day = 3 WHERE id = :mgr_id;
SELECT credits, refill_amount, credits_remaining FROM apikey.key_status WHERE id = :mgr_id;
RESET ROLE;

--
-- verification: a VALID call takes its cost; the four-argument form costs
-- 1; 0 checks without taking; a balance smaller than the cost answers
-- QUOTA_EXCEEDED (429), with no retry_after when no refill comes, and
-- takes nothing; an unmetered key has no credits_remaining
--
SET ROLE regress_plans_admin;
SELECT key_id AS id, key AS k FROM apikey.apikey_create('metered', '{jobs:read}', credits => 5) \gset
SELECT key AS free FROM apikey.apikey_create('free', '{}') \gset
RESET ROLE;
SELECT v.code, v.http_status, v.credits_remaining, v.retry_after FROM apikey.apikey_verify(:'k') v;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 3) v;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 0) v;
SELECT v.code, v.http_status, v.credits_remaining, v.retry_after FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 2) v;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'k') v;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 0) v;
SELECT v.code, v.valid, v.credits_remaining FROM apikey.apikey_verify(:'free', '{}', NULL, NULL, 5) v;
-- a check that fails before the credits takes nothing and tells no balance;
-- missing_scopes names what the key lacks, in the order required
SELECT v.code, v.credits_remaining, v.missing_scopes
  FROM apikey.apikey_verify(:'k', '{jobs:write,jobs:read,billing:read}', NULL, NULL, 1) v;
SELECT v.code, v.missing_scopes FROM apikey.apikey_verify(:'k', '{jobs:read}', NULL, NULL, 0) v;
-- the caller's mistakes raise
SELECT v.code FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, -1) v;
SELECT v.code FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 1000001) v;
SELECT v.code FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, NULL) v;
SELECT v.code FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 1000000) v;

--
-- an administrator sets credits: the new value is the balance from that
-- commit on, even when it is the value the column had (uses before it are
-- not taken from it); an UPDATE that does not name credits changes nothing
--
SET ROLE regress_plans_admin;
UPDATE apikey.keys SET credits = 3 WHERE id = :id;
RESET ROLE;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 2) v;
SET ROLE regress_plans_admin;
UPDATE apikey.keys SET name = 'metered key' WHERE id = :id;
RESET ROLE;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 0) v;
SET ROLE regress_plans_admin;
UPDATE apikey.keys SET credits = 3 WHERE id = :id;
RESET ROLE;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 0) v;
-- in a transaction that rolls back, the top-up never happened
BEGIN;
UPDATE apikey.keys SET credits = 1000 WHERE id = :id;
ROLLBACK;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 0) v;
-- nor does a verification inside it: credits set in this transaction's
-- own, uncommitted row draw on the balance there is, and leave no trace
BEGIN;
UPDATE apikey.keys SET credits = 1000 WHERE id = :id;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 1) v;
ROLLBACK;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 0) v;
-- credits_set_at is the extension's: set by hand, refused
SET ROLE regress_plans_admin;
UPDATE apikey.keys SET credits_set_at = now() WHERE id = :id;
UPDATE apikey.keys SET credits = -5 WHERE id = :id;
UPDATE apikey.keys SET refill_amount = 10 WHERE id = :id;
UPDATE apikey.keys SET refill_amount = 10, refill_interval = 'fortnight' WHERE id = :id;
UPDATE apikey.keys SET refill_day = 32 WHERE id = :id;
RESET ROLE;
-- each change is audited, with old and new values
SELECT action, detail->'old'->'credits' AS old_credits, detail->'new'->'credits' AS new_credits,
	   (detail->'new') ? 'credits_set_at' AS restamped
  FROM apikey.audit WHERE key_id = :id AND action <> 'verify' ORDER BY id;

--
-- refunds: the credits a verification took come back when its transaction
-- (or subtransaction) aborts; not after a commit, and not with
-- apikey.refund_on_abort off
--
SET ROLE regress_plans_admin;
UPDATE apikey.keys SET credits = 10 WHERE id = :id;
RESET ROLE;
BEGIN;
SELECT v.credits_remaining FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 4) v;
ROLLBACK;
SELECT v.credits_remaining AS after_rollback FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 0) v;
BEGIN;
SELECT v.credits_remaining FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 1) v;
SAVEPOINT s;
SELECT v.credits_remaining FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 2) v;
SAVEPOINT t;
SELECT v.credits_remaining FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 3) v;
RELEASE SAVEPOINT t;
ROLLBACK TO SAVEPOINT s;
SELECT v.credits_remaining AS after_rollback_to FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 0) v;
COMMIT;
SELECT v.credits_remaining AS after_commit FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 0) v;
SELECT set_config('regress.k', :'k', false) IS NOT NULL AS set;
DO $$ BEGIN
	PERFORM apikey.apikey_verify(current_setting('regress.k'), '{}', NULL, NULL, 5);
	RAISE EXCEPTION 'fail after the draw';
EXCEPTION WHEN raise_exception THEN NULL;
END $$;
SET apikey.refund_on_abort = off;
BEGIN;
SELECT v.credits_remaining FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 2) v;
ROLLBACK;
RESET apikey.refund_on_abort;
SELECT v.credits_remaining AS kept FROM apikey.apikey_verify(:'k', '{}', NULL, NULL, 0) v;

--
-- with a rate limit: the bucket is checked first; a call refused by the
-- credits gives its token back
--
SET ROLE regress_plans_admin;
SELECT key AS both FROM apikey.apikey_create('both', '{}', rate_limit => 2, rate_window => '1 hour', credits => 1) \gset
RESET ROLE;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'both') v;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'both') v;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'both') v;
SET ROLE regress_plans_admin;
UPDATE apikey.keys SET credits = 5 WHERE name = 'both';
RESET ROLE;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'both') v;
SELECT v.code, v.credits_remaining, v.retry_after IS NOT NULL AS retry FROM apikey.apikey_verify(:'both') v;

--
-- refills at 00:00 UTC of the due day, set the balance (not add to it),
-- once per period, whatever the clock does (apikey.debug_now stands in
-- for it: a month passes without waiting)
--
SET apikey.debug_now = '2027-01-30 23:59:59';
SET ROLE regress_plans_admin;
SELECT key AS monthly FROM apikey.apikey_create('monthly', '{}', credits => 2, refill_amount => 3,
												refill_interval => 'month', refill_day => 31) \gset
SELECT key AS daily FROM apikey.apikey_create('daily', '{}', credits => 1, refill_amount => 1,
											  refill_interval => 'day') \gset
RESET ROLE;
SELECT v.code, v.credits_remaining, v.retry_after FROM apikey.apikey_verify(:'monthly', '{}', NULL, NULL, 2) v;
SELECT v.code, v.credits_remaining, v.retry_after FROM apikey.apikey_verify(:'monthly') v;
SELECT v.code, v.credits_remaining, v.retry_after FROM apikey.apikey_verify(:'daily') v;
SELECT v.code, v.credits_remaining, v.retry_after FROM apikey.apikey_verify(:'daily') v;
SET apikey.debug_now = '2027-01-31 00:00:00';
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'monthly') v;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'daily') v;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'daily') v;
-- February has no 31st: its last day
SET apikey.debug_now = '2027-02-27 23:59:59';
SELECT v.code, v.credits_remaining, v.retry_after FROM apikey.apikey_verify(:'monthly', '{}', NULL, NULL, 2) v;
SELECT v.code, v.credits_remaining, v.retry_after FROM apikey.apikey_verify(:'monthly', '{}', NULL, NULL, 2) v;
SET apikey.debug_now = '2027-02-28 00:00:00';
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'monthly', '{}', NULL, NULL, 0) v;
-- a clock set back refills nothing again
SET apikey.debug_now = '2027-02-27 12:00:00';
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'monthly', '{}', NULL, NULL, 3) v;
SET apikey.debug_now = '2027-02-28 00:00:01';
SELECT v.code, v.credits_remaining, v.retry_after FROM apikey.apikey_verify(:'monthly', '{}', NULL, NULL, 0) v;
-- a leap year's February 29th, after a month without a call
SET apikey.debug_now = '2028-02-28 23:00:00';
SELECT v.code, v.credits_remaining, v.retry_after FROM apikey.apikey_verify(:'monthly', '{}', NULL, NULL, 1) v;
SET apikey.debug_now = '2028-02-29 00:00:00';
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'monthly', '{}', NULL, NULL, 0) v;
SET apikey.debug_now = '2028-02-30 00:00:00';
SET apikey.debug_now = 'tomorrow';
RESET apikey.debug_now;

-- what the DBA's views show (key_status: as of the worker's last flush)
SELECT name, credits, refill_amount, refill_interval, refill_day, next_refill IS NOT NULL AS refills
  FROM apikey.key_status WHERE name IN ('metered key', 'monthly', 'daily', 'free') ORDER BY name;
SELECT k.name, s.credits_remaining
  FROM apikey.stats s JOIN apikey.keys k ON k.id = s.key_id
 WHERE s.scope = 'key' AND k.name IN ('metered key', 'monthly', 'daily', 'free') ORDER BY k.name;
-- managers see plans, not change them
SET ROLE regress_plans_mgr;
SELECT has_column_privilege('apikey.keys', 'credits', 'SELECT') AS sees,
	   has_column_privilege('apikey.keys', 'credits', 'UPDATE') AS changes;
RESET ROLE;

--
-- plans shared by an owner's keys (apikey.owners): checked after the key's
-- own, in the order key rate limit, owner rate limit, key credits, owner
-- credits; a call refused by a later one gives back what an earlier took
--
SET ROLE regress_plans_admin;
INSERT INTO apikey.owners (owner, managed_by, credits) VALUES ('regress-acme', 'regress_plans_mgr', -1);
INSERT INTO apikey.owners (owner, managed_by, rate_limit) VALUES ('regress-acme', 'regress_plans_mgr', 3);
INSERT INTO apikey.owners (owner, managed_by, credits, refill_amount, refill_interval)
	VALUES ('regress-acme', 'regress_plans_mgr', 5, 10, 'year');
INSERT INTO apikey.owners (owner, managed_by, credits, rate_limit, rate_window, credits_set_at)
	VALUES ('regress-acme', 'regress_plans_mgr', 5, 4, '1 hour', '2000-01-01');
SELECT owner, credits, rate_limit, credits_set_at > '2000-01-01' AS stamped_by_the_extension
  FROM apikey.owners WHERE owner = 'regress-acme';
UPDATE apikey.owners SET credits_set_at = now() WHERE owner = 'regress-acme';
SELECT key AS oa FROM apikey.apikey_create('oa', '{}', owner => 'regress-acme', credits => 3) \gset
RESET ROLE;
SET ROLE regress_plans_mgr;
SELECT key AS ob FROM apikey.apikey_create('ob', '{}', owner => 'regress-acme') \gset
UPDATE apikey.owners SET credits = 1000 WHERE owner = 'regress-acme';
SELECT owner, credits, rate_limit FROM apikey.owners;
RESET ROLE;
-- the owner's 5 credits and 4 tokens shared by both keys, oa's own 3 too
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'oa') v;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'ob', '{}', NULL, NULL, 2) v;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'oa', '{}', NULL, NULL, 2) v;
SELECT v.code, v.credits_remaining, v.retry_after FROM apikey.apikey_verify(:'ob', '{}', NULL, NULL, 1) v;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'ob', '{}', NULL, NULL, 0) v;
-- the owner's bucket is empty now (4 VALID calls); a top-up of the owner
-- applies at once, but its rate limit still refuses first
SET ROLE regress_plans_admin;
UPDATE apikey.owners SET credits = 100 WHERE owner = 'regress-acme';
RESET ROLE;
SELECT v.code, v.credits_remaining, v.retry_after IS NOT NULL AS retry FROM apikey.apikey_verify(:'ob') v;
-- without its rate limit: the new balance, and a key's own credits still
-- apply to it alone
SET ROLE regress_plans_admin;
UPDATE apikey.owners SET rate_limit = NULL, rate_window = NULL WHERE owner = 'regress-acme';
RESET ROLE;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'ob', '{}', NULL, NULL, 10) v;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'oa', '{}', NULL, NULL, 1) v;
-- a call the owner refuses reports the balances as they are after it (the
-- key's debit given back): the owner's 90, not the key's 200 - 100
SET ROLE regress_plans_admin;
SELECT key AS oc FROM apikey.apikey_create('oc', '{}', owner => 'regress-acme', credits => 200) \gset
RESET ROLE;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'oc', '{}', NULL, NULL, 100) v;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'oc', '{}', NULL, NULL, 0) v;
-- an owner's top-up in a transaction that verifies and rolls back leaves
-- nothing behind
BEGIN;
UPDATE apikey.owners SET credits = 5000 WHERE owner = 'regress-acme';
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'ob', '{}', NULL, NULL, 1) v;
ROLLBACK;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'ob', '{}', NULL, NULL, 0) v;
-- refunds reach the owner's balance too
BEGIN;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'ob', '{}', NULL, NULL, 50) v;
ROLLBACK;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'ob', '{}', NULL, NULL, 0) v;
-- registering an owner without a plan changes nothing for its keys
SET ROLE regress_plans_admin;
INSERT INTO apikey.owners (owner, managed_by) VALUES ('regress-plain', 'regress_plans_mgr');
SELECT key AS op FROM apikey.apikey_create('op', '{}', owner => 'regress-plain') \gset
RESET ROLE;
SELECT v.code, v.credits_remaining FROM apikey.apikey_verify(:'op', '{}', NULL, NULL, 7) v;
-- each change of apikey.owners is a "plan" row of the audit, seen by the
-- manager the owner is registered to
SELECT action, key_id, detail->>'op' AS op, detail->'old'->'credits' AS old_credits,
	   detail->'new'->'credits' AS new_credits, detail->'new' ? 'rate_limit' AS limit_changed
  FROM apikey.audit WHERE action = 'plan' AND detail->>'owner' LIKE 'regress-%' ORDER BY id;
SET ROLE regress_plans_mgr;
SELECT count(*) AS plan_rows_seen FROM apikey.audit WHERE action = 'plan';
RESET ROLE;
-- the owner's live balance in apikey.stats
SELECT scope, name, credits_remaining FROM apikey.stats WHERE scope = 'owner' AND name LIKE 'regress-%';
DELETE FROM apikey.keys WHERE name IN ('oa', 'ob', 'oc', 'op');
DELETE FROM apikey.owners WHERE owner LIKE 'regress-%';

DELETE FROM apikey.keys WHERE name IN ('metered key', 'free', 'both', 'monthly', 'daily', 'full', 'm');
DROP ROLE regress_plans_mgr;
DROP ROLE regress_plans_admin;
\endif
