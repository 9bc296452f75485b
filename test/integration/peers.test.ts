/**
 * Checks of the real-peer harness itself: private Postfix and Dovecot instances on loopback,
 * configured as asked, verified with independent clients (openssl s_client, testssl.sh).
 * Needs root and scripts/install-peers.sh; skipped otherwise unless POSTERN_REQUIRE_PEERS=1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeSelfSignedCert } from './peers/certs.ts';
import type { TestCert } from './peers/certs.ts';
import { postfixAvailable, startPostfix } from './peers/postfix.ts';
import type { PostfixInstance } from './peers/postfix.ts';
import { dovecotAvailable, startDovecot } from './peers/dovecot.ts';
import type { DovecotInstance } from './peers/dovecot.ts';
import { runTestsslCiphers, testsslAvailable } from './peers/testssl.ts';
import { pidAlive, readPidFile, run } from './peers/proc.ts';

const isRoot = process.getuid?.() === 0;
function skipReason(have: boolean, what: string): string | false {
  if (isRoot && have) return false;
  const why = isRoot ? `${what} not installed (scripts/install-peers.sh)` : 'needs root';
  if (process.env['POSTERN_REQUIRE_PEERS'] === '1') throw new Error(`POSTERN_REQUIRE_PEERS=1 but ${why}`);
  return why;
}
const noPostfix = skipReason(postfixAvailable(), 'postfix');
const noTestssl = skipReason(postfixAvailable() && testsslAvailable(), 'postfix/testssl');
const noDovecot = skipReason(dovecotAvailable(), 'dovecot');

/** Line-oriented plaintext dialogue: send `commands` one at a time, each answered by a reply ending with `done(line)`. */
async function dialogue(
  host: string,
  port: number,
  steps: { send: string | null; done: (line: string) => boolean }[],
): Promise<string[]> {
  return await new Promise((resolve, reject) => {
    const sock = connect({ host, port });
    const replies: string[] = [];
    let cur: string[] = [];
    let buf = '';
    let i = 0;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`dialogue with ${host}:${port} timed out after ${replies.length} replies`));
    }, 10_000);
    const next = (): void => {
      const step = steps[i];
      if (step === undefined) {
        clearTimeout(timer);
        sock.end();
        resolve(replies);
        return;
      }
      if (step.send !== null) sock.write(step.send + '\r\n');
    };
    sock.setEncoding('latin1');
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('connect', next);
    sock.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        cur.push(line);
        const step = steps[i];
        if (step !== undefined && step.done(line)) {
          replies.push(cur.join('\n'));
          cur = [];
          i += 1;
          next();
        }
      }
    });
  });
}

const smtpEnd = (l: string): boolean => /^\d{3} /.test(l);

/** openssl s_client handshake; returns the negotiated protocol and cipher, or null if it failed. */
async function sClient(
  port: number,
  args: string[],
  host = '127.0.0.1',
): Promise<{ protocol: string; cipher: string } | null> {
  const r = await run('openssl', ['s_client', '-connect', `${host}:${port}`, ...args], {
    timeoutMs: 15_000,
    input: '',
  });
  const m = /New, (TLSv1(?:\.\d)?|SSLv3), Cipher is (\S+)/.exec(r.stdout);
  return m && m[2] !== '(NONE)' ? { protocol: m[1] ?? '', cipher: m[2] ?? '' } : null;
}

async function portClosed(host: string, port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

let cert: TestCert;
before(async () => {
  if (noPostfix === false || noDovecot === false) cert = await makeSelfSignedCert();
});

describe('postfix peer: TLS 1.2+ with two ECDHE-RSA-GCM suites', { skip: noPostfix }, () => {
  let pf: PostfixInstance;
  before(async () => {
    pf = await startPostfix({
      certPem: cert.certPem,
      keyPem: cert.keyPem,
      cipherList: 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384',
      protocols: '>=TLSv1.2',
    });
  });
  after(async () => {
    await pf?.stop();
  });

  it('answers EHLO with STARTTLS', async () => {
    const [banner, ehlo] = await dialogue(pf.host, pf.port, [
      { send: null, done: smtpEnd },
      { send: 'EHLO client.test', done: smtpEnd },
      { send: 'QUIT', done: smtpEnd },
    ]);
    assert.match(banner ?? '', /^220 mx\.peer\.test ESMTP/);
    assert.ok(
      (ehlo ?? '').split('\n').some((l) => /^250[- ]STARTTLS$/.test(l)),
      ehlo,
    );
  });

  it('negotiates only the configured TLS 1.2 suites (openssl s_client -starttls smtp)', async () => {
    const ok = await sClient(pf.port, ['-starttls', 'smtp', '-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256']);
    assert.deepEqual(ok, { protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES128-GCM-SHA256' });
    const ok2 = await sClient(pf.port, ['-starttls', 'smtp', '-tls1_2']);
    assert.ok(
      ok2 && ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384'].includes(ok2.cipher),
      JSON.stringify(ok2),
    );
    assert.equal(await sClient(pf.port, ['-starttls', 'smtp', '-tls1_2', '-cipher', 'AES128-SHA']), null);
    assert.equal(await sClient(pf.port, ['-starttls', 'smtp', '-tls1_1', '-cipher', 'ALL:@SECLEVEL=0']), null);
  });

  it('delivers mail for the test domain into its Maildir and bounces everything else', async () => {
    const body = `Subject: harness ${Date.now()}\r\n\r\nhello\r\n.\r\n`;
    // Plaintext is enough here: the point is that smtpd → queue → virtual → Maildir works.
    const replies = await dialogue(pf.host, pf.port, [
      { send: null, done: smtpEnd },
      { send: 'EHLO client.test', done: smtpEnd },
      { send: 'MAIL FROM:<a@client.test>', done: smtpEnd },
      { send: 'RCPT TO:<bob@peer.test>', done: smtpEnd },
      { send: 'RCPT TO:<eve@elsewhere.test>', done: smtpEnd },
      { send: 'DATA', done: smtpEnd },
      { send: body.slice(0, -2), done: smtpEnd },
      { send: 'QUIT', done: smtpEnd },
    ]);
    assert.match(replies[3] ?? '', /^250 /);
    // Any other domain goes to the error transport, which smtpd already refuses at RCPT time.
    assert.match(replies[4] ?? '', /^550 5\.7\.1 .*outbound mail disabled/);
    assert.match(replies[6] ?? '', /^250 2\.0\.0 Ok: queued/);
    const deadline = Date.now() + 10_000;
    let files: string[] = [];
    while (Date.now() < deadline) {
      files = await readdir(join(pf.maildir, 'new')).catch(() => []);
      if (files.length > 0) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(files.length, 1);
    const msg = await readFile(join(pf.maildir, 'new', files[0] ?? ''), 'utf8');
    assert.match(msg, /^Subject: harness /m);
    assert.match(await pf.logs(), /to=<bob@peer\.test>, relay=virtual.*status=sent \(delivered to maildir\)/);
  });

  it(
    'testssl -E sees exactly the configured TLS 1.2 suites and OpenSSL 3.0 default TLS 1.3 suites',
    { skip: noTestssl },
    async () => {
      const res = await runTestsslCiphers({ host: pf.host, port: pf.port, starttls: 'smtp', timeoutMs: 240_000 });
      console.log(`# testssl -E (STARTTLS smtp) took ${res.durationMs} ms`);
      const hex = (s: Set<number> | undefined): string[] =>
        [...(s ?? [])].sort((a, b) => a - b).map((n) => n.toString(16).padStart(4, '0'));
      assert.deepEqual(hex(res.suites.get('TLSv1.2')), ['c02f', 'c030']);
      // Debian 12 OpenSSL 3.0 default Ciphersuites: AES_256_GCM, CHACHA20_POLY1305, AES_128_GCM.
      assert.deepEqual(hex(res.suites.get('TLSv1.3')), ['1301', '1302', '1303']);
      for (const p of ['SSLv2', 'SSLv3', 'TLSv1.0', 'TLSv1.1'] as const) assert.equal(res.suites.get(p)?.size, 0, p);
    },
  );
});

describe('postfix peer: tls13Ciphers via tls_config_file', { skip: noPostfix }, () => {
  it('restricts the TLS 1.3 suites the server accepts', async () => {
    const pf = await startPostfix({
      certPem: cert.certPem,
      keyPem: cert.keyPem,
      tls13Ciphers: 'TLS_AES_128_GCM_SHA256',
    });
    try {
      const ok = await sClient(pf.port, ['-starttls', 'smtp', '-tls1_3']);
      assert.deepEqual(ok, { protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256' });
      assert.equal(
        await sClient(pf.port, ['-starttls', 'smtp', '-tls1_3', '-ciphersuites', 'TLS_AES_256_GCM_SHA384']),
        null,
      );
    } finally {
      await pf.stop();
    }
  });
});

describe('postfix peer: two instances at once', { skip: noPostfix }, () => {
  it('runs both on distinct ports and stops each one cleanly', async () => {
    const [a, b] = await Promise.all([
      startPostfix({ certPem: cert.certPem, keyPem: cert.keyPem, ciphers: 'high' }),
      startPostfix({ certPem: cert.certPem, keyPem: cert.keyPem, protocols: '>=TLSv1.3' }),
    ]);
    try {
      assert.notEqual(a.port, b.port);
      assert.notEqual(a.configDir, b.configDir);
      const pidA = await readPidFile(join(a.configDir, '..', 'queue', 'pid', 'master.pid'));
      assert.ok(pidA !== null && (await pidAlive(pidA)));
      // Each has its own settings: b refuses TLS 1.2, a accepts it.
      assert.equal((await sClient(a.port, ['-starttls', 'smtp', '-tls1_2']))?.protocol, 'TLSv1.2');
      assert.equal(await sClient(b.port, ['-starttls', 'smtp', '-tls1_2']), null);
      await a.stop();
      assert.equal(await pidAlive(pidA), false);
      assert.equal(await portClosed('127.0.0.1', a.port), true);
      // b is untouched by stopping a.
      assert.equal((await sClient(b.port, ['-starttls', 'smtp', '-tls1_3']))?.protocol, 'TLSv1.3');
    } finally {
      await a.stop();
      await b.stop();
    }
    assert.equal(await portClosed('127.0.0.1', b.port), true);
  });
});

describe('dovecot peer', { skip: noDovecot }, () => {
  let dv: DovecotInstance;
  before(async () => {
    dv = await startDovecot({ certPem: cert.certPem, keyPem: cert.keyPem });
  });
  after(async () => {
    await dv?.stop();
  });

  it('IMAP on the plain port advertises STARTTLS and LOGINDISABLED (RFC 2595 §3.2)', async () => {
    const [, caps, login] = await dialogue(dv.host, dv.ports.imap, [
      { send: null, done: (l) => l.startsWith('* OK [CAPABILITY') },
      { send: 'a CAPABILITY', done: (l) => l.startsWith('a ') },
      { send: `b LOGIN ${dv.user.name} ${dv.user.password}`, done: (l) => l.startsWith('b ') },
      { send: 'c LOGOUT', done: (l) => l.startsWith('c ') },
    ]);
    assert.match(caps ?? '', /^\* CAPABILITY .*\bSTARTTLS\b/m);
    assert.match(caps ?? '', /\bLOGINDISABLED\b/);
    assert.match(login ?? '', /^b NO /m);
  });

  it('POP3 on the plain port lists STLS in CAPA', async () => {
    const [, capa] = await dialogue(dv.host, dv.ports.pop3, [
      { send: null, done: (l) => l.startsWith('+OK') },
      { send: 'CAPA', done: (l) => l === '.' },
      { send: 'QUIT', done: (l) => l.startsWith('+OK') },
    ]);
    assert.ok((capa ?? '').split('\n').includes('STLS'), capa);
  });

  it('STARTTLS on IMAP and STLS on POP3 complete a handshake', async () => {
    assert.equal((await sClient(dv.ports.imap, ['-starttls', 'imap'], dv.host))?.protocol, 'TLSv1.3');
    assert.equal((await sClient(dv.ports.pop3, ['-starttls', 'pop3'], dv.host))?.protocol, 'TLSv1.3');
  });

  it('IMAPS and POP3S speak implicit TLS and greet inside it; login works over TLS', async () => {
    for (const [port, greeting] of [
      [dv.ports.imaps, /^\* OK /],
      [dv.ports.pop3s, /^\+OK /],
    ] as const) {
      const first = await new Promise<{ line: string; protocol: string | null }>((resolve, reject) => {
        const s = tlsConnect({ host: dv.host, port, rejectUnauthorized: false, servername: 'imap.peer.test' });
        s.setEncoding('latin1');
        s.once('error', reject);
        s.once('data', (d: string) => {
          resolve({ line: d, protocol: s.getProtocol() });
          s.destroy();
        });
      });
      assert.match(first.line, greeting);
      assert.equal(first.protocol, 'TLSv1.3');
    }
    const r = await run('openssl', ['s_client', '-quiet', '-connect', `${dv.host}:${dv.ports.imaps}`], {
      timeoutMs: 15_000,
      input: `a LOGIN ${dv.user.name} ${dv.user.password}\r\nb LOGOUT\r\n`,
    });
    assert.match(r.stdout, /^a OK .*Logged in/m);
  });

  it(
    'testssl -E over implicit TLS sees exactly ssl_cipher_list, DHE included (ssl_dh is set)',
    { skip: noTestssl },
    async () => {
      const listed = await startDovecot({
        certPem: cert.certPem,
        keyPem: cert.keyPem,
        sslCipherList: 'ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305',
      });
      try {
        const res = await runTestsslCiphers({ host: listed.host, port: listed.ports.imaps, timeoutMs: 240_000 });
        console.log(`# testssl -E (implicit TLS, imaps) took ${res.durationMs} ms`);
        assert.deepEqual(
          [...(res.suites.get('TLSv1.2') ?? [])].sort((a, b) => a - b),
          [0x9e, 0xc030, 0xcca8],
        );
        assert.deepEqual(
          [...(res.suites.get('TLSv1.3') ?? [])].sort((a, b) => a - b),
          [0x1301, 0x1302, 0x1303],
        );
      } finally {
        await listed.stop();
      }
    },
  );

  it('applies ssl_min_protocol and ssl_cipher_list', async () => {
    const strict = await startDovecot({
      certPem: cert.certPem,
      keyPem: cert.keyPem,
      sslMinProtocol: 'TLSv1.2',
      sslCipherList: 'ECDHE-RSA-AES256-GCM-SHA384',
      sslPreferServerCiphers: true,
    });
    try {
      assert.equal(
        (await sClient(strict.ports.imaps, ['-tls1_2'], strict.host))?.cipher,
        'ECDHE-RSA-AES256-GCM-SHA384',
      );
      assert.equal(
        await sClient(strict.ports.imaps, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256'], strict.host),
        null,
      );
    } finally {
      await strict.stop();
    }
    assert.equal(await portClosed(strict.host, strict.ports.imaps), true);
  });
});
