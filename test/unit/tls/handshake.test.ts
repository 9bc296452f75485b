import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { tlsHandshake, TlsHandshakeError } from '../../../src/tls/handshake.ts';
import type { HandshakeOptions } from '../../../src/tls/handshake.ts';
import { describeGroup } from '../../../src/tls/session.ts';
import { extractSentChain, parseCertificateMessage } from '../../../src/tls/cert/sent-chain.ts';
import { makeCert, makePki } from '../../helpers/certs.ts';
import type { TestCert } from '../../helpers/certs.ts';

interface Running {
  port: number;
  sni: () => string | undefined;
  close: () => Promise<void>;
}

async function tlsServer(o: tls.TlsOptions): Promise<Running> {
  let sni: string | undefined;
  const server = tls.createServer(
    {
      ...o,
      SNICallback: (name, cb) => {
        sni = name;
        cb(null, undefined);
      },
    },
    (s) => {
      s.on('error', () => undefined);
      s.end();
    },
  );
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    sni: () => sni,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function handshake(
  o: Omit<HandshakeOptions, 'host'>,
): Promise<Awaited<ReturnType<typeof tlsHandshake>>['session']> {
  const { session, tlsSocket } = await tlsHandshake({ host: '127.0.0.1', timeoutMs: 3000, ...o });
  tlsSocket.destroy();
  return session;
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<TlsHandshakeError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof TlsHandshakeError, `expected TlsHandshakeError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected rejection with ${code}`);
}

let pki: { root: TestCert; intermediate: TestCert; leaf: TestCert };
before(async () => {
  pki = await makePki();
});

describe('tlsHandshake', () => {
  test('TLS 1.3 reports protocol, cipher and key exchange group', async () => {
    const srv = await tlsServer({ key: pki.leaf.keyPem, cert: pki.leaf.pem + pki.intermediate.pem });
    try {
      const s = await handshake({ port: srv.port, groups: 'X25519', ciphersuites: 'TLS_AES_128_GCM_SHA256' });
      assert.equal(s.protocol, 'TLSv1.3');
      assert.deepEqual(s.cipher, {
        name: 'TLS_AES_128_GCM_SHA256',
        standardName: 'TLS_AES_128_GCM_SHA256',
        version: 'TLSv1.3',
      });
      assert.equal(s.group, 'X25519');
      assert.equal(s.ephemeralKeyBits, 253);
      assert.equal(s.sessionReused, false);
      assert.equal(s.alpn, null);
      const pq = await handshake({ port: srv.port, groups: 'X25519MLKEM768:X25519' });
      assert.equal(pq.group, 'X25519MLKEM768');
      assert.equal(pq.ephemeralKeyBits, null);
      const p256 = await handshake({ port: srv.port, groups: 'P-256', maxVersion: 'TLSv1.2' });
      assert.equal(p256.protocol, 'TLSv1.2');
      assert.equal(p256.group, 'secp256r1');
      assert.equal(p256.ephemeralKeyBits, 256);
      assert.match(p256.cipher.standardName, /^TLS_ECDHE_ECDSA_WITH_AES_(128|256)_GCM_SHA(256|384)$/);
    } finally {
      await srv.close();
    }
  });

  test('a TLS 1.0-only server is reached only when the client allows it', async () => {
    const rsa = await makeCert({ subject: 'CN=legacy.test', key: 'rsa-2048', dnsNames: ['legacy.test'] });
    const srv = await tlsServer({
      key: rsa.keyPem,
      cert: rsa.pem,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1',
      ciphers: 'AES128-SHA:@SECLEVEL=0',
    });
    try {
      const e = await rejectsWith(handshake({ port: srv.port }), 'tls-handshake-failed');
      assert.ok(e.reason !== null);
      const s = await handshake({ port: srv.port, minVersion: 'TLSv1', ciphers: 'AES128-SHA:@SECLEVEL=0' });
      assert.equal(s.protocol, 'TLSv1');
      assert.equal(s.cipher.name, 'AES128-SHA');
      assert.equal(s.cipher.standardName, 'TLS_RSA_WITH_AES_128_CBC_SHA');
      assert.equal(s.group, null); // static RSA key exchange: no ephemeral key
      assert.equal(s.peerChainSource, 'wire');
      assert.deepEqual(s.peerChain, [rsa.der]);
    } finally {
      await srv.close();
    }
  });

  test('the sent chain is returned as sent, leaf first (TLS 1.3 and 1.2)', async () => {
    const srv = await tlsServer({ key: pki.leaf.keyPem, cert: pki.leaf.pem + pki.intermediate.pem });
    try {
      for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
        for (const ciphersuites of ['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']) {
          const s = await handshake({ port: srv.port, maxVersion, ciphersuites });
          assert.equal(s.peerChainSource, 'wire');
          assert.deepEqual(s.peerChain, [pki.leaf.der, pki.intermediate.der]);
        }
      }
    } finally {
      await srv.close();
    }
  });

  test('a misordered chain is reported as sent; the issuer walk would hide it', async () => {
    const srv = await tlsServer({ key: pki.leaf.keyPem, cert: pki.leaf.pem + pki.root.pem + pki.intermediate.pem });
    try {
      const wire = await handshake({ port: srv.port });
      assert.deepEqual(wire.peerChain, [pki.leaf.der, pki.root.der, pki.intermediate.der]);
      const walk = await handshake({ port: srv.port, captureChain: false });
      assert.equal(walk.peerChainSource, 'issuer-walk');
      // Node rebuilds by issuer relation: leaf, intermediate, … — not what the server sent.
      assert.deepEqual(walk.peerChain.slice(0, 2), [pki.leaf.der, pki.intermediate.der]);
      assert.notDeepEqual(walk.peerChain, wire.peerChain);
    } finally {
      await srv.close();
    }
  });

  test('untrusted certificate: handshake succeeds with authorized=false; trusted with the right CA', async () => {
    const srv = await tlsServer({ key: pki.leaf.keyPem, cert: pki.leaf.pem + pki.intermediate.pem });
    try {
      const untrusted = await handshake({ port: srv.port });
      assert.equal(untrusted.authorized, false);
      assert.equal(untrusted.authorizationError, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
      // authorized is the PKIX verdict only: a wrong SNI name does not change it.
      const trusted = await handshake({ port: srv.port, ca: [pki.root.pem], servername: 'wrong.example' });
      assert.equal(trusted.authorized, true);
      assert.equal(trusted.authorizationError, null);
      assert.equal(trusted.servername, 'wrong.example');
      assert.equal(srv.sni(), 'wrong.example');
    } finally {
      await srv.close();
    }
  });

  test('no SNI is sent for an IP literal unless asked', async () => {
    const srv = await tlsServer({ key: pki.leaf.keyPem, cert: pki.leaf.pem });
    try {
      const s = await handshake({ port: srv.port });
      assert.equal(s.servername, null);
      assert.equal(srv.sni(), undefined);
    } finally {
      await srv.close();
    }
  });

  test('network failures map to net-connect, net-timeout and net-closed', async () => {
    const silent = net.createServer((s) => {
      s.on('error', () => undefined);
      s.resume(); // read, so the client's FIN is seen and the socket closes
    });
    const closing = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => closing.listen(0, '127.0.0.1', r));
    const silentPort = (silent.address() as net.AddressInfo).port;
    const closingPort = (closing.address() as net.AddressInfo).port;
    try {
      await rejectsWith(tlsHandshake({ host: '127.0.0.1', port: silentPort, timeoutMs: 150 }), 'net-timeout');
      await rejectsWith(tlsHandshake({ host: '127.0.0.1', port: closingPort }), 'net-closed');
      await rejectsWith(
        tlsHandshake({ host: '127.0.0.1', port: silentPort, signal: AbortSignal.timeout(50) }),
        'aborted',
      );
    } finally {
      await new Promise<void>((r) => closing.close(() => r()));
      await new Promise<void>((r) => silent.close(() => r()));
    }
    await rejectsWith(tlsHandshake({ host: '127.0.0.1', port: closingPort }), 'net-connect');
  });

  test('non-TLS bytes from the server fail as tls-handshake-failed', async () => {
    const smtp = net.createServer((s) => {
      s.on('error', () => undefined);
      s.resume();
      s.end('220 not tls\r\n');
    });
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
    try {
      await rejectsWith(
        tlsHandshake({ host: '127.0.0.1', port: (smtp.address() as net.AddressInfo).port }),
        'tls-handshake-failed',
      );
    } finally {
      await new Promise<void>((r) => smtp.close(() => r()));
    }
  });
});

describe('sent-chain decoding and group naming', () => {
  test('truncated or garbage input yields null, never throws', () => {
    assert.equal(parseCertificateMessage(Buffer.from([0, 0, 0, 9, 0, 0]), false), null);
    assert.equal(parseCertificateMessage(Buffer.from([5]), true), null);
    assert.equal(
      extractSentChain({
        raw: Buffer.from('16030100ff0000', 'hex'),
        protocol: 'TLSv1.2',
        cipherStandardName: 'x',
        serverHandshakeSecret: null,
      }),
      null,
    );
    assert.equal(
      extractSentChain({
        raw: Buffer.from('1703030020' + '00'.repeat(32), 'hex'),
        protocol: 'TLSv1.3',
        cipherStandardName: 'TLS_AES_128_GCM_SHA256',
        serverHandshakeSecret: Buffer.alloc(32),
      }),
      null,
    );
  });

  test('TLS ≤ 1.2 Certificate message parses into DER entries in order', () => {
    const a = Buffer.from('3003020101', 'hex');
    const b = Buffer.from('300402020102', 'hex');
    const entry = (d: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, d.length]), d]);
    const list = Buffer.concat([entry(a), entry(b)]);
    const body = Buffer.concat([Buffer.from([0, 0, list.length]), list]);
    assert.deepEqual(parseCertificateMessage(body, false), [a, b]);
  });

  test('describeGroup names DH, ECDH and hybrid groups', () => {
    assert.deepEqual(describeGroup({ type: 'DH', size: 2048 }), { group: 'DH 2048', bits: 2048 });
    assert.deepEqual(describeGroup({ type: 'ECDH', name: 'prime256v1', size: 256 }), { group: 'secp256r1', bits: 256 });
    assert.deepEqual(describeGroup({ type: 'TLSGroup', name: 'X25519MLKEM768' }), {
      group: 'X25519MLKEM768',
      bits: null,
    });
    assert.deepEqual(describeGroup({}), { group: null, bits: null });
    assert.deepEqual(describeGroup(null), { group: null, bits: null });
  });
});
