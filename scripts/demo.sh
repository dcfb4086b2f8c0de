#!/usr/bin/env bash
# demo.sh: install deps, build and install apikey, start a throwaway
# cluster, then create, verify and rotate a key and show the audit trail.
# Idempotent; the cluster is removed on exit.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
export REPO_ROOT

bash scripts/install-deps.sh
. scripts/build.sh
. scripts/cluster.sh
echo "== building and installing apikey"
apikey_build_install
echo "== starting a throwaway cluster (apikey preloaded: usage, rate limits, the log)"
cluster_start "shared_preload_libraries = 'apikey'" "apikey.flush_interval = 200"

psql -X -v ON_ERROR_STOP=1 --echo-queries -P pager=off <<'SQL'
CREATE EXTENSION apikey;

-- a key for a backup service: read jobs, write databases, one resource
SELECT key_id, key AS new_key
  FROM apikey.apikey_create('nightly backups', '{jobs:read,write:databases}',
                            prefix => 'dbackup', owner => 'team-42',
                            resources => '{db-1}',
                            expires_at => now() + interval '90 days') \gset

-- verify: valid, then the codes a backend sees for bad requests
SELECT code, http_status, key_id, name, scopes FROM apikey.apikey_verify(:'new_key', '{jobs:read}');
SELECT code, http_status FROM apikey.apikey_verify(:'new_key', '{read:databases}', 'db-1');
SELECT code, http_status FROM apikey.apikey_verify(:'new_key', '{jobs:delete}');
SELECT code, http_status FROM apikey.apikey_verify(:'new_key', '{}', 'db-2');
SELECT code, http_status FROM apikey.apikey_verify('dbackup_not-a-key');

-- rotate with a one-hour grace: old and new both verify for now
SELECT apikey.apikey_rotate(:key_id, '1 hour') AS rotated_key \gset
SELECT 'old' AS which, code FROM apikey.apikey_verify(:'new_key')
UNION ALL
SELECT 'new', code FROM apikey.apikey_verify(:'rotated_key');

-- disable it by plain SQL
UPDATE apikey.keys SET enabled = false WHERE id = :key_id;
SELECT code, http_status FROM apikey.apikey_verify(:'rotated_key');

-- PostgREST sends the request's headers, then calls the hook (db-pre-request);
-- the rest of its transaction sees the key's identity
UPDATE apikey.keys SET enabled = true WHERE id = :key_id;
BEGIN READ ONLY;
SELECT set_config('request.headers', json_build_object('x-api-key', :'rotated_key')::text, true) IS NOT NULL AS request_sent;
SELECT apikey.postgrest_pre_request();
SELECT apikey.current_key_id() = :key_id AS authenticated, apikey.current_owner() AS owner,
       apikey.has_scope('read:databases') AS may_read_databases;
COMMIT;
SELECT apikey.current_key_id() IS NULL AS identity_gone_after_commit;

-- a rate-limited key: 3 per minute, shared by every backend
SELECT key AS limited_key
  FROM apikey.apikey_create('rate limited', '{jobs:read}', rate_limit => 3,
                            rate_window => '1 minute') \gset
SELECT n, v.code, v.http_status, round(extract(epoch FROM v.retry_after)) AS retry_after_s
  FROM generate_series(1, 5) n, LATERAL apikey.apikey_verify(:'limited_key' || left('', n)) v;

-- usage and failures are written by the background worker, not by verify
SELECT pg_sleep(0.6);

-- what a DBA sees: no secret anywhere
SELECT id, name, hint, owner, scopes, state, expires_at IS NOT NULL AS expires,
       use_count, last_used_at IS NOT NULL AS used
  FROM apikey.key_status ORDER BY id;
SELECT scope, name, rate_limit, round(bucket_tokens::numeric, 2) AS tokens_left,
       verifications
  FROM apikey.stats ORDER BY scope, key_id;

-- the audit trail of every change (never a secret)
SELECT id, action, key_id, actor_current_user AS actor,
       coalesce(detail->'new'->>'name', detail->>'new_hint', detail->>'code',
                (detail->'new')::text) AS what
  FROM apikey.audit ORDER BY id;
SQL

echo "== demo done (cluster removed)"
