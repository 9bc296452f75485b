/**
 * Attack: cross-site request forgery against the admin API. Any web page open in a browser on the
 * gateway host can send `POST http://127.0.0.1:2580/queue/flush` as a CORS "simple request" (a
 * form post or `fetch(…, { mode: 'no-cors' })`: text/plain body, no preflight). Before the fix
 * the endpoint flushed the queue for any POST. Now: the Origin header is refused, the bearer token
 * is required, and state changes need Content-Type: application/json, which a simple request
 * cannot carry. Each refusal leaves the deferred message's next attempt unchanged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { httpRequest, startTestAdmin } from '../helpers/admin.ts';
import type { TestAdmin } from '../helpers/admin.ts';

describe('admin API: forged cross-origin requests change nothing', () => {
  let a: TestAdmin;
  before(async () => {
    a = await startTestAdmin();
  });
  after(async () => {
    await a?.close();
  });

  const assertUntouched = async (what: string): Promise<void> => {
    assert.equal(await a.nextAttempt(), a.nextAttemptAt, `${what}: the deferred message was not flushed`);
    assert.equal(a.kicks(), 0, `${what}: the queue manager was not woken`);
  };

  test('the browser form post: Origin, text/plain body, no token → refused', async () => {
    const r = await httpRequest(a.port, {
      method: 'POST',
      path: '/queue/flush',
      headers: { host: a.host, origin: 'http://evil.example', 'content-type': 'text/plain', 'content-length': '1' },
      body: 'x',
    });
    assert.equal(r.status, 403, r.body);
    await assertUntouched('form post');
    assert.ok(a.events.some((e) => e.event === 'admin.refused' && e.reason === 'origin'));
  });

  test('the same without Origin (a browser that omits it) and without a token → 401', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const r = await httpRequest(a.port, {
        method: 'POST',
        path: `/queue/${a.id}/retry`,
        headers: { host: a.host, 'content-type': type, 'content-length': '2' },
        body: '{}',
      });
      assert.equal(r.status, 401, `${type}: ${r.body}`);
    }
    await assertUntouched('no token');
  });

  test('even with the token, a simple-request content type cannot change state (415)', async () => {
    for (const type of [
      undefined,
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
    ]) {
      const r = await httpRequest(a.port, {
        method: 'POST',
        path: '/queue/flush',
        headers: {
          host: a.host,
          authorization: `Bearer ${a.tokens.admin}`,
          ...(type === undefined ? {} : { 'content-type': type }),
        },
      });
      assert.equal(r.status, 415, `${type ?? 'no content type'}: ${r.body}`);
    }
    await assertUntouched('simple content types');
  });

  test('with the token and JSON but an Origin → 403; GET on a state-changing path does nothing', async () => {
    const r = await httpRequest(a.port, {
      method: 'POST',
      path: '/queue/flush',
      headers: {
        host: a.host,
        origin: 'http://127.0.0.1:8080',
        authorization: `Bearer ${a.tokens.admin}`,
        'content-type': 'application/json',
      },
      body: '{}',
    });
    assert.equal(r.status, 403, r.body);
    for (const path of ['/queue/flush', `/queue/${a.id}/retry`]) {
      const g = await httpRequest(a.port, {
        method: 'GET',
        path,
        headers: { host: a.host, authorization: `Bearer ${a.tokens.admin}` },
      });
      assert.notEqual(g.status, 200, `GET ${path}: ${g.body}`);
    }
    await assertUntouched('origin with token, GET');
  });

  test('control: the legitimate request (token, application/json, no Origin) does flush', async () => {
    const r = await httpRequest(a.port, {
      method: 'POST',
      path: '/queue/flush',
      headers: { host: a.host, authorization: `Bearer ${a.tokens.admin}`, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(JSON.parse(r.body), { retried: 1 });
    assert.notEqual(await a.nextAttempt(), a.nextAttemptAt, 'flushed: due now');
    assert.equal(a.kicks(), 1);
    assert.ok(a.events.some((e) => e.event === 'admin.queue-retry' && e.who === 'admin' && e.msgId === null));
  });
});
