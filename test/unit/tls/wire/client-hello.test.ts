import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildClientHello, buildSslv2ClientHello } from '../../../../src/tls/wire/client-hello.ts';
import { parseClientHello, clientHelloLength } from '../../../../src/tls/wire/server-side.ts';
import { EXT } from '../../../../src/tls/wire/constants.ts';
import { exchange, freePort } from './exchange-helper.ts';

const RANDOM = Buffer.alloc(32, 0xab);

describe('buildClientHello', () => {
  it('round-trips a TLS 1.2 hello through parseClientHello', () => {
    const bytes = buildClientHello({
      version: 'TLSv1.2',
      suites: [0xc02f, 0xc030, 0x009c],
      serverName: 'mx.example.org',
      random: RANDOM,
      alpn: ['smtp'],
      scsv: { renegotiation: true, fallback: true },
      heartbeat: true,
    });
    assert.equal(bytes[0], 22);
    assert.equal(bytes.readUInt16BE(1), 0x0301, 'record version is TLS 1.0 for compatibility');
    const ch = parseClientHello(bytes);
    assert.equal(ch.format, 'tls');
    assert.equal(ch.legacyVersion, 0x0303);
    assert.deepEqual(ch.random, RANDOM);
    assert.equal(ch.sessionId.length, 0);
    assert.deepEqual(ch.cipherSuites, [0xc02f, 0xc030, 0x009c, 0x00ff, 0x5600]);
    assert.equal(ch.renegotiationScsv, true);
    assert.equal(ch.fallbackScsv, true);
    assert.equal(ch.renegotiationInfo, true);
    assert.equal(ch.serverName, 'mx.example.org');
    assert.deepEqual(ch.alpn, ['smtp']);
    assert.deepEqual(ch.compressionMethods, [0]);
    assert.equal(ch.supportedVersions, null, 'no supported_versions for a plain 1.2 hello');
    assert.equal(ch.keyShares, null);
    const groups = ch.groups ?? [];
    assert.ok(groups.includes(23) && groups.includes(29));
    assert.ok(!groups.some((g) => g >= 256 && g <= 260), 'no FFDHE groups below TLS 1.3');
    assert.ok(ch.signatureAlgorithms?.includes(0x0201), 'legacy rsa_pkcs1_sha1 offered');
    assert.deepEqual(ch.ecPointFormats, [0]);
    assert.equal(ch.extendedMasterSecret, true);
    assert.equal(ch.encryptThenMac, true);
    assert.equal(ch.sessionTicket, true);
    assert.equal(ch.statusRequest, true);
    assert.equal(ch.heartbeat, true);
    assert.equal(clientHelloLength(bytes), bytes.length);
    assert.equal(clientHelloLength(bytes.subarray(0, bytes.length - 1)), null);
  });

  it('builds a TLS 1.3 hello with legacy_version 0x0303, supported_versions and an x25519 share', () => {
    const ch = parseClientHello(
      buildClientHello({ version: 'TLSv1.3', supportedVersions: ['TLSv1.2'], suites: [0x1301, 0xc02f] }),
    );
    assert.equal(ch.legacyVersion, 0x0303);
    assert.deepEqual(ch.supportedVersions, [0x0304, 0x0303]);
    assert.equal(ch.sessionId.length, 32, 'middlebox-compatibility session id');
    assert.equal(ch.keyShares?.length, 1);
    assert.equal(ch.keyShares?.[0]?.group, 29);
    assert.equal(ch.keyShares?.[0]?.keyExchange.length, 32);
    assert.ok(ch.extensions.some((e) => e.type === EXT.pskKeyExchangeModes));
  });

  it('sends an empty key_share when asked (to force a HelloRetryRequest)', () => {
    const ch = parseClientHello(buildClientHello({ version: 'TLSv1.3', suites: [0x1301], keyShares: [] }));
    assert.deepEqual(ch.keyShares, []);
    assert.deepEqual(ch.supportedVersions, [0x0304]);
    assert.ok(ch.groups?.includes(256), 'TLS 1.3-only hello offers FFDHE groups');
  });

  it('omits SNI for IP literals', () => {
    for (const ip of ['192.0.2.1', '::1', '[2001:db8::1]']) {
      const ch = parseClientHello(buildClientHello({ version: 'TLSv1.2', suites: [0xc02f], serverName: ip }));
      assert.equal(ch.serverName, null, ip);
      assert.ok(!ch.extensions.some((e) => e.type === EXT.serverName), ip);
    }
    const named = parseClientHello(
      buildClientHello({ version: 'TLSv1.2', suites: [0xc02f], serverName: 'mx.example.' }),
    );
    assert.equal(named.serverName, 'mx.example', 'trailing dot stripped');
  });

  it('builds an SSLv3 hello without extensions and with the renegotiation SCSV', () => {
    const bytes = buildClientHello({ version: 'SSLv3', suites: [0x0005, 0x000a] });
    assert.equal(bytes.readUInt16BE(1), 0x0300);
    const ch = parseClientHello(bytes);
    assert.equal(ch.legacyVersion, 0x0300);
    assert.deepEqual(ch.extensions, []);
    assert.deepEqual(ch.cipherSuites, [0x0005, 0x000a, 0x00ff]);
  });

  it('omits signature_algorithms below TLS 1.2 and honours compression methods', () => {
    const ch = parseClientHello(buildClientHello({ version: 'TLSv1.0', suites: [0x002f], compressionMethods: [1, 0] }));
    assert.equal(ch.legacyVersion, 0x0301);
    assert.equal(ch.signatureAlgorithms, null);
    assert.deepEqual(ch.compressionMethods, [1, 0]);
  });

  it('splits a hello larger than 16 KiB into several records', () => {
    const suites = Array.from({ length: 9000 }, (_, i) => 0x0100 + i);
    const bytes = buildClientHello({ version: 'TLSv1.2', suites });
    const lengths: number[] = [];
    for (let off = 0; off < bytes.length;) {
      assert.equal(bytes[off], 22);
      const len = bytes.readUInt16BE(off + 3);
      assert.ok(len <= 16384);
      lengths.push(len);
      off += 5 + len;
    }
    assert.equal(lengths.length, 2);
    assert.equal(lengths[0], 16384);
    const ch = parseClientHello(bytes);
    assert.equal(ch.cipherSuites.length, 9000);
    assert.equal(clientHelloLength(bytes.subarray(0, 16389 + 10)), null);
  });

  it('pads to 512 bytes with the RFC 7685 padding extension when asked', () => {
    const bytes = buildClientHello({ version: 'TLSv1.2', suites: [0xc02f], padding: true, groups: [23] });
    assert.equal(bytes.length - 5, 512);
    assert.equal(parseClientHello(bytes).padding, true);
    const big = buildClientHello({
      version: 'TLSv1.2',
      suites: Array.from({ length: 300 }, (_, i) => i + 1),
      padding: true,
    });
    assert.equal(parseClientHello(big).padding, false, 'no padding when already above 512 bytes');
    // Every size just below the threshold must come out at 512 or more, never in 256..511.
    for (let n = 175; n < 195; n++) {
      const hs = buildClientHello({
        version: 'TLSv1.2',
        suites: Array.from({ length: n }, (_, i) => i + 1),
        padding: true,
        groups: [23],
      });
      assert.ok(hs.length - 5 >= 512, `${n} suites → ${hs.length - 5} bytes`);
    }
  });

  it('rejects impossible options', () => {
    assert.throws(() => buildClientHello({ version: 'TLSv1.2', suites: [] }), /no cipher suites/);
    assert.throws(() => buildClientHello({ version: 'SSLv2', suites: [1] }), /buildSslv2ClientHello/);
    assert.throws(() => buildClientHello({ version: 'TLSv1.2', suites: [1], random: Buffer.alloc(5) }), /32 bytes/);
  });

  it('builds SSLv2 and SSLv2-compatible hellos', () => {
    const challenge = Buffer.alloc(16, 7);
    const v2 = buildSslv2ClientHello({ ciphers: [0x010080, 0x0700c0], challenge });
    assert.equal(v2[0]! & 0x80, 0x80);
    assert.equal(((v2[0]! & 0x7f) << 8) | v2[1]!, v2.length - 2);
    const ch = parseClientHello(v2);
    assert.equal(ch.format, 'sslv2');
    assert.equal(ch.legacyVersion, 0x0002);
    assert.deepEqual(ch.sslv2CipherKinds, [0x010080, 0x0700c0]);
    assert.deepEqual(ch.random.subarray(16), challenge);
    const compat = parseClientHello(buildSslv2ClientHello({ ciphers: [0x00c02f, 0x010080], version: 0x0301 }));
    assert.equal(compat.legacyVersion, 0x0301);
    assert.deepEqual(compat.cipherSuites, [0xc02f]);
    assert.deepEqual(compat.sslv2CipherKinds, [0x010080]);
  });
});

describe('buildClientHello against a real OpenSSL s_server', () => {
  let dir = '';
  let port = 0;
  let server: ChildProcess | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'postern-wire-'));
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
        '/CN=localhost',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    port = await freePort();
    const proc = spawn(
      'openssl',
      [
        's_server',
        '-accept',
        `127.0.0.1:${port}`,
        '-cert',
        join(dir, 'cert.pem'),
        '-key',
        join(dir, 'key.pem'),
        '-www',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    server = proc;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('s_server did not start')), 10_000);
      proc.stdout?.on('data', (d: Buffer) => {
        if (d.toString().includes('ACCEPT')) {
          clearTimeout(t);
          resolve();
        }
      });
      proc.once('exit', (code) => reject(new Error(`s_server exited with ${code}`)));
    });
  });

  after(() => {
    if (server?.pid !== undefined && server.exitCode === null) server.kill('SIGTERM');
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('answers our TLS 1.2 hello with ECDHE-RSA-AES128-GCM-SHA256 (0xC02F) and a full flight', async () => {
    const flight = await exchange(
      port,
      buildClientHello({ version: 'TLSv1.2', suites: [0xc02f], serverName: 'localhost' }),
    );
    assert.equal(flight?.kind, 'hello');
    if (flight?.kind !== 'hello') return;
    assert.equal(flight.hello.cipherSuite, 0xc02f);
    assert.equal(flight.hello.version, 'TLSv1.2');
    assert.equal(flight.hello.secureRenegotiation, true);
    assert.equal(flight.hello.extendedMasterSecret, true);
    assert.equal(flight.helloDone, true);
    assert.equal(flight.certificates.length, 1);
    assert.equal(flight.certificates[0]?.[0], 0x30, 'DER SEQUENCE');
    const kx = flight.keyExchange;
    assert.equal(kx?.kind, 'ecdhe');
    assert.ok(kx?.kind === 'ecdhe' && kx.group === 29 && kx.signed && kx.signatureScheme !== null);
  });

  it('parses a DHE ServerKeyExchange from OpenSSL (DHE-RSA-AES128-GCM-SHA256, 0x009E)', async () => {
    const flight = await exchange(port, buildClientHello({ version: 'TLSv1.2', suites: [0x009e] }));
    assert.equal(flight?.kind, 'hello');
    if (flight?.kind !== 'hello') return;
    assert.equal(flight.hello.cipherSuite, 0x009e);
    const kx = flight.keyExchange;
    assert.ok(kx?.kind === 'dhe', JSON.stringify(kx));
    assert.ok(kx.primeBits >= 2048);
    assert.deepEqual(kx.generator, Buffer.from([2]));
  });

  it('is accepted with 150 suites offered at once (mostly unknown code points), padded', async () => {
    const suites = [...Array.from({ length: 149 }, (_, i) => 0xff00 - i), 0xc02f];
    const flight = await exchange(port, buildClientHello({ version: 'TLSv1.2', suites, padding: true }));
    assert.ok(flight?.kind === 'hello' && flight.hello.cipherSuite === 0xc02f);
  });

  it('answers our TLS 1.3 hello with TLS_AES_128_GCM_SHA256 (0x1301)', async () => {
    const flight = await exchange(
      port,
      buildClientHello({ version: 'TLSv1.3', suites: [0x1301], serverName: 'localhost' }),
    );
    assert.equal(flight?.kind, 'hello');
    if (flight?.kind !== 'hello') return;
    assert.equal(flight.hello.version, 'TLSv1.3');
    assert.equal(flight.hello.legacyVersion, 0x0303);
    assert.equal(flight.hello.cipherSuite, 0x1301);
    assert.equal(flight.hello.helloRetryRequest, false);
    assert.equal(flight.hello.selectedGroup, 29);
  });

  it('gets a HelloRetryRequest naming a group when we send no key share', async () => {
    const flight = await exchange(
      port,
      buildClientHello({ version: 'TLSv1.3', suites: [0x1301], keyShares: [], groups: [24, 23] }),
    );
    assert.equal(flight?.kind, 'hello');
    if (flight?.kind !== 'hello') return;
    assert.equal(flight.hello.helloRetryRequest, true);
    assert.ok(flight.hello.selectedGroup === 24 || flight.hello.selectedGroup === 23);
  });

  it('gets a handshake_failure alert for a suite OpenSSL 3 does not serve', async () => {
    const flight = await exchange(port, buildClientHello({ version: 'TLSv1.2', suites: [0x0003] }));
    assert.equal(flight?.kind, 'alert');
    if (flight?.kind !== 'alert') return;
    assert.equal(flight.level, 2);
    assert.equal(flight.description, 40);
    assert.equal(flight.name, 'handshake_failure');
  });
});
