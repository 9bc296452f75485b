import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../../src/core/errors.ts';
import { createDnsClient, DnsError, dnsErrorCode, parseDnsServer } from '../../../src/dns/resolver.ts';

describe('parseDnsServer (--dns-server)', () => {
  it('accepts IP literals with and without a port', () => {
    assert.equal(parseDnsServer('127.0.0.1'), '127.0.0.1');
    assert.equal(parseDnsServer(' 127.0.0.1:5353 '), '127.0.0.1:5353');
    assert.equal(parseDnsServer('::1'), '::1');
    assert.equal(parseDnsServer('[::1]:5353'), '[::1]:5353');
    assert.equal(parseDnsServer('[2001:db8::1]'), '2001:db8::1');
  });
  it('refuses host names, bad ports and junk with a UsageError', () => {
    for (const bad of [
      'dns.example',
      'localhost:53',
      '127.0.0.1:0',
      '127.0.0.1:65536',
      '127.0.0.1:x',
      '[::1',
      '[1.2.3.4]:53',
      '',
      '1.2.3',
    ]) {
      assert.throws(() => parseDnsServer(bad), UsageError, bad);
    }
  });
  it('createDnsClient validates its servers up front', () => {
    assert.throws(() => createDnsClient({ servers: ['resolver.example'] }), UsageError);
    assert.deepEqual(createDnsClient({ servers: ['127.0.0.1:5353', '::1'] }).servers, ['127.0.0.1:5353', '::1']);
    assert.equal(createDnsClient({ servers: [] }).servers, null);
  });
});

describe('DNS error codes', () => {
  it('maps c-ares and getaddrinfo codes', () => {
    assert.equal(dnsErrorCode('ENOTFOUND'), 'dns-nxdomain');
    assert.equal(dnsErrorCode('ENODATA'), 'dns-nodata');
    assert.equal(dnsErrorCode('ETIMEOUT'), 'dns-timeout');
    assert.equal(dnsErrorCode('ESERVFAIL'), 'dns-servfail');
    assert.equal(dnsErrorCode('EAI_AGAIN'), 'dns-servfail');
    assert.equal(dnsErrorCode('EREFUSED'), 'dns-refused');
    assert.equal(dnsErrorCode('ECONNREFUSED'), 'dns-failed');
    assert.equal(dnsErrorCode(undefined), 'dns-failed');
  });
  it('only NXDOMAIN and NODATA are permanent', () => {
    const temp = (c: ConstructorParameters<typeof DnsError>[0]): boolean =>
      new DnsError(c, 'x.test', 'MX', 'm').temporary;
    assert.equal(temp('dns-nxdomain'), false);
    assert.equal(temp('dns-nodata'), false);
    for (const c of ['dns-timeout', 'dns-servfail', 'dns-refused', 'dns-failed'] as const) assert.equal(temp(c), true);
    const e = new DnsError('dns-timeout', 'x.test', 'MX', 'MX x.test: timed out');
    assert.equal(e.code, 'dns-timeout');
    assert.equal(e.qname, 'x.test');
    assert.ok(e.hint);
  });
});
