/**
 * outcome.ts, pure: replies → recipient states (the reply code decides, RFC 5321 §4.2.1), plan
 * failures and exhausted loops → one outcome, RecipientStatus with extra fields kept.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  exhaustedOutcome,
  planFailureOutcome,
  toRecipientStatus,
  transactionOutcomes,
} from '../../../src/delivery/outcome.ts';
import type { Exhausted, TransactionContext } from '../../../src/delivery/outcome.ts';
import type { PolicyDecision } from '../../../src/policy/decide.ts';
import type { RecipientStatus } from '../../../src/queue/types.ts';
import type { RecipientResult } from '../../../src/smtp/client/session.ts';
import { SmtpClientError } from '../../../src/smtp/client/errors.ts';

const decision: PolicyDecision = {
  ok: true,
  temporary: false,
  rule: 'policy default: may — TLS',
  reason: 'sent',
  action: 'tls',
  enhanced: null,
  failures: [],
  findings: [],
};
const ctx: TransactionContext = {
  to: { host: 'mx.test', address: '192.0.2.1', port: 25 },
  tls: null,
  decision,
  dsn: true,
};
const res = (address: string, text: string, ok = false, stage: RecipientResult['stage'] = 'rcpt'): RecipientResult => ({
  address,
  ok,
  temporary: false,
  reply: { code: Number(text.slice(0, 3)), enhanced: null, text },
  stage,
});
const pend = (address: string, notify: 'NEVER' | null = null) => ({ rcpt: { address, dsn: { notify, orcpt: null } } });

describe('transactionOutcomes', () => {
  it('by position: the same address twice keeps two outcomes', () => {
    const p = [pend('a@x.test'), pend('a@x.test')];
    const out = transactionOutcomes(p, [res('a@x.test', '250 ok', true), res('a@x.test', '452 4.5.3 too many')], ctx);
    assert.equal(out[0]?.[0], p[0]);
    assert.equal(out[1]?.[0], p[1]);
    assert.deepEqual(
      out.map(([, o]) => o.kind),
      ['delivered', 'deferred'],
    );
  });
  it('the reply code decides, whatever the client or the enhanced code said', () => {
    const rows: Array<[string, string]> = [
      ['550 4.7.1 no', 'bounced'],
      ['450 5.1.1 later', 'deferred'],
      ['554 5.7.1 no', 'bounced'],
      ['999 junk', 'deferred'],
    ];
    for (const [text, kind] of rows) {
      const [[, o] = []] = transactionOutcomes([pend('a@x.test')], [res('a@x.test', text)], ctx);
      assert.equal(o?.kind, kind, text);
      assert.equal(o?.reply, text);
    }
  });
  it('a missing result defers rather than inventing a delivery', () => {
    const [[, o] = []] = transactionOutcomes([pend('a@x.test')], [], ctx);
    assert.equal(o?.kind, 'deferred');
  });
  it('dsnPassedOn only with NOTIFY given and a DSN-capable next hop (RFC 3461 §6.2)', () => {
    const ok = [res('a@x.test', '250 ok', true)];
    const get = (notify: 'NEVER' | null, dsn: boolean) => {
      const [[, o] = []] = transactionOutcomes([pend('a@x.test', notify)], ok, { ...ctx, dsn });
      return o?.kind === 'delivered' ? o.dsnPassedOn : null;
    };
    assert.equal(get('NEVER', true), true);
    assert.equal(get(null, true), false);
    assert.equal(get('NEVER', false), false);
  });
});

describe('plan and loop outcomes', () => {
  it('null MX 556 5.1.10, nxdomain 550 5.1.2, dnssec 451 4.7.5', () => {
    assert.match(planFailureOutcome('d.test', { kind: 'null-mx' }).reply ?? '', /^556 5\.1\.10 /);
    assert.equal(planFailureOutcome('d.test', { kind: 'nxdomain', detail: 'x' }).kind, 'bounced');
    const o = planFailureOutcome('d.test', { kind: 'mx-dnssec', status: 'bogus', detail: null });
    assert.equal(o.kind === 'deferred' && o.cause, 'dnssec');
    assert.equal(o.reply, '451 4.7.5 MX lookup bogus');
  });
  const empty: Exhausted = {
    policyFailures: [],
    lastPolicy: null,
    requireTlsRefusals: [],
    unsuitable: null,
    errors: [],
    attempted: 0,
  };
  it('a policy failure defers (cause tls-policy) before anything else', () => {
    const o = exhaustedOutcome('d.test', { ...empty, policyFailures: ['p'], requireTlsRefusals: ['r'], errors: ['e'] });
    assert.equal(o.kind === 'deferred' && o.cause, 'tls-policy');
  });
  it('REQUIRETLS refusals bounce 5.7.30 only when no MX was merely unreachable', () => {
    assert.equal(
      exhaustedOutcome('d.test', { ...empty, requireTlsRefusals: ['r'] }).reply,
      '550 5.7.30 REQUIRETLS support required',
    );
    assert.equal(exhaustedOutcome('d.test', { ...empty, requireTlsRefusals: ['r'], errors: ['e'] }).kind, 'deferred');
  });
  it('an unsuitable server bounces with its code', () => {
    const u = new SmtpClientError('message-too-big', 'too big', {
      stage: 'mail',
      temporary: false,
      smtpCode: 552,
      enhanced: '5.3.4',
    });
    assert.equal(exhaustedOutcome('d.test', { ...empty, unsuitable: u, attempted: 1 }).reply, '552 5.3.4 too big');
  });
  it('nothing reachable defers 4.4.1', () => {
    assert.equal(exhaustedOutcome('d.test', empty).reply, '451 4.4.1 no address found for any MX host');
  });
});

describe('toRecipientStatus', () => {
  it('spreads the status (extra fields pass through), counts the attempt, keeps dsnPassedOn', () => {
    const st = {
      address: 'a@x.test',
      state: 'queued',
      attempts: 2,
      lastReply: null,
      reason: null,
      nextAttemptAt: 'x',
      updatedAt: 'y',
      id: 7,
    } as RecipientStatus;
    const out = toRecipientStatus(
      st,
      { kind: 'delivered', reply: '250 ok', reason: 'r', mx: 'mx', dsnPassedOn: true },
      'now',
    );
    assert.deepEqual(out, {
      ...st,
      state: 'delivered',
      attempts: 3,
      lastReply: '250 ok',
      reason: 'r',
      nextAttemptAt: null,
      updatedAt: 'now',
      dsnPassedOn: true,
    });
    const e2e = toRecipientStatus(st, { kind: 'e2e-encrypted', reply: '250 ok', reason: 'r', mx: 'mx' }, 'now');
    assert.equal(e2e.state, 'delivered');
  });
});
