'use strict';
/*
 * rls.test.js: the example schema's tenants.  api.todos has a row-level
 * security policy tenant = apikey.current_owner(): a key of tenant A never
 * reads or writes tenant B's rows, in READ ONLY (GET) and READ WRITE
 * (POST/PATCH/DELETE) transactions.  A key with db_role todo_reader gets
 * exactly that role's grants.
 */
const { test, before } = require('node:test');
const assert = require('node:assert/strict');
const { TARGETS, sql, setup, newKey, client, json, assertNoSecret, signJwt } = require('./lib.js');

before(setup);

/* a row of each tenant, written by the superuser */
async function seed(a, b) {
	const { rows } = await sql(
		'INSERT INTO api.todos (tenant, task) VALUES ($1, $3), ($2, $3) RETURNING id, tenant',
		[a, b, 'seeded']);
	return Object.fromEntries(rows.map((r) => [r.tenant, Number(r.id)]));
}

async function row(id) {
	const { rows } = await sql('SELECT tenant, task, done FROM api.todos WHERE id = $1', [id]);
	return rows[0];
}

for (const target of TARGETS) {
	const t = target.name;
	const A = `${t}-tenant-a`;
	const B = `${t}-tenant-b`;

	test(`${t}: GET (READ ONLY) returns only the key's tenant's rows`, async () => {
		const ids = await seed(A, B);
		const a = await newKey({ owner: A });
		const r = client(target);
		const h = { 'x-api-key': a.key };
		const res = await r.request({ method: 'GET', path: '/todos', headers: h });
		assert.equal(res.status, 200, res.body);
		assert.match(res.sent[0].text, /READ ONLY$/);
		const tenants = new Set(json(res).map((x) => x.tenant));
		assert.deepEqual([...tenants], [A]);
		const other = await r.request({ method: 'GET', path: '/todos', query: { id: `eq.${ids[B]}` }, headers: h });
		assert.deepEqual(json(other), []);
		assert.equal(other.headers['content-range'], '*/*');
	});

	test(`${t}: POST (READ WRITE) writes the key's tenant, never another's`, async () => {
		const a = await newKey({ owner: A });
		const r = client(target);
		const h = { 'x-api-key': a.key, Prefer: 'return=representation' };
		const res = await r.request({ method: 'POST', path: '/todos', headers: h, body: { task: 'mine' } });
		assert.equal(res.status, 201, res.body);
		assert.match(res.sent[0].text, /READ WRITE$/);
		assert.equal(json(res)[0].tenant, A);
		/* WITH CHECK fails: 42501 for PostgREST's anonymous role: 401 */
		const before = (await sql('SELECT count(*)::int AS n FROM api.todos WHERE tenant = $1', [B])).rows[0].n;
		const bad = await r.request({ method: 'POST', path: '/todos', headers: h, body: { task: 'theirs', tenant: B } });
		assert.equal(bad.status, 401, bad.body);
		assert.equal(json(bad).code, '42501');
		assert.equal(bad.headers['www-authenticate'], 'Bearer');
		assert.equal(bad.sent.at(-1).text, 'ABORT');
		assertNoSecret(bad, a.key);
		assert.equal((await sql('SELECT count(*)::int AS n FROM api.todos WHERE tenant = $1', [B])).rows[0].n, before);
	});

	test(`${t}: PATCH and DELETE of another tenant's row change nothing`, async () => {
		const ids = await seed(A, B);
		const a = await newKey({ owner: A });
		const r = client(target);
		const h = { 'x-api-key': a.key };
		const q = { id: `eq.${ids[B]}` };
		let res = await r.request({ method: 'PATCH', path: '/todos', query: q, headers: h, body: { done: true, task: 'hijacked' } });
		assert.equal(res.status, 204, res.body);
		res = await r.request({ method: 'PATCH', path: '/todos', query: q, headers: { ...h, Prefer: 'return=representation' }, body: { done: true } });
		assert.deepEqual(json(res), []);
		res = await r.request({ method: 'DELETE', path: '/todos', query: q, headers: h });
		assert.equal(res.status, 204, res.body);
		assert.deepEqual(await row(ids[B]), { tenant: B, task: 'seeded', done: false });
		/* the same requests do change the key's own row */
		res = await r.request({ method: 'PATCH', path: '/todos', query: { id: `eq.${ids[A]}` }, headers: { ...h, Prefer: 'return=representation' }, body: { done: true } });
		assert.equal(json(res)[0].done, true);
		await r.request({ method: 'DELETE', path: '/todos', query: { id: `eq.${ids[A]}` }, headers: h });
		assert.equal(await row(ids[A]), undefined);
	});

	test(`${t}: a db_role key gets that role's grants: GET yes, POST 401 (42501)`, async () => {
		await seed(A, B);
		const k = await newKey({ owner: A, db_role: 'todo_reader' });
		const r = client(target);
		const h = { 'x-api-key': k.key };
		const who = await r.request({ method: 'GET', path: '/rpc/whoami', headers: h });
		assert.equal(json(who).role, 'todo_reader');
		const res = await r.request({ method: 'GET', path: '/todos', headers: h });
		assert.equal(res.status, 200, res.body);
		assert.deepEqual([...new Set(json(res).map((x) => x.tenant))], [A]);
		for (const req of [
			{ method: 'POST', path: '/todos', body: { task: 'no' } },
			{ method: 'DELETE', path: '/todos', query: { tenant: `eq.${A}` } },
		]) {
			const bad = await r.request({ ...req, headers: h });
			/* PostgREST maps 42501 by the JWT role, web_anon here: 401, not 403 */
			assert.equal(bad.status, 401, bad.body);
			assert.equal(json(bad).code, '42501');
			assert.match(json(bad).message, /permission denied for table todos/);
			assert.equal(bad.headers['www-authenticate'], 'Bearer');
			assertNoSecret(bad, k.key);
		}
	});

	test(`${t}: a key whose db_role the authenticator cannot switch to is refused`, async () => {
		const k = await newKey({ owner: A, db_role: 'replay_stranger' });
		const res = await client(target).request({ method: 'GET', path: '/todos', headers: { 'x-api-key': k.key } });
		assert.equal(res.status, 403, res.body);
		assert.equal(json(res).code, 'ROLE_REFUSED');
		assertNoSecret(res, k.key);
	});

	test(`${t}: a JWT request (no key, so no owner) sees no tenant's rows`, async () => {
		await seed(A, B);
		const r = client(target);
		const res = await r.request({
			method: 'GET', path: '/todos', headers: { authorization: `Bearer ${signJwt({ role: 'web_anon', sub: 'u' })}` },
		});
		assert.equal(res.status, 200, res.body);
		assert.deepEqual(json(res), []);
	});
}
