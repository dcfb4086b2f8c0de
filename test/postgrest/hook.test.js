'use strict';
/*
 * hook.test.js: apikey.postgrest_pre_request() behind the PostgREST 12
 * replay, with the example's settings (apikey.postgrest_scopes = path,
 * PGRST errors, a key required): every verification code a request can
 * reach, the key header's forms, JWT requests, forgeries.
 */
const { test, before } = require('node:test');
const assert = require('node:assert/strict');
const {
	TARGETS, JWT_SECRET, sql, waitUntil, setup, newKey, client, rpc, json, assertNoSecret, assertRefused, signJwt,
} = require('./lib.js');

before(setup);

/* the hook's verdict on a raw request.headers value, sent by hand */
async function rawHeaders(pool, headersJson) {
	const c = await pool.connect();
	try {
		await c.query('BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY');
		await c.query({
			text: `select set_config('role', 'web_anon', true), set_config('request.jwt.claims', '{"role":"web_anon"}', true),
				set_config('request.method', 'GET', true), set_config('request.path', '/rpc/probe', true),
				set_config('request.headers', $1, true)`,
			values: [headersJson],
		});
		await c.query('select "apikey"."postgrest_pre_request"()');
		return null;
	} catch (e) {
		return e;
	} finally {
		await c.query('ABORT');
		c.release();
	}
}

for (const target of TARGETS) {
	const t = target.name;

	test(`${t}: a valid key: whoami and the settings show its id, owner and scopes`, async () => {
		const k = await newKey({ owner: 'acme', scopes: ['todos:read', 'rpc:*'] });
		const r = client(target);
		const res = await rpc(r, 'whoami', { 'x-api-key': k.key });
		assert.equal(res.status, 200, res.body);
		assert.deepEqual(json(res), { key_id: k.id, owner: 'acme', role: 'web_anon', can_write: false });
		const p = json(await rpc(r, 'probe', { 'x-api-key': k.key }));
		assert.equal(p.key_id_setting, String(k.id));
		assert.equal(p.owner_setting, 'acme');
		assert.equal(p.scopes_setting, '{todos:read,rpc:*}');
		assert.equal(p.read_only, 'on');
		assertNoSecret(res, k.key);
	});

	test(`${t}: MALFORMED: garbage, a wrong checksum, a bad prefix`, async () => {
		const k = await newKey();
		const r = client(target);
		const last = k.key.at(-1) === 'A' ? 'B' : 'A';
		for (const bad of ['hello', `${k.key.slice(0, -1)}${last}`, `AK${k.key.slice(2)}`, `${k.key} `]) {
			const res = await rpc(r, 'whoami', { 'x-api-key': bad });
			assertRefused(res, 401, 'MALFORMED', { keys: [k.key, bad] });
		}
	});

	test(`${t}: NOT_FOUND after the key is deleted`, async () => {
		const k = await newKey();
		const r = client(target);
		assert.equal((await rpc(r, 'whoami', { 'x-api-key': k.key })).status, 200);
		await sql('DELETE FROM apikey.keys WHERE id = $1', [k.id]);
		const body = assertRefused(await rpc(r, 'whoami', { 'x-api-key': k.key }), 401, 'NOT_FOUND', { keys: [k.key] });
		assert.equal(body.message, 'API key not found');
	});

	test(`${t}: NOT_FOUND for the old secret after rotation without grace`, async () => {
		const k = await newKey({ owner: 'rot' });
		const { rows } = await sql('SELECT apikey.apikey_rotate($1) AS key', [k.id]);
		const r = client(target);
		assertRefused(await rpc(r, 'whoami', { 'x-api-key': k.key }), 401, 'NOT_FOUND', { keys: [k.key, rows[0].key] });
		const res = await rpc(r, 'whoami', { 'x-api-key': rows[0].key });
		assert.equal(res.status, 200);
		assert.equal(json(res).key_id, k.id);
	});

	test(`${t}: rotation with grace: the old secret works until the grace ends`, async () => {
		const k = await newKey({ owner: 'grace' });
		/* a grace the two requests fit in on a loaded machine; then wait until the server's clock is past it */
		const { rows } = await sql("SELECT apikey.apikey_rotate($1, '5 seconds') AS key", [k.id]);
		const r = client(target);
		for (const key of [k.key, rows[0].key]) {
			const res = await rpc(r, 'whoami', { 'x-api-key': key });
			assert.equal(res.status, 200, res.body);
			assert.equal(json(res).key_id, k.id);
		}
		await waitUntil('SELECT now() > grace_until FROM apikey.keys WHERE id = $1', [k.id]);
		assertRefused(await rpc(r, 'whoami', { 'x-api-key': k.key }), 401, 'NOT_FOUND', { keys: [k.key, rows[0].key] });
		assert.equal((await rpc(r, 'whoami', { 'x-api-key': rows[0].key })).status, 200);
	});

	test(`${t}: DISABLED`, async () => {
		const k = await newKey();
		await sql('UPDATE apikey.keys SET enabled = false WHERE id = $1', [k.id]);
		assertRefused(await rpc(client(target), 'whoami', { 'x-api-key': k.key }), 401, 'DISABLED', { keys: [k.key] });
	});

	test(`${t}: EXPIRED`, async () => {
		const k = await newKey();
		await sql("UPDATE apikey.keys SET expires_at = now() - interval '1 second' WHERE id = $1", [k.id]);
		assertRefused(await rpc(client(target), 'whoami', { 'x-api-key': k.key }), 401, 'EXPIRED', { keys: [k.key] });
	});

	test(`${t}: INSUFFICIENT_SCOPE from the path: <table>:write, rpc:<function>`, async () => {
		const k = await newKey({ owner: 'scoped', scopes: ['todos:read'] });
		const r = client(target);
		const h = { 'x-api-key': k.key };
		assert.equal((await r.request({ method: 'GET', path: '/todos', headers: h })).status, 200);
		let body = assertRefused(await r.request({ method: 'POST', path: '/todos', headers: h, body: { task: 'x' } }),
			403, 'INSUFFICIENT_SCOPE', { keys: [k.key] });
		assert.match(body.details, /"todos:write"/);
		body = assertRefused(await rpc(r, 'whoami', h), 403, 'INSUFFICIENT_SCOPE', { keys: [k.key] });
		assert.match(body.details, /"rpc:whoami"/);
		const { rows } = await sql("SELECT count(*)::int AS n FROM api.todos WHERE tenant = 'scoped'");
		assert.equal(rows[0].n, 0);
	});

	test(`${t}: IP_DENIED for a key with allowed_cidrs when the client address is unknown`, async () => {
		const k = await newKey({ allowed_cidrs: ['10.0.0.0/8'] });
		assertRefused(await rpc(client(target), 'whoami', { 'x-api-key': k.key, 'x-forwarded-for': '10.1.2.3' }),
			403, 'IP_DENIED', { keys: [k.key] });
	});

	test(`${t}: the header name in any case reaches the hook lower-cased`, async () => {
		const k = await newKey();
		const r = client(target);
		for (const name of ['X-API-KEY', 'X-Api-Key', 'x-api-key']) {
			const res = await rpc(r, 'probe', { [name]: k.key, 'User-Agent': 'replay' });
			assert.equal(res.status, 200, res.body);
			assert.deepEqual(json(res).header_names, ['user-agent', 'x-api-key']);
			assert.equal(json(res).key_id, k.id);
		}
	});

	test(`${t}: a repeated key header: the last one wins, as in PostgREST`, async () => {
		const k = await newKey();
		const r = client(target);
		const res = await rpc(r, 'whoami', [['X-Api-Key', 'ak_wrong'], ['x-api-key', k.key]]);
		assert.equal(res.status, 200, res.body);
		assert.equal(json(res).key_id, k.id);
		assertRefused(await rpc(r, 'whoami', [['x-api-key', k.key], ['X-API-KEY', 'ak_wrong']]), 401, 'MALFORMED', { keys: [k.key] });
	});

	test(`${t}: an empty or a 10 kB key header is MALFORMED and never echoed`, async () => {
		const r = client(target);
		const k = await newKey();
		const long = `ak_${k.key.slice(3)}${'x'.repeat(10240)}`;
		for (const bad of ['', long]) {
			const res = await rpc(r, 'whoami', { 'x-api-key': bad });
			const body = assertRefused(res, 401, 'MALFORMED', { keys: [k.key, bad] });
			assert.equal(body.message, 'API key is malformed');
			assert.ok(res.body.length < 512);
		}
	});

	test(`${t}: no key and no JWT: 401 asking for a key`, async () => {
		const res = await rpc(client(target), 'whoami', { accept: 'application/json' });
		const body = assertRefused(res, 401, 'MALFORMED');
		assert.equal(body.message, 'API key required');
	});

	test(`${t}: a JWT request without a key is left alone (identity NULL)`, async () => {
		const r = client(target);
		const token = signJwt({ role: 'web_anon', sub: 'user-1', exp: Math.floor(Date.now() / 1000) + 60 });
		const res = await rpc(r, 'probe', { authorization: `Bearer ${token}` });
		assert.equal(res.status, 200, res.body);
		const p = json(res);
		assert.equal(p.key_id, null);
		assert.equal(p.owner, null);
		assert.equal(p.user, 'web_anon');
		assert.deepEqual(Object.keys(p.claims), ['exp', 'role', 'sub']);
		assertNoSecret(res, JWT_SECRET);
		/* a JWT whose only claim is role is not a verified user: a key is required */
		assertRefused(await rpc(r, 'whoami', { authorization: `Bearer ${signJwt({ role: 'web_anon' })}` }), 401, 'MALFORMED');
	});

	test(`${t}: a JWT and a key: the key is checked and sets the identity`, async () => {
		const k = await newKey({ owner: 'both' });
		const r = client(target);
		const bearer = `Bearer ${signJwt({ role: 'web_anon', sub: 'user-2' })}`;
		const res = await rpc(r, 'whoami', { authorization: bearer, 'x-api-key': k.key });
		assert.equal(json(res).owner, 'both');
		assertRefused(await rpc(r, 'whoami', { authorization: bearer, 'x-api-key': 'ak_bad' }), 401, 'MALFORMED', { keys: [k.key] });
	});

	test(`${t}: Bearer with an API key or a bad JWT: 401 PGRST301 before any SQL`, async () => {
		const k = await newKey();
		const r = client(target);
		const tokens = [k.key, signJwt({ role: 'web_anon', sub: 'x' }, 'another secret'),
			signJwt({ role: 'web_anon', exp: Math.floor(Date.now() / 1000) - 3600 })];
		for (const token of tokens) {
			const res = await rpc(r, 'whoami', { Authorization: `Bearer ${token}`, 'x-api-key': k.key });
			assert.equal(res.status, 401);
			assert.equal(json(res).code, 'PGRST301');
			assert.match(res.headers['www-authenticate'], /^Bearer error="invalid_token", error_description="/);
			assert.deepEqual(res.sent, []);
			assertNoSecret(res, k.key, JWT_SECRET);
		}
	});

	test(`${t}: a key in a cookie, another header, another scheme or a JWT claim is no key`, async () => {
		const k = await newKey({ owner: 'hidden' });
		const r = client(target);
		for (const req of [
			{ cookies: { 'x-api-key': k.key } },
			{ headers: { 'x-api-key-2': k.key, apikey: k.key } },
			{ headers: { authorization: `ApiKey ${k.key}` } },
		])
			assertRefused(await r.request({ method: 'GET', path: '/rpc/whoami', ...req }), 401, 'MALFORMED', { keys: [k.key] });
		const jwt = signJwt({ role: 'web_anon', 'x-api-key': k.key, sub: 'u' });
		const res = await rpc(r, 'whoami', { authorization: `Bearer ${jwt}` });
		assert.equal(res.status, 200);
		assert.equal(json(res).key_id, null);
	});

	test(`${t}: request.headers with the key nested, in an array or twice is refused`, async () => {
		const k = await newKey();
		const r = client(target);
		for (const headers of [
			{ forwarded: { 'x-api-key': k.key } },
			['x-api-key', k.key],
			{ 'x-api-key': k.key, 'X-API-KEY': k.key },
		]) {
			const e = await rawHeaders(r.pool, JSON.stringify(headers));
			assert.ok(e, `accepted ${JSON.stringify(headers).slice(0, 40)}`);
			assert.equal(e.code, 'PGRST');
			assert.equal(JSON.parse(e.message).code, 'MALFORMED');
			assert.ok(!JSON.stringify(e).includes(k.key.slice(3, 15)));
		}
	});

	test(`${t}: identity settings sent with the role settings do not forge an identity`, async () => {
		const a = await newKey({ owner: 'tenant-a' });
		const b = await newKey({ owner: 'tenant-b' });
		const forged = { 'apikey.key_id': String(b.id), 'apikey.owner': 'tenant-b', 'apikey.scopes': '{*}' };
		const r = client(target, { roleSettings: { web_anon: forged } });
		const withKey = await rpc(r, 'probe', { 'x-api-key': a.key });
		const noKey = await rpc(r, 'probe', {});
		for (const res of [withKey, noKey]) {
			assertNoSecret(res, a.key, b.key);
			if (res.status === 200) {
				assert.equal(json(res).key_id, a.id);
				assert.equal(json(res).owner, 'tenant-a');
			} else
				assert.ok([401, 500].includes(res.status), res.body);
		}
		assert.notEqual(noKey.status, 200);
	});

	test(`${t}: SET or set_config of the identity inside a request fails`, async () => {
		const k = await newKey({ owner: 'tenant-a' });
		const r = client(target);
		for (const fn of ['forge_owner', 'forge_key_id']) {
			const res = await r.request({ method: 'POST', path: `/rpc/${fn}`, headers: { 'x-api-key': k.key }, body: {} });
			// the request's role may not set a superuser-only setting: 42501,
			// which PostgREST answers with 401 for its anonymous role
			assert.equal(res.status, 401, res.body);
			assert.equal(json(res).code, '42501');
			assertNoSecret(res, k.key);
		}
	});
}
