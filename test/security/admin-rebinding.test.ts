/**
 * Attack: DNS rebinding. A page at http://evil.example:2580/ whose name is re-pointed to
 * 127.0.0.1 talks to the admin endpoint as a same-origin page: no Origin header on GET, and it
 * reads the answers (every envelope in the queue). What gives it away is the Host header, which
 * carries the page's name. The endpoint answers only to its own address:port or localhost:port.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { httpRequest, startTestAdmin } from '../helpers/admin.ts';
import type { TestAdmin } from '../helpers/admin.ts';

describe('admin API: a rebinding Host is refused', () => {
  let a: TestAdmin;
  before(async () => {
    a = await startTestAdmin();
  });
  after(async () => {
    await a?.close();
  });

  test('Host: evil.example (with or without the port, token or not) → 421, nothing read', async () => {
    const hosts = [
      `evil.example:${a.port}`,
      'evil.example',
      `127.0.0.1.evil.example:${a.port}`,
      `127.0.0.1:${a.port + 1}`,
    ];
    for (const host of hosts) {
      for (const auth of [undefined, `Bearer ${a.tokens.admin}`]) {
        for (const path of ['/queue', `/queue/${a.id}`, '/metrics']) {
          const r = await httpRequest(a.port, {
            method: 'GET',
            path,
            headers: { host, ...(auth === undefined ? {} : { authorization: auth }) },
          });
          assert.equal(r.status, 421, `${host} ${path}: ${r.body}`);
          assert.doesNotMatch(r.body, new RegExp(a.id), 'no queue data in the answer');
          assert.doesNotMatch(r.body, /far\.example/);
        }
      }
    }
    const r = await httpRequest(a.port, {
      method: 'DELETE',
      path: `/queue/${a.id}`,
      headers: { host: 'evil.example' },
    });
    assert.equal(r.status, 421);
    assert.notEqual(await a.spool.get(a.id), null, 'not deleted');
    assert.ok(a.events.some((e) => e.event === 'admin.refused' && e.reason === 'host'));
  });

  test('a request without Host is refused too', async () => {
    const r = await httpRequest(a.port, {
      method: 'GET',
      path: '/queue',
      headers: { authorization: `Bearer ${a.tokens.admin}` },
    });
    assert.notEqual(r.status, 200);
  });

  test('control: its own address:port and localhost:port are served', async () => {
    for (const host of [`127.0.0.1:${a.port}`, `localhost:${a.port}`, `LOCALHOST:${a.port}`]) {
      const r = await httpRequest(a.port, {
        method: 'GET',
        path: '/queue',
        headers: { host, authorization: `Bearer ${a.tokens.admin}` },
      });
      assert.equal(r.status, 200, `${host}: ${r.body}`);
      assert.match(r.body, new RegExp(a.id));
    }
  });
});
