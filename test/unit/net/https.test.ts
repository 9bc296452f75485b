/**
 * net/https.ts against a local HTTPS server (loopback, private test CA, one certificate per SNI
 * name) and a fake DnsClient: addresses come only from the injected resolver and are checked
 * before connecting; redirects, oversized bodies, bad certificates and stalls all fail typed.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createServer as createTlsServer } from 'node:tls';
import { makeCert } from '../../helpers/certs.ts';
import { httpsRequest, checkedAddresses } from '../../../src/net/https.ts';
import type { HttpsRequestOptions } from '../../../src/net/https.ts';
import { startHttpsPolicyServer } from '../../integration/peers/https-policy.ts';
import type { HttpsPolicyServer } from '../../integration/peers/https-policy.ts';

/** Names under .invalid never resolve through getaddrinfo: success proves the fake was used. */
function fakeDns(answers: Record<string, string[]>): { addresses(h: string): Promise<string[]>; asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    addresses: async (h: string) => {
      asked.push(h);
      const a = answers[h];
      if (a === undefined) throw new Error(`NXDOMAIN ${h}`);
      return a;
    },
  };
}

describe('httpsRequest', () => {
  let web: HttpsPolicyServer;
  const dns = fakeDns({
    'ok.host.invalid': ['127.0.0.1'],
    'redirect.host.invalid': ['127.0.0.1'],
    'big.host.invalid': ['127.0.0.1'],
    'untrusted.host.invalid': ['127.0.0.1'],
    'stall.host.invalid': ['127.0.0.1'],
    'mixed.host.invalid': ['192.0.2.1', '127.0.0.1'],
    'mapped.host.invalid': ['::ffff:127.0.0.1'],
    'empty.host.invalid': [],
  });
  let base: HttpsRequestOptions;
  // The policy server answers only this path (anything else is a 404).
  const P = '/.well-known/mta-sts.txt';

  before(async () => {
    web = await startHttpsPolicyServer();
    base = {
      method: 'GET',
      dns,
      ca: [web.ca],
      port: web.port,
      timeoutMs: 5000,
      maxBodyBytes: 1000,
      allowPrivateAddresses: true,
    };
    await web.route('ok.host.invalid', { body: 'hello' });
    await web.route('redirect.host.invalid', { redirect: 'https://ok.host.invalid/' });
    await web.route('big.host.invalid', { body: 'x'.repeat(5000), chunked: true });
    await web.route('untrusted.host.invalid', { body: 'x', cert: 'untrusted' });
    await web.route('stall.host.invalid', { body: 'x'.repeat(100), stall: true, headers: { 'content-length': '100' } });
    await web.route('mixed.host.invalid', { body: 'x' });
    await web.route('mapped.host.invalid', { body: 'x' });
  });
  after(async () => {
    await web?.stop();
  });

  it('GETs through the injected resolver, with SNI and Host for the URL name, and connects to the checked address', async () => {
    const r = await httpsRequest(`https://ok.host.invalid${P}`, base);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.status, 200);
    assert.equal(r.body?.toString(), 'hello');
    assert.equal(r.address, '127.0.0.1');
    assert.ok(dns.asked.includes('ok.host.invalid'));
    const req = web.requests.find((q) => q.host === 'ok.host.invalid');
    assert.equal(req?.path, P);
    assert.equal(req?.headers.connection, 'close');
  });

  it('refuses a host resolving to loopback unless allowPrivateAddresses is set, without connecting', async () => {
    const before = web.count('ok.host.invalid');
    const r = await httpsRequest(`https://ok.host.invalid${P}`, { ...base, allowPrivateAddresses: false });
    assert.equal(r.ok, false);
    assert.equal(r.ok ? '' : r.kind, 'address-refused');
    assert.match(
      r.ok ? '' : r.reason,
      /ok\.host\.invalid resolves to the non-public address 127\.0\.0\.1 \(loopback\)/,
    );
    assert.equal(web.count('ok.host.invalid'), before);
  });

  it('refuses when any address of the answer is non-public, and IPv4-mapped loopback', async () => {
    const strict = { ...base, allowPrivateAddresses: false };
    for (const h of ['mixed.host.invalid', 'mapped.host.invalid']) {
      const r = await httpsRequest(`https://${h}/`, strict);
      assert.equal(r.ok ? '' : r.kind, 'address-refused', h);
      assert.equal(web.count(h), 0, h);
    }
  });

  it('refuses loopback literals in any spelling without asking DNS', async () => {
    const strict = { ...base, allowPrivateAddresses: false };
    const asked = dns.asked.length;
    for (const u of [
      'https://127.0.0.1/',
      'https://127.1/',
      'https://2130706433/',
      'https://0x7f.0.0.1/',
      'https://0/',
      'https://[::1]/',
      'https://[::]/',
      'https://[::ffff:127.0.0.1]/',
      'https://[::ffff:7f00:1]/',
      'https://169.254.169.254/',
      'https://[fe80::1]/',
      'https://100.64.1.1/',
    ]) {
      const r = await httpsRequest(u, strict);
      assert.equal(r.ok ? '' : r.kind, 'address-refused', u);
    }
    assert.equal(dns.asked.length, asked);
  });

  it('checkedAddresses: DNS failure and an empty answer are dns failures', async () => {
    assert.deepEqual(await checkedAddresses('nowhere.invalid', dns, true), {
      ok: false,
      kind: 'dns',
      reason: 'cannot resolve nowhere.invalid: NXDOMAIN nowhere.invalid',
    });
    const empty = await checkedAddresses('empty.host.invalid', dns, true);
    assert.equal(empty.ok ? '' : empty.kind, 'dns');
  });

  it('does not follow a redirect: the 3xx is the answer and the target is never requested', async () => {
    const before = web.count('ok.host.invalid');
    const r = await httpsRequest(`https://redirect.host.invalid${P}`, base);
    assert.ok(r.ok);
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, 'https://ok.host.invalid/');
    assert.equal(web.count('ok.host.invalid'), before);
  });

  it('caps the body (chunked, no Content-Length) and can decline to read it', async () => {
    const r = await httpsRequest(`https://big.host.invalid${P}`, base);
    assert.equal(r.ok ? '' : r.kind, 'too-large');
    const head = await httpsRequest(`https://big.host.invalid${P}`, { ...base, readBody: () => false });
    assert.ok(head.ok);
    assert.equal(head.body, null);
  });

  it('verifies the certificate: an untrusted CA, or the default store for the test CA, is tls-verify', async () => {
    const r1 = await httpsRequest(`https://untrusted.host.invalid${P}`, base);
    assert.equal(r1.ok ? '' : r1.kind, 'tls-verify');
    const { ca: _ca, ...noCa } = base;
    const r2 = await httpsRequest(`https://ok.host.invalid${P}`, noCa);
    assert.equal(r2.ok ? '' : r2.kind, 'tls-verify');
  });

  it('refuses a server that offers only TLS 1.1 (TLS ≥ 1.2)', async () => {
    const cert = await makeCert({ subject: 'CN=old.host.invalid', dnsNames: ['old.host.invalid'], key: 'rsa-2048' });
    let handshakes = 0;
    const old = createTlsServer(
      { key: cert.keyPem, cert: cert.pem, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' },
      (s) => {
        handshakes++;
        s.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
      },
    );
    old.on('tlsClientError', () => undefined);
    old.listen(0, '127.0.0.1');
    await once(old, 'listening');
    try {
      const r = await httpsRequest(`https://old.host.invalid${P}`, {
        ...base,
        dns: fakeDns({ 'old.host.invalid': ['127.0.0.1'] }),
        ca: [cert.pem],
        port: (old.address() as AddressInfo).port,
      });
      assert.equal(r.ok ? '' : r.kind, 'network', JSON.stringify(r));
      assert.equal(handshakes, 0);
    } finally {
      old.close();
    }
  });

  it('ends a stalled body at the deadline', async () => {
    const r = await httpsRequest(`https://stall.host.invalid${P}`, { ...base, timeoutMs: 300 });
    assert.equal(r.ok ? '' : r.kind, 'timeout');
    assert.match(r.ok ? '' : r.reason, /within 300 ms/);
  });

  it('refuses non-https URLs and credentials before resolving', async () => {
    const asked = dns.asked.length;
    for (const u of ['http://ok.host.invalid/', 'https://u:p@ok.host.invalid/', 'not a url']) {
      const r = await httpsRequest(u, base);
      assert.equal(r.ok ? '' : r.kind, 'bad-url', u);
    }
    assert.equal(dns.asked.length, asked);
  });
});
