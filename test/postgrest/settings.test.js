'use strict';
/*
 * settings.test.js: the hook's settings as a DBA sets them, per role
 * (ALTER ROLE authenticator SET ...), picked up by new connections:
 * apikey.postgrest_errors (PGRST for PostgREST 12+, plain PTxyz for 11),
 * apikey.header, apikey.client_addr_header, apikey.postgrest_scopes.
 */
const { test, before } = require('node:test');
const assert = require('node:assert/strict');
const { TARGETS, setup, newKey, client, configure, rpc, json, assertNoSecret, assertRefused } = require('./lib.js');

before(setup);

for (const target of TARGETS) {
	const t = target.name;

	test(`${t}: PGRST errors (the default) under PostgREST 11 become 400 "PGRST"`, async () => {
		await configure();
		const k = await newKey();
		const res = await rpc(client(target, { version: 11 }), 'whoami', { 'x-api-key': `${k.key}x` });
		/* v11 gives SQLSTATE PGRST no meaning: hence apikey.postgrest_errors = plain */
		assert.equal(res.status, 400);
		assert.equal(json(res).code, 'PGRST');
		assert.equal(JSON.parse(json(res).message).code, 'MALFORMED');
		assertNoSecret(res, k.key);
	});

	test(`${t}: apikey.postgrest_errors = plain: PT401/PT403 as PostgREST 11 and 12 map them`, async () => {
		await configure({ 'apikey.postgrest_errors': 'plain' });
		const k = await newKey({ scopes: ['todos:read'] });
		for (const version of [11, 12]) {
			const r = client(target, { version });
			let res = await rpc(r, 'whoami', { 'x-api-key': `${k.key.slice(0, -6)}AAAAAA` });
			/* PostgREST: the message is the reason phrase; it adds the Bearer challenge */
			assert.equal(res.status, 401, res.body);
			assert.equal(json(res).code, 'PT401');
			assert.equal(res.statusText, json(res).message);
			assert.equal(res.headers['www-authenticate'], 'Bearer');
			assert.match(json(res).hint, /x-api-key/);
			assertNoSecret(res, k.key);
			res = await rpc(r, 'whoami', { 'x-api-key': k.key });
			assert.equal(res.status, 403, res.body);
			assert.equal(json(res).code, 'PT403');
			assert.equal(res.headers['www-authenticate'], undefined);
			assertNoSecret(res, k.key);
			res = await r.request({ method: 'GET', path: '/todos', headers: { 'x-api-key': k.key } });
			assert.equal(res.status, 200, res.body);
		}
	});

	test(`${t}: apikey.header = 'apikey': the key travels in the apikey header`, async () => {
		await configure({ 'apikey.header': 'apikey' });
		const k = await newKey({ owner: 'hdr' });
		const r = client(target);
		for (const name of ['apikey', 'ApiKey']) {
			const res = await rpc(r, 'whoami', { [name]: k.key });
			assert.equal(res.status, 200, res.body);
			assert.equal(json(res).owner, 'hdr');
		}
		const body = assertRefused(await rpc(r, 'whoami', { 'x-api-key': k.key }), 401, 'MALFORMED',
			{ keys: [k.key], header: 'apikey' });
		assert.equal(body.message, 'API key required');
		assert.match(body.hint, /\bapikey header/);
	});

	test(`${t}: apikey.client_addr_header: allowed_cidrs checked against the proxy's last entry`, async () => {
		await configure({ 'apikey.client_addr_header': 'x-forwarded-for' });
		const k = await newKey({ allowed_cidrs: ['10.0.0.0/8'] });
		const r = client(target);
		for (const xff of ['203.0.113.9, 10.1.2.3', '10.9.9.9', '::ffff:10.0.0.1']) {
			const res = await rpc(r, 'whoami', { 'x-api-key': k.key, 'X-Forwarded-For': xff });
			assert.equal(res.status, 200, `${xff}: ${res.body}`);
		}
		for (const xff of ['10.1.2.3, 203.0.113.9', 'garbage', undefined]) {
			const res = await rpc(r, 'whoami', { 'x-api-key': k.key, ...(xff && { 'X-Forwarded-For': xff }) });
			assertRefused(res, 403, 'IP_DENIED', { keys: [k.key] });
		}
	});

	test(`${t}: apikey.postgrest_scopes = off: no scope is required from the path`, async () => {
		await configure({ 'apikey.postgrest_scopes': 'off' });
		const k = await newKey({ owner: `${t}-noscope`, scopes: ['reports:read'] });
		const r = client(target);
		assert.equal((await rpc(r, 'whoami', { 'x-api-key': k.key })).status, 200);
		const res = await r.request({ method: 'POST', path: '/todos', headers: { 'x-api-key': k.key }, body: { task: 't' } });
		assert.equal(res.status, 201, res.body);
	});
}
