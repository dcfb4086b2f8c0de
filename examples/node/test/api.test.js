// The example API over real HTTP: the server runs in this process and
// verifies keys through pgbouncer as app_backend; the test creates, rotates,
// disables and deletes keys as the superuser over the cluster's unix socket.
// Needs PGHOST, PGPORT, PGBOUNCER_PORT, APIKEY_APP_PASSWORD, APIKEY_TEST_DB
// (test/run.sh sets them up).

'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const pg = require('pg');
const { createServer, listen } = require('../server.js');

const env = process.env;
let admin; // superuser connection, for key administration
let server;
let base; // http://127.0.0.1:PORT
let dualStack; // the server listens on :: (IPv4 clients appear as ::ffff:a.b.c.d)
const logLines = [];
const secrets = []; // every key created or rotated in this run
let responsesChecked = 0;

before(async () => {
	for (const v of ['PGHOST', 'PGPORT', 'PGBOUNCER_PORT', 'APIKEY_APP_PASSWORD', 'APIKEY_TEST_DB'])
		assert.ok(env[v], `${v} must be set: run examples/node/test/run.sh`);
	admin = new pg.Client({ host: env.PGHOST, port: Number(env.PGPORT), user: 'postgres', database: env.APIKEY_TEST_DB });
	await admin.connect();
	server = createServer({
		db: {
			host: '127.0.0.1', port: Number(env.PGBOUNCER_PORT), user: 'app_backend',
			password: env.APIKEY_APP_PASSWORD, database: env.APIKEY_TEST_DB,
		},
		log: (line) => logLines.push(line),
	});
	const addr = await listen(server, 0);
	dualStack = addr.family === 'IPv6';
	base = `http://127.0.0.1:${addr.port}`;
});

after(async () => {
	if (server) await new Promise((resolve) => server.close(resolve));
	if (admin) await admin.end();
});

// ---- helpers ----

async function createKey(name, scopes, { owner = 'acme', expiresAt = null, resources = null, cidrs = null } = {}) {
	const { rows: [r] } = await admin.query(
		`SELECT key_id, key FROM apikey.apikey_create($1, $2, expires_at => $3, owner => $4,
		        resources => $5, allowed_cidrs => $6)`,
		[name, scopes, expiresAt, owner, resources, cidrs]);
	secrets.push(r.key);
	return { id: r.key_id, key: r.key };
}

async function rotate(id, grace = '0') {
	const { rows: [r] } = await admin.query('SELECT apikey.apikey_rotate($1, $2::interval) AS key', [id, grace]);
	secrets.push(r.key);
	return r.key;
}

// An HTTP request to the example server; every response is checked for
// every key this run has seen, in its headers and in its body.
async function call(path, { key, header = 'bearer', method = 'GET', body, host } = {}) {
	const headers = {};
	if (key !== undefined && header === 'bearer') headers.Authorization = `Bearer ${key}`;
	if (key !== undefined && header === 'x-api-key') headers['X-API-Key'] = key;
	if (body !== undefined) headers['Content-Type'] = 'application/json';
	const res = await fetch((host ? base.replace('127.0.0.1', host) : base) + path, {
		method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
	});
	const text = await res.text();
	const raw = [...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n') + '\n' + text;
	for (const s of secrets) {
		assert.ok(!raw.includes(s), `response to ${method} ${path} contains a key`);
		assert.ok(!raw.includes(s.slice(-38)), `response to ${method} ${path} contains a key's secret`);
	}
	responsesChecked++;
	return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

function assertRejected(r, status, code) {
	assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${JSON.stringify(r.body)}`);
	assert.equal(r.body.error, code);
	assert.equal(typeof r.body.message, 'string');
	assert.deepEqual(Object.keys(r.body).sort(), ['error', 'message']);
	assert.match(r.headers.get('content-type'), /^application\/json/);
	assert.equal(r.headers.get('deprecation'), null);
	if (status === 401)
		assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="api", error="invalid_token"');
	else if (code !== 'INSUFFICIENT_SCOPE')
		assert.equal(r.headers.get('www-authenticate'), null);
}

function assertNoGraceHeaders(r) {
	for (const h of ['deprecation', 'sunset', 'warning'])
		assert.equal(r.headers.get(h), null, `unexpected ${h} header`);
}

// ---- tests ----

test('valid key (Authorization: Bearer) → 200 with key_id and owner', async () => {
	const k = await createKey('reader', ['jobs:read'], { owner: 'acme' });
	const r = await call('/jobs', { key: k.key });
	assert.equal(r.status, 200);
	assert.deepEqual(r.body, { key_id: k.id, owner: 'acme', jobs: [] });
	assert.equal(r.headers.get('cache-control'), 'no-store');
	assert.equal(r.headers.get('www-authenticate'), null);
	assertNoGraceHeaders(r);
});

test('valid key in X-API-Key, and a lower-case bearer scheme', async () => {
	const k = await createKey('reader-x', ['jobs:read']);
	const r = await call('/jobs', { key: k.key, header: 'x-api-key' });
	assert.equal(r.status, 200);
	assert.equal(r.body.key_id, k.id);
	const res = await fetch(base + '/jobs', { headers: { authorization: `bearer ${k.key}` } });
	assert.equal(res.status, 200);
	await res.text();
});

test('POST /jobs with jobs:write → 201; write implies read; jobs are per owner', async () => {
	const w = await createKey('writer', ['jobs:write'], { owner: 'initech' });
	const created = await call('/jobs', { key: w.key, method: 'POST', body: { name: 'nightly backup' } });
	assert.equal(created.status, 201);
	assert.equal(created.body.owner, 'initech');
	assert.equal(created.body.job.name, 'nightly backup');
	assert.equal(created.body.job.created_by_key, w.id);

	const listed = await call('/jobs', { key: w.key });
	assert.equal(listed.status, 200, 'jobs:write satisfies jobs:read');
	assert.deepEqual(listed.body.jobs.map((j) => j.name), ['nightly backup']);

	const other = await createKey('other-tenant', ['jobs:read'], { owner: 'globex' });
	assert.deepEqual((await call('/jobs', { key: other.key })).body.jobs, []);

	const bad = await call('/jobs', { key: w.key, method: 'POST', body: '{not json' });
	assert.equal(bad.status, 400);
	assert.equal(bad.body.error, 'BAD_REQUEST');
});

test('no key → 401 MALFORMED with a bare WWW-Authenticate; a key in the query string is ignored', async () => {
	const k = await createKey('query-string', ['jobs:read']);
	for (const path of ['/jobs', `/jobs?api_key=${encodeURIComponent(k.key)}`]) {
		const r = await call(path);
		assert.equal(r.status, 401);
		assert.equal(r.body.error, 'MALFORMED');
		assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="api"');
	}
	// authentication comes before the body is read
	const post = await call('/jobs', { method: 'POST', body: '{not json' });
	assert.equal(post.status, 401);
});

test('malformed keys → 401 MALFORMED', async () => {
	const k = await createKey('checksum', ['jobs:read']);
	const last = k.key.at(-1);
	const badChecksum = k.key.slice(0, -1) + (last === 'A' ? 'B' : 'A');
	secrets.push(badChecksum);
	for (const key of ['hello', 'ak_short', badChecksum, 'x'.repeat(5000)]) {
		const r = await call('/jobs', { key });
		assertRejected(r, 401, 'MALFORMED');
	}
	const r = await call('/jobs', { key: badChecksum, header: 'x-api-key' });
	assertRejected(r, 401, 'MALFORMED');
});

test('deleted key → 401 NOT_FOUND', async () => {
	const k = await createKey('to-delete', ['jobs:read']);
	assert.equal((await call('/jobs', { key: k.key })).status, 200);
	await admin.query('DELETE FROM apikey.keys WHERE id = $1', [k.id]);
	assertRejected(await call('/jobs', { key: k.key }), 401, 'NOT_FOUND');
});

test('disabled key → 401 DISABLED, and 200 again once re-enabled', async () => {
	const k = await createKey('to-disable', ['jobs:read']);
	await admin.query('UPDATE apikey.keys SET enabled = false WHERE id = $1', [k.id]);
	assertRejected(await call('/jobs', { key: k.key }), 401, 'DISABLED');
	await admin.query('UPDATE apikey.keys SET enabled = true WHERE id = $1', [k.id]);
	assert.equal((await call('/jobs', { key: k.key })).status, 200);
});

test('expired key → 401 EXPIRED', async () => {
	const k = await createKey('expiring', ['jobs:read'], { expiresAt: new Date(Date.now() + 3600e3) });
	assert.equal((await call('/jobs', { key: k.key })).status, 200);
	await admin.query("UPDATE apikey.keys SET expires_at = now() - interval '1 second' WHERE id = $1", [k.id]);
	assertRejected(await call('/jobs', { key: k.key }), 401, 'EXPIRED');
});

test('missing scope → 403 INSUFFICIENT_SCOPE naming the scope; nothing is written', async () => {
	const k = await createKey('read-only', ['jobs:read'], { owner: 'umbrella' });
	const r = await call('/jobs', { key: k.key, method: 'POST', body: { name: 'sneaky' } });
	assertRejected(r, 403, 'INSUFFICIENT_SCOPE');
	assert.equal(r.headers.get('www-authenticate'),
		'Bearer realm="api", error="insufficient_scope", scope="jobs:write"');
	assert.match(r.body.message, /jobs:write/);
	assert.deepEqual((await call('/jobs', { key: k.key })).body.jobs, []);
	assertRejected(await call('/databases/db-1', { key: k.key }), 403, 'INSUFFICIENT_SCOPE');
});

test('allowed_cidrs excluding the client → 403 IP_DENIED', async () => {
	const k = await createKey('office-only', ['jobs:read'], { cidrs: ['10.0.0.0/8'] });
	assertRejected(await call('/jobs', { key: k.key }), 403, 'IP_DENIED');
});

test('IPv4 client 127.0.0.1 (::ffff:127.0.0.1 on a dual-stack server) matches 127.0.0.0/8 → 200', async () => {
	const k = await createKey('loopback-only', ['jobs:read'], { cidrs: ['127.0.0.0/8'] });
	const r = await call('/whoami', { key: k.key });
	assert.equal(r.status, 200);
	assert.equal(r.body.client_addr, dualStack ? '::ffff:127.0.0.1' : '127.0.0.1');
	assert.equal((await call('/jobs', { key: k.key })).status, 200);
});

test('IPv6 client ::1 is outside 127.0.0.0/8 → 403 IP_DENIED, inside ::1/128 → 200', async (t) => {
	if (!dualStack) return t.skip('no IPv6 on this host');
	try {
		await fetch(base.replace('127.0.0.1', '[::1]') + '/nowhere').then((r) => r.text());
	} catch {
		return t.skip('::1 is not reachable');
	}
	const v4 = await createKey('v4-loopback', ['jobs:read'], { cidrs: ['127.0.0.0/8'] });
	assertRejected(await call('/jobs', { key: v4.key, host: '[::1]' }), 403, 'IP_DENIED');
	const v6 = await createKey('v6-loopback', ['jobs:read'], { cidrs: ['::1/128'] });
	const r = await call('/whoami', { key: v6.key, host: '[::1]' });
	assert.equal(r.status, 200);
	assert.equal(r.body.client_addr, '::1');
});

test('key bound to db-1 → 200 on db-1, 404 RESOURCE_DENIED on db-2, same as a missing id', async () => {
	const k = await createKey('db-1 only', ['databases:read'], { resources: ['db-1'] });
	const ok = await call('/databases/db-1', { key: k.key });
	assert.equal(ok.status, 200);
	assert.equal(ok.body.database.id, 'db-1');
	assert.equal(ok.body.key_id, k.id);

	const denied = await call('/databases/db-2', { key: k.key });
	assertRejected(denied, 404, 'RESOURCE_DENIED');

	const all = await createKey('all databases', ['databases:read']);
	assert.equal((await call('/databases/db-2', { key: all.key })).status, 200);
	const missing = await call('/databases/db-404', { key: all.key });
	assert.equal(missing.status, 404);
	assert.deepEqual(missing.body, denied.body, 'a key cannot tell a foreign id from a missing one');
});

test('rotated without grace: old key → 401 NOT_FOUND, new key → 200 (same key_id)', async () => {
	const k = await createKey('rotate-now', ['jobs:read']);
	assert.equal((await call('/jobs', { key: k.key })).status, 200);
	const fresh = await rotate(k.id);
	assert.notEqual(fresh, k.key);
	assertRejected(await call('/jobs', { key: k.key }), 401, 'NOT_FOUND');
	const r = await call('/jobs', { key: fresh });
	assert.equal(r.status, 200);
	assert.equal(r.body.key_id, k.id);
	assertNoGraceHeaders(r);
});

test('rotated with a grace period: old key → 200 with Deprecation/Sunset/Warning, new key → 200 without', async () => {
	const k = await createKey('rotate-grace', ['jobs:read']);
	const before = Date.now();
	const fresh = await rotate(k.id, '1 hour');

	const old = await call('/jobs', { key: k.key });
	assert.equal(old.status, 200);
	assert.equal(old.body.key_id, k.id);
	assert.equal(old.headers.get('deprecation'), 'true');
	const sunset = old.headers.get('sunset');
	assert.match(sunset, /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
	const hour = 3600e3;
	assert.ok(Math.abs(Date.parse(sunset) - before - hour) < 60e3, `Sunset ${sunset} is not in an hour`);
	assert.equal(old.headers.get('warning'),
		`299 - "API key was rotated; switch to the new key before ${sunset}"`);

	const who = await call('/whoami', { key: k.key });
	assert.equal(new Date(who.body.grace_until).toUTCString(), sunset);

	const r = await call('/jobs', { key: fresh });
	assert.equal(r.status, 200);
	assert.equal(r.body.key_id, k.id);
	assertNoGraceHeaders(r);
	assert.equal((await call('/whoami', { key: fresh })).body.grace_until, null);
});

test('old secret in its grace period: 403 keeps the rotation headers, disabled → 401 without them', async () => {
	const k = await createKey('rotate-grace-refused', ['jobs:read']);
	await rotate(k.id, '10 minutes');
	const scope = await call('/jobs', { key: k.key, method: 'POST', body: { name: 'x' } });
	assert.equal(scope.status, 403);
	assert.equal(scope.body.error, 'INSUFFICIENT_SCOPE');
	assert.equal(scope.headers.get('deprecation'), 'true');
	assert.ok(scope.headers.get('sunset'));
	await admin.query('UPDATE apikey.keys SET enabled = false WHERE id = $1', [k.id]);
	assertRejected(await call('/jobs', { key: k.key }), 401, 'DISABLED');
});

test('concurrent requests through the pooler each get their own answer', async () => {
	const reader = await createKey('concurrent-reader', ['jobs:read'], { owner: 'hooli' });
	const gone = await createKey('concurrent-gone', ['jobs:read']);
	await admin.query('DELETE FROM apikey.keys WHERE id = $1', [gone.id]);
	const cases = [];
	for (let i = 0; i < 60; i++) {
		if (i % 3 === 0) cases.push([{ key: reader.key }, 200, null]);
		if (i % 3 === 1) cases.push([{ key: reader.key, method: 'POST', body: { name: 'x' } }, 403, 'INSUFFICIENT_SCOPE']);
		if (i % 3 === 2) cases.push([{ key: gone.key }, 401, 'NOT_FOUND']);
	}
	const results = await Promise.all(cases.map(([opts]) => call('/jobs', opts)));
	results.forEach((r, i) => {
		const [, status, code] = cases[i];
		assert.equal(r.status, status, `request ${i}`);
		if (code) assert.equal(r.body.error, code);
		else assert.equal(r.body.owner, 'hooli');
	});
});

test('unknown endpoint → 404 NO_ROUTE, wrong method → 405 with Allow', async () => {
	const r = await call('/nope');
	assert.equal(r.status, 404);
	assert.equal(r.body.error, 'NO_ROUTE');
	const m = await call('/jobs', { method: 'DELETE' });
	assert.equal(m.status, 405);
	assert.equal(m.headers.get('allow'), 'GET, POST');
});

test('database unreachable → 503 UNAVAILABLE: fails closed', async () => {
	const k = await createKey('while-down', ['jobs:read']);
	// a port that nothing listens on
	const probe = require('node:net').createServer();
	await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
	const deadPort = probe.address().port;
	await new Promise((resolve) => probe.close(resolve));

	const down = createServer({ db: { host: '127.0.0.1', port: deadPort, user: 'app_backend', database: 'x' } });
	const addr = await listen(down, 0);
	try {
		const res = await fetch(`http://127.0.0.1:${addr.port}/jobs`, { headers: { Authorization: `Bearer ${k.key}` } });
		const text = await res.text();
		assert.equal(res.status, 503);
		assert.equal(JSON.parse(text).error, 'UNAVAILABLE');
		assert.ok(!text.includes(k.key));
	} finally {
		await new Promise((resolve) => down.close(resolve));
	}
});

test('no response and no server log line contained a key', () => {
	assert.ok(responsesChecked >= 80, `only ${responsesChecked} responses checked`);
	assert.ok(secrets.length >= 20);
	assert.ok(logLines.length >= 80, 'the server logs every request');
	for (const line of logLines)
		for (const s of secrets)
			assert.ok(!line.includes(s.slice(-38)), `log line contains a key: ${line.slice(0, 20)}...`);
	assert.ok(logLines.some((l) => l === 'GET /jobs 403 IP_DENIED'), 'log lines carry the code');
});
