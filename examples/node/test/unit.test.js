// The server's pure helpers, without a database: key extraction, the
// response for each failed verification (429 included, which the suite
// cannot produce for real yet), the rotation warning headers.

'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { extractKey, clientAddr, graceHeaders, rejection, VERIFY_SQL } = require('../server.js');

const KEY = 'ak_4fQk2m0Vb9XyT1cL8pRzA7sWnE3hJ6uDqG0a2Kx1';

// a failed apikey.verification row, as pg returns it
function failed(code, http_status, extra = {}) {
	return {
		valid: false, code, http_status, key_id: null, name: null, owner: null, scopes: null,
		resources: null, meta: null, expires_at: null, retry_after: null, grace_until: null,
		retry_after_seconds: null, ...extra,
	};
}

test('429 RATE_LIMITED → Retry-After in whole seconds, JSON body, no WWW-Authenticate', () => {
	const r = rejection(failed('RATE_LIMITED', 429, { key_id: '7', retry_after_seconds: 30 }), { scopes: ['jobs:read'] });
	assert.equal(r.status, 429);
	assert.equal(r.headers['Retry-After'], '30');
	assert.equal(r.headers['WWW-Authenticate'], undefined);
	assert.equal(r.body.error, 'RATE_LIMITED');
	assert.match(r.body.message, /30 s/);
	assert.deepEqual(Object.keys(r.body).sort(), ['error', 'message']);
});

test('429 without a usable retry_after still tells the client to wait at least a second', () => {
	for (const s of [null, undefined, 0]) {
		const r = rejection(failed('RATE_LIMITED', 429, { retry_after_seconds: s }));
		assert.equal(r.headers['Retry-After'], '1');
	}
});

test('401 codes carry WWW-Authenticate invalid_token; no key at all carries a bare challenge', () => {
	for (const code of ['MALFORMED', 'NOT_FOUND', 'DISABLED', 'EXPIRED']) {
		const r = rejection(failed(code, 401));
		assert.equal(r.status, 401);
		assert.equal(r.headers['WWW-Authenticate'], 'Bearer realm="api", error="invalid_token"');
		assert.equal(r.body.error, code);
		assert.equal(r.headers['Retry-After'], undefined);
	}
	const none = rejection(failed('MALFORMED', 401), { keyPresented: false });
	assert.equal(none.headers['WWW-Authenticate'], 'Bearer realm="api"');
	assert.match(none.body.message, /X-API-Key/);
});

test('403 and 404 codes', () => {
	const scope = rejection(failed('INSUFFICIENT_SCOPE', 403), { scopes: ['jobs:write'] });
	assert.equal(scope.status, 403);
	assert.equal(scope.headers['WWW-Authenticate'], 'Bearer realm="api", error="insufficient_scope", scope="jobs:write"');
	const ip = rejection(failed('IP_DENIED', 403));
	assert.equal(ip.status, 403);
	assert.equal(ip.headers['WWW-Authenticate'], undefined);
	const res = rejection(failed('RESOURCE_DENIED', 404));
	assert.deepEqual(res, { status: 404, headers: {}, body: { error: 'RESOURCE_DENIED', message: 'Not found.' } });
});

test('an old secret in its grace period refused with 403/404/429 still gets the rotation headers', () => {
	const r = rejection(failed('INSUFFICIENT_SCOPE', 403, { grace_until: new Date('2031-02-03T04:05:06Z') }), { scopes: ['x'] });
	assert.equal(r.headers.Sunset, 'Mon, 03 Feb 2031 04:05:06 GMT');
	// but not when the key itself is refused (e.g. disabled during its grace period)
	const off = rejection(failed('DISABLED', 401, { grace_until: new Date('2031-02-03T04:05:06Z') }));
	assert.equal(off.headers.Sunset, undefined);
});

test('graceHeaders: nothing without grace_until; Deprecation, Sunset (HTTP date), Warning with it', () => {
	assert.deepEqual(graceHeaders(null), {});
	assert.deepEqual(graceHeaders(new Date('2030-01-02T03:04:05.678Z')), {
		Deprecation: 'true',
		Sunset: 'Wed, 02 Jan 2030 03:04:05 GMT',
		Warning: '299 - "API key was rotated; switch to the new key before Wed, 02 Jan 2030 03:04:05 GMT"',
	});
});

test('extractKey: Bearer (any case) first, then X-API-Key, else null', () => {
	assert.equal(extractKey({ authorization: `Bearer ${KEY}` }), KEY);
	assert.equal(extractKey({ authorization: `bearer  ${KEY} ` }), KEY);
	assert.equal(extractKey({ 'x-api-key': ` ${KEY}` }), KEY);
	assert.equal(extractKey({ authorization: `Bearer ${KEY}`, 'x-api-key': 'other' }), KEY);
	assert.equal(extractKey({ authorization: 'Basic dXNlcjpwYXNz', 'x-api-key': KEY }), KEY);
	assert.equal(extractKey({ authorization: 'Basic dXNlcjpwYXNz' }), null);
	assert.equal(extractKey({ authorization: 'Bearer ' }), null);
	assert.equal(extractKey({ 'x-api-key': '' }), null);
	assert.equal(extractKey({}), null);
});

test('clientAddr: socket address as inet text, IPv6 zone dropped', () => {
	assert.equal(clientAddr('::ffff:127.0.0.1'), '::ffff:127.0.0.1');
	assert.equal(clientAddr('fe80::1%eth0'), 'fe80::1');
	assert.equal(clientAddr(undefined), null);
});

test('VERIFY_SQL: schema-qualified, bind parameters, in FROM', () => {
	assert.match(VERIFY_SQL, /FROM apikey\.apikey_verify\(\$1, \$2, \$3, \$4\) v$/);
});
