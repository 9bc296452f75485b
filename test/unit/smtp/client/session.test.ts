/**
 * The outbound client against scripted SMTP servers on loopback: PIPELINING framing (RFC 2920),
 * lock-step without it, per-recipient results, DATA bytes on the wire, HELO fallback, and
 * replies nobody asked for.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { SmtpClient } from '../../../../src/smtp/client/session.ts';
import type { OutboundTransaction } from '../../../../src/smtp/client/session.ts';
import { SmtpClientError } from '../../../../src/smtp/client/errors.ts';
import { ConnectionPool } from '../../../../src/smtp/client/pool.ts';

interface Script {
  ehlo: string[];
  /** Called with each command line other than EHLO/RSET/QUIT; writes its own replies. */
  onLine?: (line: string, s: Socket, state: ServerState) => void;
}

interface ServerState {
  chunks: string[];
  lines: string[];
  data: Buffer | null;
  inData: boolean;
  dataBuf: string[];
}

const servers: Server[] = [];
const sockets = new Set<Socket>();
after(() => {
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
});

/** A raw server: `greet` on connect, then `onData` for every chunk. */
async function rawServer(greet: string, onData: (d: string, s: Socket) => void): Promise<number> {
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.write(greet);
    s.on('data', (d: Buffer) => onData(d.toString('latin1'), s));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

/** A minimal scripted SMTP server; records what arrived in which TCP chunk. */
async function scripted(script: Script): Promise<{ port: number; state: ServerState }> {
  const state: ServerState = { chunks: [], lines: [], data: null, inData: false, dataBuf: [] };
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    let buf = '';
    s.write('220 test ESMTP\r\n');
    s.on('data', (chunk: Buffer) => {
      state.chunks.push(chunk.toString('latin1'));
      buf += chunk.toString('latin1');
      for (let nl = buf.indexOf('\r\n'); nl !== -1; nl = buf.indexOf('\r\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (state.inData) {
          if (line === '.') {
            state.inData = false;
            state.data = Buffer.from(state.dataBuf.join(''), 'latin1');
            s.write('250 2.0.0 queued\r\n');
          } else state.dataBuf.push(line + '\r\n');
          continue;
        }
        state.lines.push(line);
        const verb = line.split(' ')[0]?.toUpperCase();
        if (verb === 'EHLO')
          s.write(['test', ...script.ehlo].map((l, i, a) => `250${i === a.length - 1 ? ' ' : '-'}${l}\r\n`).join(''));
        else if (verb === 'QUIT') s.end('221 bye\r\n');
        else if (verb === 'RSET') s.write('250 ok\r\n');
        else script.onLine?.(line, s, state);
      }
    });
    s.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  assert.ok(addr !== null && typeof addr === 'object');
  return { port: addr.port, state };
}

const tx = (rcpts: string[]): OutboundTransaction => ({
  mailFrom: 'a@example.org',
  recipients: rcpts.map((address) => ({ address, dsn: { notify: null, orcpt: null } })),
  body: '7BIT',
  smtputf8: false,
  requireTls: false,
  dsnRet: null,
  dsnEnvid: null,
});

const connect = (port: number): Promise<SmtpClient> =>
  SmtpClient.connect({
    host: 'mx.test',
    address: '127.0.0.1',
    port,
    heloName: 'client.test',
    timeouts: {
      greetingMs: 2000,
      mailMs: 2000,
      rcptMs: 2000,
      dataInitMs: 2000,
      dataEndMs: 2000,
      ehloMs: 2000,
      shortMs: 2000,
    },
  });

describe('SmtpClient', () => {
  it('PIPELINING: MAIL, every RCPT and DATA leave in one write, before any reply (RFC 2920 §3.1)', async () => {
    // This server answers nothing until it has seen DATA: a client waiting for the MAIL reply
    // before sending RCPT would time out.
    const { port, state } = await scripted({
      ehlo: ['PIPELINING', 'SIZE 100000'],
      onLine(line, s, st) {
        if (line === 'DATA') {
          s.write('250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n250 2.1.5 ok\r\n354 go\r\n');
          st.inData = true;
        }
      },
    });
    const c = await connect(port);
    await c.ehlo();
    const r = await c.send(tx(['x@t.test', 'nobody@t.test', 'y@t.test']), Buffer.from('Subject: t\r\n\r\n.hidden\r\n'));
    assert.equal(r.pipelined, true);
    const group = state.chunks.find((ch) => ch.startsWith('MAIL'));
    assert.equal(
      group,
      'MAIL FROM:<a@example.org> SIZE=23\r\nRCPT TO:<x@t.test>\r\nRCPT TO:<nobody@t.test>\r\nRCPT TO:<y@t.test>\r\nDATA\r\n',
    );
    assert.deepEqual(
      r.recipients.map((x) => [x.address, x.ok, x.temporary, x.reply.code, x.stage]),
      [
        ['x@t.test', true, false, 250, 'data'],
        ['nobody@t.test', false, false, 550, 'rcpt'],
        ['y@t.test', true, false, 250, 'data'],
      ],
    );
    assert.equal(r.recipients[1]?.reply.enhanced, '5.1.1');
    // Dot-stuffed on the wire, unstuffed by the server: the bytes arrive intact.
    assert.equal(
      state.data?.toString(),
      'Subject: t\r\n\r\n..hidden\r\n'
        .replace('..', '.')
        .replace('.hidden', '..hidden')
        .replace('..hidden', '.hidden')
        .replace('.hidden', '..hidden'),
    );
    await c.quit();
  });

  it('without PIPELINING: one command, one reply (lock-step)', async () => {
    let premature = false;
    const { port, state } = await scripted({
      ehlo: ['8BITMIME'],
      onLine(line, s, st) {
        // Reply late; any further command arriving before the reply is a framing error.
        const before = st.lines.length;
        setTimeout(() => {
          if (st.lines.length !== before) premature = true;
          if (line.startsWith('MAIL')) s.write('250 ok\r\n');
          else if (line.startsWith('RCPT')) s.write(line.includes('bad') ? '450 4.2.0 later\r\n' : '250 ok\r\n');
          else if (line === 'DATA') {
            st.inData = true;
            s.write('354 go\r\n');
          }
        }, 30);
      },
    });
    const c = await connect(port);
    await c.ehlo();
    const r = await c.send({ ...tx(['a@t.test', 'bad@t.test']), body: '8BITMIME' }, Buffer.from('x\r\n'));
    assert.equal(premature, false);
    assert.equal(r.pipelined, false);
    assert.deepEqual(state.lines.slice(1), [
      'MAIL FROM:<a@example.org> BODY=8BITMIME',
      'RCPT TO:<a@t.test>',
      'RCPT TO:<bad@t.test>',
      'DATA',
    ]);
    assert.deepEqual(
      r.recipients.map((x) => [x.ok, x.temporary]),
      [
        [true, false],
        [false, true],
      ],
    );
    assert.equal(state.data?.toString(), 'x\r\n');
    c.close();
  });

  it('falls back to HELO when EHLO is refused', async () => {
    const port = await rawServer('220 old SMTP\r\n', (l, s) => {
      if (l.startsWith('EHLO')) s.write('500 5.5.1 unknown command\r\n');
      else if (l.startsWith('HELO')) s.write('250 old\r\n');
      else if (l.startsWith('QUIT')) s.end('221 bye\r\n');
    });
    const c = await connect(port);
    await c.ehlo();
    assert.equal(c.esmtp, false);
    assert.equal(c.extensions.size, 0);
    assert.ok(c.transcript.some((t) => t.dir === 'C' && t.line === 'HELO client.test'));
    await c.quit();
  });

  it('a reply nobody asked for is never taken for an answer', async () => {
    let mailSeen = false;
    // After its EHLO reply the server appends a forged "250", as a response injection would.
    const port = await rawServer('220 inj\r\n', (l, s) => {
      if (l.startsWith('EHLO')) s.write('250-inj\r\n250 PIPELINING\r\n250 2.0.0 forged\r\n');
      if (l.startsWith('MAIL')) mailSeen = true;
    });
    const c = await connect(port);
    await c.ehlo();
    await assert.rejects(
      c.send(tx(['x@t.test']), Buffer.from('x\r\n')),
      (e) => e instanceof SmtpClientError && e.code === 'smtp-protocol' && /nobody asked for/.test(e.message),
    );
    assert.equal(c.usable, false);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(mailSeen, false, 'no MAIL was sent on a desynchronised connection');
  });

  it('a non-220 greeting is a temporary failure with its code', async () => {
    const port = await rawServer('421 4.3.2 busy\r\n', () => undefined);
    await assert.rejects(
      connect(port),
      (e) => e instanceof SmtpClientError && e.code === 'smtp-greeting' && e.smtpCode === 421 && e.temporary,
    );
  });

  it('REQUIRETLS is refused with 5.7.30 on a cleartext connection (RFC 8689 §4.1)', async () => {
    const { port, state } = await scripted({ ehlo: ['REQUIRETLS'] });
    const c = await connect(port);
    await c.ehlo();
    await assert.rejects(
      c.send({ ...tx(['x@t.test']), requireTls: true }, Buffer.from('x')),
      (e) => e instanceof SmtpClientError && e.enhanced === '5.7.30' && e.smtpCode === 550 && !e.temporary,
    );
    assert.ok(!state.lines.some((l) => l.startsWith('MAIL')));
    c.close();
  });
});

describe('SmtpClient DSN (RFC 3461)', () => {
  for (const dsn of [true, false]) {
    it(`${dsn ? 'advertised' : 'not advertised'}: dsn is ${String(dsn)} and NOTIFY/ORCPT go on ${dsn ? 'with' : 'without'} the RCPT`, async () => {
      const { port, state } = await scripted({
        ehlo: dsn ? ['DSN'] : [],
        onLine(line, s, st) {
          if (line.startsWith('MAIL')) s.write('250 2.1.0 ok\r\n');
          else if (line.startsWith('RCPT')) s.write('250 2.1.5 ok\r\n');
          else if (line === 'DATA') {
            s.write('354 go\r\n');
            st.inData = true;
          }
        },
      });
      const c = await connect(port);
      await c.ehlo();
      assert.equal(c.dsn, dsn);
      const t = tx(['x@t.test']);
      t.recipients = [{ address: 'x@t.test', dsn: { notify: ['SUCCESS'], orcpt: 'rfc822;x@t.test' } }];
      await c.send(t, Buffer.from('Subject: t\r\n\r\nx\r\n'));
      const rcpt = state.lines.find((l) => l.startsWith('RCPT'));
      assert.equal(rcpt, dsn ? 'RCPT TO:<x@t.test> NOTIFY=SUCCESS ORCPT=rfc822;x@t.test' : 'RCPT TO:<x@t.test>');
      await c.quit();
    });
  }
});

describe('SmtpClient reply classes (src/smtp/protocol/reply-class.ts)', () => {
  // [RCPT reply, temporary?]: the reply code decides (RFC 5321 §4.2.1); a contradicting enhanced
  // code does not, and a malformed code is never permanent (it used to bounce: any non-2/3/4 was 5).
  const rows: Array<[string, boolean]> = [
    ['550 4.7.1 policy', false],
    ['450 5.1.1 try later', true],
    ['999 what', true],
    ['554 5.7.1 no', false],
  ];
  for (const [reply, temporary] of rows) {
    it(`RCPT answered "${reply}" is ${temporary ? 'temporary' : 'permanent'}`, async () => {
      const { port } = await scripted({
        ehlo: [],
        onLine(line, s) {
          if (line.startsWith('MAIL')) s.write('250 2.1.0 ok\r\n');
          else if (line.startsWith('RCPT')) s.write(`${reply}\r\n`);
        },
      });
      const c = await connect(port);
      await c.ehlo();
      const r = await c.send(tx(['x@t.test']), Buffer.from('Subject: t\r\n\r\nx\r\n'));
      assert.deepEqual(
        r.recipients.map((x) => [x.ok, x.temporary, x.stage]),
        [[false, temporary, 'rcpt']],
      );
      await c.quit();
    });
  }
});

describe('ConnectionPool', () => {
  it('limits concurrent sessions per destination and hands slots over in order', async () => {
    const pool = new ConnectionPool({ maxPerDestination: 2 });
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    await Promise.all(
      [0, 1, 2, 3, 4].map((i) =>
        pool.withSlot('example.org', async () => {
          running++;
          peak = Math.max(peak, running);
          await new Promise((r) => setTimeout(r, 10));
          order.push(i);
          running--;
        }),
      ),
    );
    assert.equal(peak, 2);
    assert.deepEqual(order, [0, 1, 2, 3, 4]);
    assert.equal(pool.active('example.org'), 0);
    // Another destination is not limited by the first.
    const a = pool.withSlot('a.test', () => new Promise((r) => setTimeout(r, 20)));
    const b = pool.withSlot('b.test', async () => pool.active('a.test'));
    assert.equal(await b, 1);
    await a;
  });
});
