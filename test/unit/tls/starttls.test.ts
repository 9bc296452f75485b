import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import {
  afterTls,
  escapeLine,
  openStartTls,
  probeCommandInjection,
  StartTlsError,
} from '../../../src/tls/starttls/index.ts';
import type { StartTlsOptions } from '../../../src/tls/starttls/index.ts';
import { tlsHandshake } from '../../../src/tls/handshake.ts';
import { makeCert } from '../../helpers/certs.ts';
import type { TestCert } from '../../helpers/certs.ts';

/** Line-oriented view of one server-side stream (plain or TLS). */
class ServerIO {
  readonly stream: Duplex;
  buf = '';
  waiters: (() => void)[] = [];
  readonly onData = (c: Buffer): void => {
    this.buf += c.toString('latin1');
    for (const w of this.waiters.splice(0)) w();
  };
  constructor(stream: Duplex, carry = '') {
    this.stream = stream;
    this.buf = carry;
    stream.on('data', this.onData);
    stream.on('error', () => undefined);
  }
  send(s: string): void {
    this.stream.write(s);
  }
  async next(): Promise<string> {
    for (;;) {
      const i = this.buf.indexOf('\r\n');
      if (i >= 0) {
        const l = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 2);
        return l;
      }
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
  /**
   * Switch to TLS as a server. `keepBuffer` simulates the CVE-2011-0411 bug: plaintext read before
   * the handshake is processed as if it had arrived inside TLS.
   */
  upgrade(cert: TestCert, keepBuffer = false): ServerIO {
    this.stream.removeListener('data', this.onData);
    this.stream.pause();
    const t = new tls.TLSSocket(this.stream, { isServer: true, key: cert.keyPem, cert: cert.pem });
    return new ServerIO(t, keepBuffer ? this.buf : '');
  }
}

type Script = (io: ServerIO) => Promise<void>;

async function scripted(script: Script): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    script(new ServerIO(s)).catch(() => s.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

async function withServer<T>(script: Script, fn: (port: number) => Promise<T>): Promise<T> {
  const srv = await scripted(script);
  try {
    return await fn(srv.port);
  } finally {
    await srv.close();
  }
}

function opts(
  port: number,
  dialect: StartTlsOptions['dialect'],
  extra: Partial<StartTlsOptions> = {},
): StartTlsOptions {
  return { host: '127.0.0.1', port, dialect, timeoutMs: 2000, ...extra };
}

async function rejectsWith(p: Promise<unknown>, code: string, reply?: RegExp): Promise<StartTlsError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof StartTlsError, `expected StartTlsError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (reply !== undefined) assert.match(e.reply ?? '', reply);
    return e;
  }
  assert.fail(`expected rejection with ${code}`);
}

let cert: TestCert;
before(async () => {
  cert = await makeCert({ subject: 'CN=mx.test', dnsNames: ['mx.test'] });
});

const smtpEhlo = async (io: ServerIO, caps: string[]): Promise<void> => {
  assert.match(await io.next(), /^EHLO /);
  io.send(['mx.test greets you', ...caps].map((c, i, a) => `250${i === a.length - 1 ? ' ' : '-'}${c}\r\n`).join(''));
};

describe('SMTP STARTTLS', () => {
  test('normal path: multi-line greeting, EHLO keywords, 220 go-ahead, then TLS and re-EHLO', async () => {
    await withServer(
      async (io) => {
        io.send('220-mx.test ESMTP\r\n220 ready\r\n');
        await smtpEhlo(io, ['PIPELINING', 'STARTTLS', 'SIZE 1000']);
        assert.equal(await io.next(), 'STARTTLS');
        io.send('220 2.0.0 go ahead\r\n');
        const t = io.upgrade(cert);
        await smtpEhlo(t, ['PIPELINING', 'AUTH PLAIN']);
      },
      async (port) => {
        const ready = await openStartTls(opts(port, 'smtp'));
        assert.equal(ready.greeting, 'mx.test ESMTP\nready');
        assert.deepEqual(ready.capabilities, ['PIPELINING', 'STARTTLS', 'SIZE 1000']);
        assert.equal(ready.advertised, true);
        assert.equal(ready.injectedBytes, null);
        assert.equal(ready.socket.listenerCount('data'), 0);
        assert.equal(ready.socket.isPaused(), true);
        assert.deepEqual(
          ready.transcript.filter((t) => t.dir === 'C').map((t) => t.line),
          ['EHLO postern.invalid', 'STARTTLS'],
        );
        const { session, tlsSocket } = await tlsHandshake({ socket: ready.socket, host: '127.0.0.1', port });
        assert.equal(session.protocol, 'TLSv1.3');
        assert.equal(session.authorized, false);
        const a = await afterTls(tlsSocket, 'smtp');
        assert.deepEqual(a.capabilities, ['PIPELINING', 'AUTH PLAIN']);
        assert.equal(a.startTlsReAdvertised, false);
        assert.deepEqual(a.extraReplies, []);
        tlsSocket.destroy();
      },
    );
  });

  test('454 to STARTTLS is starttls-refused with the reply', async () => {
    await withServer(
      async (io) => {
        io.send('220 mx.test\r\n');
        await smtpEhlo(io, ['STARTTLS']);
        await io.next();
        io.send('454 4.7.0 TLS not available due to temporary reason\r\n');
      },
      async (port) => {
        const e = await rejectsWith(
          openStartTls(opts(port, 'smtp')),
          'starttls-refused',
          /^454 4\.7\.0 TLS not available/,
        );
        assert.ok(e.transcript.some((t) => t.dir === 'C' && t.line === 'STARTTLS'));
      },
    );
  });

  test('STARTTLS not advertised: starttls-not-offered, unless forced', async () => {
    const script: Script = async (io) => {
      io.send('220 mx.test\r\n');
      await smtpEhlo(io, ['PIPELINING']);
      if ((await io.next()) === 'STARTTLS') io.send('220 go\r\n');
    };
    await withServer(script, (port) => rejectsWith(openStartTls(opts(port, 'smtp')), 'starttls-not-offered'));
    await withServer(script, async (port) => {
      const ready = await openStartTls(opts(port, 'smtp', { forceStartTls: true }));
      assert.equal(ready.advertised, false);
      ready.socket.destroy();
    });
  });

  test('421 greeting is rate-limited; 554 greeting is unexpected-reply', async () => {
    await withServer(
      async (io) => io.send('421 4.7.0 too many connections from your IP\r\n'),
      (port) => rejectsWith(openStartTls(opts(port, 'smtp')), 'rate-limited', /^421 /),
    );
    await withServer(
      async (io) => io.send('554 no SMTP service here\r\n'),
      (port) => rejectsWith(openStartTls(opts(port, 'smtp')), 'unexpected-reply', /^554 /),
    );
  });

  test('EHLO refused: HELO only to report, then starttls-not-offered', async () => {
    let sawHelo = false;
    await withServer(
      async (io) => {
        io.send('220 old.test\r\n');
        await io.next();
        io.send('502 command not implemented\r\n');
        sawHelo = (await io.next()).startsWith('HELO ');
        io.send('250 old.test\r\n');
      },
      (port) => rejectsWith(openStartTls(opts(port, 'smtp')), 'starttls-not-offered'),
    );
    assert.equal(sawHelo, true);
  });

  test('response injection after 220 is set aside, not parsed as a reply', async () => {
    await withServer(
      async (io) => {
        io.send('220 mx.test\r\n');
        await smtpEhlo(io, ['STARTTLS']);
        await io.next();
        io.send('220 go\r\n250 forged\r\n');
      },
      async (port) => {
        const ready = await openStartTls(opts(port, 'smtp'));
        assert.ok(ready.injectedBytes !== null);
        assert.equal(ready.injectedBytes.toString('latin1'), '250 forged\r\n');
        assert.ok(!ready.transcript.some((t) => t.dir === 'S' && t.line === '250 forged'));
        ready.socket.destroy();
      },
    );
  });

  test('oversize line fails with reply-too-long instead of hanging', async () => {
    await withServer(
      async (io) => io.send('220 ' + 'x'.repeat(10_000)),
      (port) => rejectsWith(openStartTls(opts(port, 'smtp', { timeoutMs: 5000 })), 'reply-too-long'),
    );
  });

  test('silent server: net-timeout; closed port: net-connect; abort: aborted', async () => {
    await withServer(
      async () => undefined,
      (port) => rejectsWith(openStartTls(opts(port, 'smtp', { timeoutMs: 150 })), 'net-timeout'),
    );
    const srv = await scripted(async () => undefined);
    const port = srv.port;
    await srv.close();
    await rejectsWith(openStartTls(opts(port, 'smtp')), 'net-connect');
    await withServer(
      async () => undefined,
      (p) => rejectsWith(openStartTls(opts(p, 'smtp', { signal: AbortSignal.timeout(100) })), 'aborted'),
    );
  });

  test('malformed reply line is unexpected-reply', async () => {
    await withServer(
      async (io) => io.send('hello there\r\n'),
      (port) => rejectsWith(openStartTls(opts(port, 'smtp')), 'unexpected-reply', /^hello there$/),
    );
  });
});

/** STARTTLS server that answers NOOP; `vulnerable` keeps pre-TLS plaintext (CVE-2011-0411). */
function injectionServer(vulnerable: boolean): Script {
  return async (io) => {
    io.send('220 mx.test\r\n');
    await smtpEhlo(io, ['STARTTLS']);
    assert.equal(await io.next(), 'STARTTLS');
    // Give the client's one-write "STARTTLS\r\nNOOP\r\n" time to land in our buffer.
    await new Promise((r) => setTimeout(r, 50));
    io.send('220 go\r\n');
    const t = io.upgrade(cert, vulnerable);
    for (;;) {
      const l = await t.next();
      if (l === 'NOOP') t.send('250 2.0.0 OK\r\n');
      else if (l.startsWith('EHLO')) t.send('250-mx.test\r\n250 PIPELINING\r\n');
      else if (l === 'QUIT') {
        t.send('221 bye\r\n');
        t.stream.end();
        return;
      }
    }
  };
}

describe('CVE-2011-0411 command injection probe', () => {
  test('flags a server that answers the injected NOOP inside TLS', async () => {
    await withServer(injectionServer(true), async (port) => {
      const r = await probeCommandInjection({ host: '127.0.0.1', port, dialect: 'smtp', timeoutMs: 3000 });
      assert.equal(r.vulnerable, true);
      assert.ok(r.evidence.some((e) => e.includes('250 2.0.0 OK')));
    });
  });

  test('a server that discards buffered plaintext is not vulnerable', async () => {
    await withServer(injectionServer(false), async (port) => {
      const r = await probeCommandInjection({ host: '127.0.0.1', port, dialect: 'smtp', timeoutMs: 3000 });
      assert.equal(r.vulnerable, false);
      assert.deepEqual(r.evidence, []);
    });
  });
});

describe('IMAP STARTTLS', () => {
  const imapServer =
    (greeting: string, caps: string, startTlsReply: string): Script =>
    async (io) => {
      io.send(greeting + '\r\n');
      if (!greeting.startsWith('* OK')) return;
      assert.equal(await io.next(), 'a001 CAPABILITY');
      io.send(`* CAPABILITY ${caps}\r\na001 OK done\r\n`);
      assert.equal(await io.next(), 'a002 STARTTLS');
      io.send(startTlsReply + '\r\n');
      if (!startTlsReply.startsWith('a002 OK')) return;
      const t = io.upgrade(cert);
      assert.equal(await t.next(), 'b001 CAPABILITY');
      t.send('* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nb001 OK done\r\n');
    };

  test('normal path records capabilities and LOGINDISABLED, re-asks CAPABILITY over TLS', async () => {
    await withServer(
      imapServer('* OK IMAP ready', 'IMAP4rev1 STARTTLS LOGINDISABLED', 'a002 OK Begin TLS now'),
      async (port) => {
        const ready = await openStartTls(opts(port, 'imap'));
        assert.equal(ready.greeting, '* OK IMAP ready');
        assert.deepEqual(ready.capabilities, ['IMAP4rev1', 'STARTTLS', 'LOGINDISABLED']);
        assert.equal(ready.advertised, true);
        assert.equal(ready.loginDisabled, true);
        const { tlsSocket } = await tlsHandshake({ socket: ready.socket, host: '127.0.0.1', port });
        const a = await afterTls(tlsSocket, 'imap');
        assert.deepEqual(a.capabilities, ['IMAP4rev1', 'AUTH=PLAIN']);
        assert.equal(a.startTlsReAdvertised, false);
        tlsSocket.destroy();
      },
    );
  });

  test('tagged NO and BAD are starttls-refused', async () => {
    await withServer(imapServer('* OK hi', 'IMAP4rev1 STARTTLS', 'a002 NO [UNAVAILABLE] not now'), (port) =>
      rejectsWith(openStartTls(opts(port, 'imap')), 'starttls-refused', /^a002 NO /),
    );
    await withServer(imapServer('* OK hi', 'IMAP4rev1 STARTTLS', 'a002 BAD unknown command'), (port) =>
      rejectsWith(openStartTls(opts(port, 'imap')), 'starttls-refused', /^a002 BAD /),
    );
  });

  test('PREAUTH greeting makes STARTTLS impossible; BYE greeting is rate-limited', async () => {
    await withServer(imapServer('* PREAUTH logged in as joe', '', ''), (port) =>
      rejectsWith(openStartTls(opts(port, 'imap')), 'imap-preauth', /PREAUTH/),
    );
    await withServer(imapServer('* BYE too many connections', '', ''), (port) =>
      rejectsWith(openStartTls(opts(port, 'imap')), 'rate-limited', /^\* BYE/),
    );
  });

  test('STARTTLS missing from CAPABILITY: starttls-not-offered', async () => {
    await withServer(imapServer('* OK hi', 'IMAP4rev1 AUTH=PLAIN', 'a002 OK'), (port) =>
      rejectsWith(openStartTls(opts(port, 'imap')), 'starttls-not-offered'),
    );
  });
});

describe('POP3 STLS', () => {
  const popServer =
    (greeting: string, capa: string, stlsReply: string): Script =>
    async (io) => {
      io.send(greeting + '\r\n');
      if (!greeting.startsWith('+OK')) return;
      assert.equal(await io.next(), 'CAPA');
      io.send(capa);
      if ((await io.next()) !== 'STLS') return;
      io.send(stlsReply + '\r\n');
      if (!stlsReply.startsWith('+OK')) return;
      const t = io.upgrade(cert);
      assert.equal(await t.next(), 'CAPA');
      t.send('+OK\r\nUSER\r\nSASL PLAIN\r\n..dotted\r\n.\r\n');
    };

  test('normal path: CAPA with dot terminator, STLS +OK, CAPA again over TLS', async () => {
    await withServer(
      popServer('+OK POP3 ready', '+OK list\r\nUSER\r\nSTLS\r\n.\r\n', '+OK begin TLS'),
      async (port) => {
        const ready = await openStartTls(opts(port, 'pop3'));
        assert.equal(ready.greeting, '+OK POP3 ready');
        assert.deepEqual(ready.capabilities, ['USER', 'STLS']);
        assert.equal(ready.advertised, true);
        const { tlsSocket } = await tlsHandshake({ socket: ready.socket, host: '127.0.0.1', port });
        const a = await afterTls(tlsSocket, 'pop3');
        assert.deepEqual(a.capabilities, ['USER', 'SASL PLAIN', '.dotted']);
        assert.equal(a.startTlsReAdvertised, false);
        tlsSocket.destroy();
      },
    );
  });

  test('-ERR to STLS is starttls-refused; -ERR [IN-USE] greeting is rate-limited', async () => {
    await withServer(popServer('+OK hi', '+OK\r\nSTLS\r\n.\r\n', '-ERR TLS unavailable'), (port) =>
      rejectsWith(openStartTls(opts(port, 'pop3')), 'starttls-refused', /^-ERR TLS unavailable/),
    );
    await withServer(popServer('-ERR [IN-USE] mailbox locked', '', ''), (port) =>
      rejectsWith(openStartTls(opts(port, 'pop3')), 'rate-limited', /IN-USE/),
    );
  });

  test('CAPA unsupported (-ERR): nothing advertised, starttls-not-offered', async () => {
    await withServer(popServer('+OK hi', '-ERR unknown command\r\n', '+OK'), (port) =>
      rejectsWith(openStartTls(opts(port, 'pop3')), 'starttls-not-offered'),
    );
  });
});

describe('implicit TLS', () => {
  let server: tls.Server;
  let port: number;
  before(async () => {
    server = tls.createServer({ key: cert.keyPem, cert: cert.pem }, (s) => {
      const io = new ServerIO(s);
      io.send('* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n');
      void io.next().then((l) => {
        if (l === 'b001 CAPABILITY') io.send('* CAPABILITY IMAP4rev1 AUTH=PLAIN ID\r\nb001 OK\r\n');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test('connects without a dialogue, greeting read after TLS with protocol detection', async () => {
    const ready = await openStartTls(opts(port, 'implicit'));
    assert.equal(ready.greeting, null);
    assert.equal(ready.advertised, false);
    assert.deepEqual(ready.transcript, []);
    const { tlsSocket } = await tlsHandshake({ socket: ready.socket, host: '127.0.0.1', port });
    const a = await afterTls(tlsSocket, 'implicit');
    assert.equal(a.protocol, 'imap');
    assert.equal(a.greeting, '* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready');
    assert.deepEqual(a.capabilities, ['IMAP4rev1', 'AUTH=PLAIN', 'ID']);
    tlsSocket.destroy();
  });
});

test('escapeLine keeps printable ASCII and escapes control and high bytes', () => {
  assert.equal(escapeLine(Buffer.from([0x41, 0x1b, 0x5b, 0x5c, 0xff, 0x20])), 'A\\x1b[\\\\\\xff ');
});
