import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../../src/core/errors.ts';
import { parseTarget, resolveTarget } from '../../../src/scan/target.ts';

describe('parseTarget', () => {
  it('takes the default port and dialect from the scheme', () => {
    assert.deepEqual(parseTarget('smtp://MX.Example.org'), {
      url: 'smtp://mx.example.org:25',
      service: 'smtp',
      host: 'mx.example.org',
      port: 25,
      dialect: 'smtp',
    });
    assert.equal(parseTarget('submission://h').port, 587);
    assert.equal(parseTarget('smtps://h').dialect, 'implicit');
    assert.equal(parseTarget('imap://h').dialect, 'imap');
    assert.equal(parseTarget('imaps://h').port, 993);
    assert.equal(parseTarget('pop3://h').dialect, 'pop3');
    assert.equal(parseTarget('pop3s://h:1995').port, 1995);
  });
  it('infers the service from a bare port (RFC 8314 port numbers)', () => {
    assert.equal(parseTarget('127.0.0.1:465').service, 'smtps');
    assert.equal(parseTarget('mail.example:143').service, 'imap');
    assert.equal(parseTarget('[::1]:995').service, 'pop3s');
    assert.equal(parseTarget('[::1]:995').host, '::1');
  });
  it('rejects what it cannot read with a UsageError and a hint', () => {
    for (const bad of ['http://x', 'host', 'host:99999', 'host:2525', 'smtp://', 'smtp://a b', 'smtp://h:0']) {
      assert.throws(
        () => parseTarget(bad),
        (e: unknown) => e instanceof UsageError && e.message.includes(bad) && typeof e.hint === 'string',
        bad,
      );
    }
  });
  it('keeps IP literals as addresses without DNS', async () => {
    const r = await resolveTarget(parseTarget('smtp://127.0.0.1:2525'));
    assert.deepEqual(
      r.map((x) => x.address),
      ['127.0.0.1'],
    );
  });
  it('resolves names through the system resolver (/etc/hosts)', async () => {
    const r = await resolveTarget(parseTarget('smtp://localhost:2525'));
    assert.ok(r.length >= 1);
    assert.ok(
      r.every((x) => x.address === '127.0.0.1' || x.address === '::1'),
      JSON.stringify(r),
    );
  });
});
