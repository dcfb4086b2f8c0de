'use strict';
/*
 * leak.test.js: on ONE pooled server connection (a pool of one client,
 * directly or through pgbouncer's transaction pooling), a sequence of
 * requests (a key with a db_role, a request that fails after the hook
 * succeeded, a refused key, an anonymous request, another key) never
 * carries an identity, a role or a request setting into the next request
 * or into the session between them.  Anonymous requests need
 * apikey.require_key = off.
 */
const { test, before } = require('node:test');
const assert = require('node:assert/strict');
const { TARGETS, sql, setup, newKey, client, configure, rpc, json, assertNoSecret } = require('./lib.js');

before(async () => {
	await setup();
	await configure({ 'apikey.require_key': 'off' });
});

/* what the session itself holds between two requests */
const SESSION = `SELECT pg_backend_pid() AS pid, current_user AS "user", current_setting('role') AS role,
	nullif(current_setting('apikey.key_id', true), '') AS key_id,
	nullif(current_setting('apikey.owner', true), '') AS owner,
	nullif(current_setting('apikey.scopes', true), '') AS scopes,
	nullif(current_setting('request.headers', true), '') AS headers`;

for (const target of TARGETS) {
	const t = target.name;

	test(`${t}: one server connection: no identity, role or header outlives its request`, async () => {
		const reader = await newKey({ owner: 'leak-a', db_role: 'todo_reader' });
		const gone = await newKey({ owner: 'leak-gone' });
		await sql('DELETE FROM apikey.keys WHERE id = $1', [gone.id]);
		const other = await newKey({ owner: 'leak-b' });
		const r = client(target, { max: 1 });
		const pids = new Set();
		const probe = async (headers, expect) => {
			const res = await rpc(r, 'probe', headers);
			assert.equal(res.status, 200, res.body);
			const p = json(res);
			pids.add(p.pid);
			assert.deepEqual({ user: p.user, key_id: p.key_id, owner: p.owner }, expect);
			assert.equal(p.key_id_setting || null, expect.key_id === null ? null : String(expect.key_id));
		};
		const clean = async () => {
			const { rows } = await r.pool.query({ text: SESSION, queryMode: 'extended' });
			pids.add(rows[0].pid);
			assert.deepEqual({ ...rows[0], pid: 0 },
				{ pid: 0, user: 'authenticator', role: 'none', key_id: null, owner: null, scopes: null, headers: null });
		};

		await probe({ 'x-api-key': reader.key }, { user: 'todo_reader', key_id: reader.id, owner: 'leak-a' });
		await clean();
		const failed = await r.request({ method: 'POST', path: '/todos', headers: { 'x-api-key': reader.key }, body: { task: 'x' } });
		assert.equal(failed.status, 401);
		assert.equal(json(failed).code, '42501');
		assertNoSecret(failed, reader.key);
		await clean();
		const refused = await rpc(r, 'probe', { 'x-api-key': gone.key });
		assert.equal(json(refused).code, 'NOT_FOUND');
		assertNoSecret(refused, gone.key);
		await clean();
		await probe({}, { user: 'web_anon', key_id: null, owner: null });
		await clean();
		await probe({ 'x-api-key': other.key }, { user: 'web_anon', key_id: other.id, owner: 'leak-b' });
		await clean();
		assert.equal(pids.size, 1, `expected one server connection, saw ${[...pids]}`);
	});

	test(`${t}: anonymous with apikey.require_key = off: 200 as web_anon, identity NULL`, async () => {
		const r = client(target);
		const res = await rpc(r, 'whoami', {});
		assert.equal(res.status, 200, res.body);
		assert.deepEqual(json(res), { key_id: null, owner: null, role: 'web_anon', can_write: false });
		/* a key that fails is still refused */
		const bad = await rpc(r, 'whoami', { 'x-api-key': 'ak_nope_but_long_enough' });
		assert.equal(bad.status, 401);
		assertNoSecret(bad, 'ak_nope_but_long_enough');
	});
}
