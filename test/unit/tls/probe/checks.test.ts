/**
 * The weakness checks against real loopback peers: the testbed's raw legacy responder (which can
 * be told to pick DEFLATE, echo heartbeats, simulate Heartbleed, drop RFC 5746 or ignore the
 * fallback SCSV) and node:tls servers (OpenSSL 3.5), whose real behaviour is the reference.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { constants as cryptoConstants } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { heartbeatAnswer, HEARTBLEED_MARKER, serveLegacyHandshake } from '../../../../src/testbed/legacy-tls.ts';
import type { LegacyTlsOptions } from '../../../../src/testbed/legacy-tls.ts';
import { issueCertificate } from '../../../../src/tls/cert/pki.ts';
import type { IssuedCertificate } from '../../../../src/tls/cert/pki.ts';
import {
  checkClientRenegotiation,
  checkCompression,
  checkFallbackScsv,
  checkHeartbeat,
  checkSecureRenegotiation,
  HEARTBLEED_CLAIMED_LENGTH,
} from '../../../../src/tls/probe/checks.ts';
import type { CheckInput } from '../../../../src/tls/probe/checks.ts';
import { enumerateVersion } from '../../../../src/tls/probe/enumerate.ts';
import type { HelloContext } from '../../../../src/tls/probe/hello.ts';
import { probeEndpoint } from '../../../../src/tls/probe/index.ts';
import { ConnectionLimiter } from '../../../../src/tls/probe/limiter.ts';
import { TlsHandshakeError } from '../../../../src/tls/handshake.ts';
import { VERSIONS } from '../../../../src/tls/wire/constants.ts';
import type { VersionName } from '../../../../src/tls/wire/constants.ts';

const HOST = '127.0.0.1';
// TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, _256_GCM_SHA384 (TLS 1.2), _AES_128_CBC_SHA (TLS 1.0+).
const GCM = [0xc02f, 0xc030];
const CBC = 0xc013;

let cert: IssuedCertificate;
const servers: net.Server[] = [];

before(async () => {
  const now = Date.now();
  cert = await issueCertificate({
    names: ['checks.test'],
    keyType: { kind: 'rsa', bits: 2048 },
    signatureHash: 'SHA-256',
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 86_400_000),
  });
});

after(() => {
  for (const s of servers) s.close();
});

async function listen(server: net.Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return (server.address() as net.AddressInfo).port;
}

/** The raw legacy responder over implicit TLS. */
function rawServer(opts: Partial<LegacyTlsOptions> = {}): Promise<number> {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    serveLegacyHandshake(s, { versions: ['TLSv1.2'], suites: GCM, certificates: [cert.der], idleMs: 2000, ...opts });
  });
  return listen(server);
}

/** A node:tls (OpenSSL) server over implicit TLS. */
function nodeServer(opts: tls.TlsOptions = {}): Promise<number> {
  const server = tls.createServer({ key: cert.keyPem, cert: cert.certPem, ...opts }, (s) => {
    s.on('error', () => undefined);
    s.resume();
  });
  server.on('tlsClientError', () => undefined);
  return listen(server);
}

function ctxFor(port: number): HelloContext {
  return {
    target: { host: HOST, address: HOST, port, dialect: 'implicit', timeoutMs: 3000 },
    limiter: new ConnectionLimiter(2),
    rateLimitRetries: 0,
    rateLimitBackoffMs: 10,
  };
}

function input(suites: Partial<Record<VersionName, number[]>>): CheckInput {
  const all = Object.fromEntries(VERSIONS.map((v) => [v, suites[v] ?? []])) as Record<VersionName, number[]>;
  const protocols = Object.fromEntries(VERSIONS.map((v) => [v, all[v].length > 0])) as Record<VersionName, boolean>;
  return { protocols, suites: all };
}

const TLS12 = input({ 'TLSv1.2': GCM });
const TLS13_ONLY = input({ 'TLSv1.3': [0x1301] });

describe('checkSecureRenegotiation (RFC 5746)', () => {
  it('false when a TLS 1.2 ServerHello lacks renegotiation_info, true when echoed', async () => {
    const bad = await enumerateVersion(ctxFor(await rawServer({ secureRenegotiation: false })), 'TLSv1.2');
    assert.equal(bad.flights.length, 2);
    const r = checkSecureRenegotiation(bad.flights);
    assert.equal(r?.supported, false);
    assert.match(r?.evidence ?? '', /no renegotiation_info/);

    const good = await enumerateVersion(ctxFor(await rawServer()), 'TLSv1.2');
    assert.equal(checkSecureRenegotiation(good.flights)?.supported, true);
    // One hello without it is enough to fail the server.
    assert.equal(checkSecureRenegotiation([...good.flights, ...bad.flights])?.supported, false);
  });

  it('OpenSSL servers echo it; TLS 1.3 hellos do not count (null)', async () => {
    const port = await nodeServer({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' });
    const v12 = await enumerateVersion(ctxFor(port), 'TLSv1.2');
    assert.ok(v12.flights.length > 0);
    assert.equal(checkSecureRenegotiation(v12.flights)?.supported, true);
    const v13 = await enumerateVersion(ctxFor(port), 'TLSv1.3');
    assert.ok(v13.flights.length > 0);
    assert.equal(checkSecureRenegotiation(v13.flights), null);
    assert.equal(checkSecureRenegotiation([]), null);
  });
});

describe('checkCompression (CRIME)', () => {
  it('detects a server that picks DEFLATE', async () => {
    const r = await checkCompression(ctxFor(await rawServer({ compression: true })), TLS12);
    assert.equal(r?.enabled, true);
    assert.equal(r?.method, 1);
    assert.equal(r?.version, 'TLSv1.2');
  });

  it('null compression from the default responder and from OpenSSL', async () => {
    assert.equal((await checkCompression(ctxFor(await rawServer()), TLS12))?.enabled, false);
    const port = await nodeServer({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
    const r = await checkCompression(ctxFor(port), input({ 'TLSv1.2': [0xc02f] }));
    assert.equal(r?.enabled, false);
    assert.equal(r?.method, 0);
  });

  it('not applicable to a TLS 1.3-only server (no connection made)', async () => {
    const ctx = ctxFor(1);
    assert.equal(await checkCompression(ctx, TLS13_ONLY), null);
    assert.equal(ctx.limiter.connections(HOST), 0);
  });
});

describe('checkHeartbeat / Heartbleed (RFC 6520, CVE-2014-0160)', () => {
  it('detects Heartbleed on the simulating responder, reporting only the length', async () => {
    const ctx = ctxFor(await rawServer({ heartbeat: 'heartbleed' }));
    const r = await checkHeartbeat(ctx, TLS12);
    assert.ok(r);
    assert.equal(r.enabled, true);
    assert.equal(r.heartbleed, true);
    assert.equal(r.responseBytes, 3 + HEARTBLEED_CLAIMED_LENGTH + 16);
    assert.ok(!r.evidence.includes('POSTERN'), 'leaked bytes must never reach the evidence');
    assert.equal(ctx.limiter.connections(HOST), 1);
  });

  it('heartbeat echoed but not vulnerable: the over-long request is discarded (RFC 6520 §4)', async () => {
    const r = await checkHeartbeat(ctxFor(await rawServer({ heartbeat: 'on' })), TLS12);
    assert.equal(r?.enabled, true);
    assert.equal(r?.heartbleed, false);
    assert.equal(r?.responseBytes, 0);
  });

  it('no heartbeat from the default responder, nor from OpenSSL (which dropped it in 1.1.0)', async () => {
    const raw = await checkHeartbeat(ctxFor(await rawServer()), TLS12);
    assert.deepEqual([raw?.enabled, raw?.heartbleed], [false, false]);
    const port = await nodeServer({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' });
    const node = await checkHeartbeat(ctxFor(port), input({ 'TLSv1.2': [0xc02f, 0xc030] }));
    assert.deepEqual([node?.enabled, node?.heartbleed], [false, false]);
    assert.equal(await checkHeartbeat(ctxFor(port), TLS13_ONLY), null);
  });

  it("the responder's heartbeat answers: echo, discard, simulated over-read", () => {
    const ok = Buffer.concat([Buffer.from([1, 0, 4]), Buffer.from('ping'), Buffer.alloc(16)]);
    const echo = heartbeatAnswer('on', ok);
    assert.ok(echo);
    assert.deepEqual([echo[0], echo.readUInt16BE(1), echo.subarray(3, 7).toString()], [2, 4, 'ping']);
    assert.equal(echo.length, 3 + 4 + 16);
    const bleed = Buffer.from([1, 0x01, 0x00]); // claims 256, carries nothing
    assert.equal(heartbeatAnswer('on', bleed), null);
    const leak = heartbeatAnswer('heartbleed', bleed);
    assert.ok(leak);
    assert.equal(leak.length, 3 + 256 + 16);
    assert.ok(leak.subarray(3, 3 + HEARTBLEED_MARKER.length).equals(HEARTBLEED_MARKER));
    assert.equal(heartbeatAnswer('heartbleed', Buffer.from([2, 0, 0])), null); // a response is not answered
  });
});

describe('checkFallbackScsv (RFC 7507)', () => {
  it('OpenSSL answers inappropriate_fallback to a TLS 1.2 fallback when it speaks TLS 1.3', async () => {
    const port = await nodeServer({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' });
    const r = await checkFallbackScsv(ctxFor(port), input({ 'TLSv1.3': [0x1301], 'TLSv1.2': [0xc02f] }));
    assert.ok(r);
    assert.deepEqual([r.honoured, r.offered, r.highest], [true, 'TLSv1.2', 'TLSv1.3']);
    assert.match(r.evidence, /inappropriate_fallback/);
  });

  it('a legacy responder that ignores the SCSV accepts the fallback; one that checks it refuses', async () => {
    const versions: VersionName[] = ['TLSv1.1', 'TLSv1.2'];
    const two = input({ 'TLSv1.2': [...GCM, CBC], 'TLSv1.1': [CBC] });
    const missing = await checkFallbackScsv(ctxFor(await rawServer({ versions, suites: [...GCM, CBC] })), two);
    assert.deepEqual([missing?.honoured, missing?.offered], [false, 'TLSv1.1']);
    const port = await rawServer({ versions, suites: [...GCM, CBC], fallbackScsv: true });
    assert.equal((await checkFallbackScsv(ctxFor(port), two))?.honoured, true);
  });

  it('not applicable with a single version', async () => {
    assert.equal(await checkFallbackScsv(ctxFor(1), TLS12), null);
  });
});

describe('checkClientRenegotiation', () => {
  it("node's default TLS server honours it (documented: node allows 3 per 10 min)", async () => {
    const port = await nodeServer({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' });
    const r = await checkClientRenegotiation(ctxFor(port), input({ 'TLSv1.2': GCM, 'TLSv1.3': [0x1301] }));
    assert.deepEqual([r?.honoured, r?.protocol], [true, 'TLSv1.2']);
  });

  it('refused by a server with SSL_OP_NO_RENEGOTIATION (what the testbed and OpenSSL 3 default do)', async () => {
    const port = await nodeServer({ secureOptions: cryptoConstants.SSL_OP_NO_RENEGOTIATION });
    const r = await checkClientRenegotiation(ctxFor(port), TLS12);
    assert.equal(r?.honoured, false);
    assert.match(r?.evidence ?? '', /no_renegotiation/);
  });

  it('TLS 1.3-only: not applicable; a server that cannot finish a handshake: a typed error', async () => {
    assert.equal(await checkClientRenegotiation(ctxFor(1), TLS13_ONLY), null);
    await assert.rejects(checkClientRenegotiation(ctxFor(await rawServer()), TLS12), TlsHandshakeError);
  });
});

describe('probeEndpoint runs the checks', () => {
  const versions: VersionName[] = ['TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
  const weak: Partial<LegacyTlsOptions> = {
    versions: ['TLSv1.1', 'TLSv1.2'],
    suites: [...GCM, CBC],
    compression: true,
    heartbeat: 'heartbleed',
    secureRenegotiation: false,
  };

  it('fills every check field for a server with all the weaknesses, errors recorded not thrown', async () => {
    const port = await rawServer(weak);
    const p = await probeEndpoint(ctxFor(port).target, { versions, fullHandshake: false });
    assert.deepEqual(
      {
        secureRenegotiation: p.secureRenegotiation,
        compression: p.compression,
        heartbeat: p.heartbeat,
        heartbleed: p.heartbleed,
        fallbackScsv: p.fallbackScsv,
        clientRenegotiation: p.clientRenegotiation,
      },
      {
        secureRenegotiation: false,
        compression: true,
        heartbeat: true,
        heartbleed: true,
        fallbackScsv: false,
        clientRenegotiation: null, // the responder never completes a handshake
      },
    );
    assert.ok(p.errors.some((e) => e.phase === 'client-renegotiation'));
    assert.match(p.checkEvidence.heartbeat ?? '', /heartbeat response/);
  });

  it('suitesOnly skips them (null)', async () => {
    const port = await rawServer(weak);
    const p = await probeEndpoint(ctxFor(port).target, { versions, fullHandshake: false, suitesOnly: true });
    assert.deepEqual(
      [p.compression, p.heartbeat, p.heartbleed, p.fallbackScsv, p.clientRenegotiation],
      [null, null, null, null, null],
    );
    assert.equal(p.secureRenegotiation, false); // derived from the enumeration itself
  });
});
