'use strict';
/*
 * metering.test.js: metered keys through PostgREST's transactions (needs
 * shared_preload_libraries: scripts/test.sh runs it against its preloaded
 * server).  Each request draws its cost (1, or apikey.postgrest_costs by
 * path); an exhausted key is 429 QUOTA_EXCEEDED, with Retry-After when a
 * refill comes; a request that fails after the hook (PostgREST aborts)
 * gets its credits back.
 */
const { test, before } = require('node:test');
const assert = require('node:assert/strict');
const { TARGETS, setup, sql, newKey, client, configure, rpc, json, assertNoSecret } = require('../lib.js');

before(setup);

/* the key's balance now, without taking anything */
async function balance(key) {
	const { rows } = await sql("SELECT (apikey.apikey_verify($1, '{}', NULL, NULL, 0)).credits_remaining AS b", [key]);
	return Number(rows[0].b);
}

for (const target of TARGETS) {
	const t = target.name;

	test(`${t}: each request draws one credit; an exhausted key is 429 QUOTA_EXCEEDED`, async () => {
		await configure();
		const k = await newKey({ credits: 2 });
		const r = client(target);
		for (let i = 0; i < 2; i++) {
			const res = await rpc(r, 'probe', { 'x-api-key': k.key });
			assert.equal(res.status, 200, res.body);
		}
		const res = await rpc(r, 'probe', { 'x-api-key': k.key });
		assert.equal(res.status, 429, res.body);
		assert.equal(json(res).code, 'QUOTA_EXCEEDED');
		assert.equal(res.headers['retry-after'], undefined, 'no refill comes: no Retry-After');
		assert.equal(res.sent.at(-1).text, 'ABORT');
		assertNoSecret(res, k.key);
		assert.equal(await balance(k.key), 0);
	});

	test(`${t}: with a refill, the 429 says when, in Retry-After`, async () => {
		await configure();
		const k = await newKey({ credits: 0, refill_amount: 5, refill_interval: 'day' });
		const res = await rpc(client(target), 'probe', { 'x-api-key': k.key });
		assert.equal(res.status, 429, res.body);
		const { rows } = await sql("SELECT ceil(extract(epoch FROM date_trunc('day', now(), 'UTC') + interval '1 day' - now()))::int AS s");
		const retry = Number(res.headers['retry-after']);
		assert.ok(retry >= 1 && Math.abs(retry - rows[0].s) <= 2, `Retry-After ${retry}, next midnight UTC in ${rows[0].s} s`);
		assert.match(json(res).hint, /refilled in \d+ seconds/);
	});

	test(`${t}: a request that fails after the hook gets its credit back`, async () => {
		await configure();
		const k = await newKey({ credits: 10 });
		const r = client(target);
		const res = await rpc(r, 'raise_plain', { 'x-api-key': k.key });
		assert.equal(res.status, 400, res.body);
		assert.equal(res.sent.at(-1).text, 'ABORT');
		assert.equal(await balance(k.key), 10, 'the aborted request took nothing');
		const ok = await rpc(r, 'probe', { 'x-api-key': k.key });
		assert.equal(ok.status, 200, ok.body);
		assert.equal(ok.sent.at(-1).text, 'COMMIT');
		assert.equal(await balance(k.key), 9, 'the committed one took its credit');
	});

	test(`${t}: apikey.postgrest_costs prices requests by path, never by what the client sends`, async () => {
		await configure({ 'apikey.postgrest_costs': '/rpc/probe=3, /todo*=2' });
		const k = await newKey({ credits: 10 });
		const r = client(target);
		let res = await rpc(r, 'probe', { 'x-api-key': k.key, 'x-cost': '0' });
		assert.equal(res.status, 200, res.body);
		assert.equal(await balance(k.key), 7, '/rpc/probe costs 3');
		res = await r.request({ method: 'GET', path: '/todos', headers: { 'x-api-key': k.key } });
		assert.equal(res.status, 200, res.body);
		assert.equal(await balance(k.key), 5, '/todos matches /todo*: 2');
		res = await rpc(r, 'whoami', { 'x-api-key': k.key });
		assert.equal(res.status, 200, res.body);
		assert.equal(await balance(k.key), 4, 'an unlisted path costs 1');
		await configure();
	});
}
