import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveLegacyHandshake, legacyAcceptedSuites } from '../../../src/testbed/legacy-tls.ts';
import type { LegacyTlsOptions } from '../../../src/testbed/legacy-tls.ts';
import { buildClientHello, buildSslv2ClientHello } from '../../../src/tls/wire/client-hello.ts';
import type { ClientHelloOptions } from '../../../src/tls/wire/client-hello.ts';
import type { ServerFlight } from '../../../src/tls/wire/server-flight.ts';
import { exchange } from '../tls/wire/exchange-helper.ts';

let cert = Buffer.alloc(0);

before(() => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-legacy-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=legacy.test',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    cert = Buffer.from(new X509Certificate(readFileSync(join(dir, 'cert.pem'))).raw);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Starts a loopback legacy server, sends `hello`, returns the parsed answer. */
async function ask(
  opts: Omit<LegacyTlsOptions, 'certificates'>,
  hello: Buffer,
  viaInitialBytes = false,
): Promise<ServerFlight | null> {
  const full: LegacyTlsOptions = { certificates: [cert], idleMs: 500, ...opts };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    if (!viaInitialBytes) {
      serveLegacyHandshake(sock, full);
      return;
    }
    // Simulate a STARTTLS front end that already read the hello bytes.
    let got = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      got = Buffer.concat([got, d]);
      if (got.length >= hello.length) {
        sock.removeListener('data', onData);
        serveLegacyHandshake(sock, full, got);
      }
    };
    sock.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  try {
    return await exchange(port, hello);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

function hello(f: ServerFlight | null): Extract<ServerFlight, { kind: 'hello' }> {
  assert.ok(f !== null && f.kind === 'hello', `expected a ServerHello flight, got ${JSON.stringify(f)}`);
  return f;
}

function ch(o: Partial<ClientHelloOptions> & Pick<ClientHelloOptions, 'version' | 'suites'>): Buffer {
  return buildClientHello({ serverName: 'legacy.test', ...o });
}

describe('serveLegacyHandshake', () => {
  it('serves SSLv3 with RC4-SHA and DES-CBC3-SHA in server order', async () => {
    const opts = { versions: ['SSLv3' as const], suites: [0x0005, 0x000a] };
    const f = hello(await ask(opts, ch({ version: 'SSLv3', suites: [0x000a, 0x0005] })));
    assert.equal(f.hello.version, 'SSLv3');
    assert.equal(f.hello.legacyVersion, 0x0300);
    assert.equal(f.hello.cipherSuite, 0x0005);
    assert.deepEqual(f.certificates, [cert]);
    assert.equal(f.keyExchange, null, 'static RSA sends no ServerKeyExchange');
    assert.equal(f.helloDone, true);
    assert.equal(f.hello.secureRenegotiation, true, 'answers the SCSV with renegotiation_info');
    const only3des = hello(await ask(opts, ch({ version: 'SSLv3', suites: [0x000a] })));
    assert.equal(only3des.hello.cipherSuite, 0x000a);
    const clientOrder = hello(
      await ask({ ...opts, serverPreference: false }, ch({ version: 'SSLv3', suites: [0x000a, 0x0005] })),
    );
    assert.equal(clientOrder.hello.cipherSuite, 0x000a);
  });

  it('answers a TLS 1.0 export configuration with EXP-RC4-MD5 and a 512-bit RSA ServerKeyExchange', async () => {
    const f = hello(
      await ask({ versions: ['TLSv1.0'], suites: [0x0003] }, ch({ version: 'TLSv1.2', suites: [0xc02f, 0x0003] })),
    );
    assert.equal(f.hello.version, 'TLSv1.0', 'highest common version below the client max');
    assert.equal(f.hello.cipherSuite, 0x0003);
    assert.equal(f.certificates.length, 1);
    assert.deepEqual(f.keyExchange, { kind: 'rsa-export', modulusBits: 512, signed: true, signatureScheme: null });
  });

  it('sends a 512-bit DH group for DHE export suites and the configured size otherwise', async () => {
    const exp = hello(
      await ask({ versions: ['TLSv1.0'], suites: [0x0014] }, ch({ version: 'TLSv1.0', suites: [0x0014] })),
    );
    assert.ok(exp.keyExchange?.kind === 'dhe' && exp.keyExchange.primeBits === 512, JSON.stringify(exp.keyExchange));
    const dhe = hello(
      await ask(
        { versions: ['TLSv1.2'], suites: [0x009e], dhPrimeBits: 2048 },
        ch({ version: 'TLSv1.2', suites: [0x009e] }),
      ),
    );
    assert.ok(dhe.keyExchange?.kind === 'dhe' && dhe.keyExchange.primeBits === 2048 && dhe.keyExchange.signed);
  });

  it('sends no Certificate for an anonymous suite', async () => {
    const f = hello(
      await ask({ versions: ['TLSv1.0', 'TLSv1.2'], suites: [0x0018] }, ch({ version: 'TLSv1.2', suites: [0x0018] })),
    );
    assert.equal(f.hello.version, 'TLSv1.2');
    assert.equal(f.hello.cipherSuite, 0x0018);
    assert.deepEqual(f.certificates, []);
    assert.ok(f.keyExchange?.kind === 'dhe' && f.keyExchange.signed === false);
  });

  it('picks ECDHE with a group the client offered', async () => {
    const opts = { versions: ['TLSv1.2' as const], suites: [0xc02f] };
    const f = hello(await ask(opts, ch({ version: 'TLSv1.2', suites: [0xc02f], groups: [24] })));
    assert.deepEqual(f.keyExchange, { kind: 'ecdhe', group: 24, signed: true, signatureScheme: 0x0401 });
    const none = await ask(opts, ch({ version: 'TLSv1.2', suites: [0xc02f], groups: [256] }));
    assert.ok(none?.kind === 'alert' && none.description === 40, 'no common curve → no ECDHE');
  });

  it('sends handshake_failure (40) for a non-overlapping offer', async () => {
    const f = await ask(
      { versions: ['SSLv3', 'TLSv1.0'], suites: [0x0005] },
      ch({ version: 'TLSv1.0', suites: [0x002f, 0x0035] }),
    );
    assert.deepEqual(f, { kind: 'alert', level: 2, description: 40, name: 'handshake_failure' });
  });

  it('sends protocol_version (70) when the client max is below all our versions', async () => {
    const f = await ask({ versions: ['TLSv1.2'], suites: [0x009c] }, ch({ version: 'SSLv3', suites: [0x009c] }));
    assert.ok(f?.kind === 'alert' && f.description === 70);
  });

  it('answers a TLS 1.3 offer like a TLS 1.2 server (ignores supported_versions)', async () => {
    const f = hello(
      await ask(
        { versions: ['TLSv1.2', 'TLSv1.3'], suites: [0x1301, 0xc02f] },
        ch({ version: 'TLSv1.3', suites: [0x1301, 0xc02f] }),
      ),
    );
    assert.equal(f.hello.version, 'TLSv1.2');
    assert.equal(f.hello.cipherSuite, 0xc02f, 'TLS 1.3 suites are never chosen');
  });

  it('enforces TLS_FALLBACK_SCSV only when configured', async () => {
    const opts = { versions: ['TLSv1.0' as const, 'TLSv1.2' as const], suites: [0x002f] };
    const offer = ch({ version: 'TLSv1.0', suites: [0x002f], scsv: { fallback: true } });
    assert.ok(hello(await ask(opts, offer)).hello.version === 'TLSv1.0');
    const f = await ask({ ...opts, fallbackScsv: true }, offer);
    assert.ok(f?.kind === 'alert' && f.name === 'inappropriate_fallback');
  });

  it('serves SSLv2 with the common cipher kinds, or NO-CIPHER-ERROR', async () => {
    const opts = { versions: ['SSLv2' as const], suites: [0x0700c0, 0x010080] };
    const f = await ask(opts, buildSslv2ClientHello({ ciphers: [0x010080, 0x020080] }));
    assert.ok(f?.kind === 'sslv2', JSON.stringify(f));
    assert.deepEqual(f.cipherKinds, [0x010080]);
    assert.deepEqual(f.certificate, cert);
    assert.equal(f.connectionId.length, 16);
    const err = await ask(opts, buildSslv2ClientHello({ ciphers: [0x020080] }));
    assert.ok(err?.kind === 'alert' && err.sslv2Error === 1);
  });

  it('answers an SSLv2-compatible hello offering TLS suites with TLS records', async () => {
    const f = hello(
      await ask(
        { versions: ['TLSv1.0'], suites: [0x002f] },
        buildSslv2ClientHello({ ciphers: [0x00002f], version: 0x0301 }),
      ),
    );
    assert.equal(f.hello.version, 'TLSv1.0');
    assert.equal(f.hello.cipherSuite, 0x002f);
  });

  it('accepts the ClientHello handed over as initialBytes', async () => {
    const f = hello(
      await ask({ versions: ['TLSv1.2'], suites: [0x009c] }, ch({ version: 'TLSv1.2', suites: [0x009c] }), true),
    );
    assert.equal(f.hello.cipherSuite, 0x009c);
  });

  it('answers malformed input with a fatal decode_error alert and closes', async () => {
    const junk = Buffer.from('16030100050100000120', 'hex');
    const f = await ask({ versions: ['TLSv1.2'], suites: [0x009c] }, junk);
    assert.ok(f?.kind === 'alert' && f.description === 50, JSON.stringify(f));
  });
});

describe('legacyAcceptedSuites', () => {
  it('filters by version range and servability, in server order', () => {
    const opts: LegacyTlsOptions = {
      versions: ['SSLv2', 'SSLv3', 'TLSv1.2'],
      suites: [0x0003, 0xc02f, 0x0005, 0x1301, 0x00ff, 0x010080, 0x9999],
      certificates: [],
    };
    assert.deepEqual(legacyAcceptedSuites(opts, 'SSLv3'), [0x0003, 0x0005]);
    assert.deepEqual(legacyAcceptedSuites(opts, 'TLSv1.2'), [0xc02f, 0x0005]);
    assert.deepEqual(legacyAcceptedSuites(opts, 'SSLv2'), [0x010080]);
    assert.deepEqual(legacyAcceptedSuites(opts, 'TLSv1.0'), [], 'version not configured');
    assert.deepEqual(legacyAcceptedSuites(opts, 'TLSv1.3'), [], 'never TLS 1.3');
  });
});
