/** tooSlowFindings: what the server-too-slow finding says, from probe errors and the budget. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tooSlowFindings } from '../../../src/scan/findings.ts';

const live = { ms: 120_000, expired: () => false };
const spent = { ms: 120_000, expired: () => true };

describe('tooSlowFindings', () => {
  it('says nothing for a probe that was not slow', () => {
    assert.deepEqual(
      tooSlowFindings([{ phase: 'enumerate TLSv1.3', code: 'net-timeout', message: 'x' }], null, live),
      [],
    );
  });

  it('lists each connection whose greeting and capabilities overran, as medium', () => {
    const [f, ...rest] = tooSlowFindings(
      [
        {
          phase: 'enumerate TLSv1.3',
          code: 'net-too-slow',
          message: 'greeting and capabilities not complete after 30000 ms (41 server lines received)',
        },
        { phase: 'groups', code: 'tls-handshake-failed', message: 'other' },
      ],
      null,
      live,
    );
    assert.equal(rest.length, 0);
    assert.equal(f?.id, 'server-too-slow');
    assert.equal(f?.severity, 'medium');
    assert.match(f?.message ?? '', /took too long to send its greeting and capabilities/);
    assert.deepEqual(f?.evidence, [
      'enumerate TLSv1.3: greeting and capabilities not complete after 30000 ms (41 server lines received)',
    ]);
  });

  it('when the endpoint budget ran out: says so, and names the phases it cut short once each', () => {
    const [f] = tooSlowFindings(
      [
        { phase: 'preference TLSv1.2', code: 'aborted', message: 'probe aborted' },
        { phase: 'groups', code: 'aborted', message: 'probe aborted' },
        { phase: 'groups', code: 'aborted', message: 'probe aborted' },
      ],
      'first connection: interrupted by the endpoint budget',
      spent,
    );
    assert.match(
      f?.message ?? '',
      /^scan stopped after 120000 ms: .*results are incomplete \(--endpoint-timeout waits longer\)$/,
    );
    assert.deepEqual(f?.evidence, [
      'first connection: interrupted by the endpoint budget',
      'endpoint budget of 120000 ms (--endpoint-timeout) ran out; not finished: preference TLSv1.2, groups',
    ]);
  });
});
