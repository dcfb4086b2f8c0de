#!/usr/bin/env bash
# requests.sh: what a client of the example API sees, with curl.  Set KEY_A
# and KEY_B to keys of two tenants, e.g. (as a superuser):
#
#   SELECT key FROM apikey.apikey_create('acme app', '{todos:read,todos:write,rpc:whoami}', owner => 'acme');
#   SELECT key FROM apikey.apikey_create('globex reader', '{todos:read}', owner => 'globex',
#                                        db_role => 'todo_reader');
set -u
API=${API:-http://127.0.0.1:3000}

# who am I: the key's id, owner and the role the request runs as
curl -s -H "x-api-key: $KEY_A" "$API/rpc/whoami"; echo

# tenant A writes a todo and reads only its own
curl -s -H "x-api-key: $KEY_A" -H 'Content-Type: application/json' \
	-d '{"task": "rotate the backup keys"}' "$API/todos"
curl -s -H "x-api-key: $KEY_A" "$API/todos"; echo

# tenant B sees none of A's rows; its key runs as todo_reader, which may not write
curl -s -H "x-api-key: $KEY_B" "$API/todos"; echo
curl -s -i -H "x-api-key: $KEY_B" -H 'Content-Type: application/json' \
	-d '{"task": "no"}' "$API/todos" | head -n 1

# refusals: no key (401), a wrong key (401), a scope the key lacks (403)
curl -s -i "$API/todos" | grep -iE '^(HTTP|www-authenticate)'
curl -s -H "x-api-key: ak_not-a-key" "$API/todos"; echo
curl -s -i -H "x-api-key: $KEY_B" -X DELETE "$API/todos?id=eq.1" | head -n 1
