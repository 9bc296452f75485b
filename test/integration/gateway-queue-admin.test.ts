/**
 * `postern queue delete` against a running gateway while that message's delivery is in flight:
 * the delivery then finds its message gone (readMessage / updateRecipients throw
 * queue-not-found). That must be logged, not become an unhandled rejection, which would take
 * the whole server down (Node exits on unhandled rejections).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { makeCert } from '../helpers/certs.ts';
import { openSession, startTestGateway, waitFor } from '../helpers/gateway.ts';
import type { TestGateway } from '../helpers/gateway.ts';
import { run } from './peers/proc.ts';

const BIN = fileURLToPath(new URL('../../bin/postern.js', import.meta.url));

describe('postern queue delete of a message in flight', { timeout: 60_000 }, () => {
  let g: TestGateway;
  let sink: Server;
  const held: Socket[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => {
    unhandled.push(e);
  };

  before(async () => {
    process.on('unhandledRejection', onUnhandled);
    // A next hop that accepts the TCP connection and then says nothing: the delivery hangs
    // (waiting for the greeting) until the test lets go.
    sink = createServer((s) => {
      s.on('error', () => undefined);
      held.push(s);
    });
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    const port = (sink.address() as { port: number }).port;
    const cert = await makeCert({ subject: 'CN=mx.postern.test', dnsNames: ['mx.postern.test'] });
    g = await startTestGateway({
      certPem: cert.pem,
      keyPem: cert.keyPem,
      listeners: [{ name: 'mx', mode: 'starttls', role: 'mx', auth: 'none' }],
      relay: { domains: ['slow.test'] },
      routes: { 'slow.test': `127.0.0.1:${port}` },
    });
  });

  after(async () => {
    for (const s of held) s.destroy();
    await new Promise<void>((resolve) => sink.close(() => resolve()));
    await g?.close();
    process.off('unhandledRejection', onUnhandled);
  });

  test('is logged, and the server keeps running', async () => {
    const c = await openSession(g.port['mx'] as number);
    let id: string;
    try {
      assert.equal((await c.cmd('MAIL FROM:<a@client.example>')).code, 250);
      assert.equal((await c.cmd('RCPT TO:<b@slow.test>')).code, 250);
      assert.equal((await c.cmd('DATA')).code, 354);
      const done = await c.cmd('Subject: slow\r\n\r\nbody\r\n.');
      assert.equal(done.code, 250, done.raw);
      id = /queued as (\S+)/.exec(done.text)?.[1] ?? '';
    } finally {
      c.close();
    }
    await waitFor(() => (held.length > 0 ? true : null), 10_000, 'the delivery to connect to the silent next hop');

    const del = await run(process.execPath, [BIN, 'queue', 'delete', id, '--config', g.configPath], {
      timeoutMs: 30_000,
    });
    assert.equal(del.code, 0, del.stderr);
    assert.deepEqual(JSON.parse(del.stdout), { deleted: id });
    assert.equal(await g.gw.spool.get(id), null);

    // Let the delivery finish (connection dropped → deferred) against the deleted message.
    for (const s of held) s.destroy();
    const logged = await waitFor(
      () => g.logs.find((l) => l['event'] === 'qmgr.deliver-error' && l['msgId'] === id) ?? null,
      10_000,
      'the in-flight delivery to notice the deletion',
    );
    assert.match(String(logged['err']), /no queued message/);
    assert.deepEqual(unhandled, []);

    // Still serving: SMTP and the admin API answer, and the queue is empty.
    const again = await openSession(g.port['mx'] as number);
    assert.equal((await again.cmd('QUIT')).code, 221);
    again.close();
    const list = await run(process.execPath, [BIN, 'queue', 'list', '--config', g.configPath], { timeoutMs: 30_000 });
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^queued: 0 {2}deferred: 0 {2}delivered: 0 {2}bounced: 0\n$/);
  });
});
