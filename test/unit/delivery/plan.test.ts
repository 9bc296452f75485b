/**
 * plan.ts: route > relayhost > literal > MX; null MX (RFC 7505) and implicit MX (RFC 5321 §5.1)
 * from the plain client and from the validated answer; which resolver is asked when.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createEventSink } from '../../../src/core/events.ts';
import type { DeliveryDeps } from '../../../src/delivery/deliver.ts';
import { parseHostPort, planDomain } from '../../../src/delivery/plan.ts';
import type { DomainCtx } from '../../../src/delivery/types.ts';
import type { MxRecord } from '../../../src/dns/resolver.ts';
import { DnsError } from '../../../src/dns/resolver.ts';
import type { TlsLevel } from '../../../src/policy/levels.ts';
import { answer, baseDeps, FakeConnector, tableDns, tableDnssec } from './fakes.ts';

const D = 'dest.test';

function ctx(deps: DeliveryDeps, domain = D): DomainCtx {
  return {
    deps,
    domain,
    policy: deps.policy.lookup(domain),
    msgId: null,
    events: createEventSink({}),
    sts: null,
    stsRechecked: false,
    mxSecure: false,
  };
}

function deps(level: TlsLevel, extra: Partial<DeliveryDeps> = {}): DeliveryDeps {
  return baseDeps(
    { default: { level, profile: null }, domains: {} },
    new FakeConnector({}),
    tableDns({ [D]: ['mx2.dest.test', 'mx1.dest.test'] }),
    extra,
  );
}

const mx = (...names: string[]): MxRecord[] => names.map((exchange, i) => ({ exchange, priority: 10 * (i + 1) }));

describe('planDomain', () => {
  it('route beats relayhost beats MX; no MX lookup for them', async () => {
    const dns = tableDns({});
    const d = deps('verify', { dns, routes: { [D]: '[10.0.0.1]:2525' }, relayhost: 'relay.test:587' });
    assert.deepEqual(await planDomain(ctx(d), false), {
      kind: 'targets',
      targets: [{ mxHost: '10.0.0.1', port: 2525, nextHop: '10.0.0.1', via: 'route' }],
      mxSecure: false,
    });
    const r = await planDomain(ctx({ ...d, routes: {} }), false);
    assert.deepEqual(r.kind === 'targets' && r.targets, [
      { mxHost: 'relay.test', port: 587, nextHop: 'relay.test', via: 'relayhost' },
    ]);
    assert.deepEqual(dns.asked, []);
  });

  it('an address literal is its own target', async () => {
    const r = await planDomain(ctx(deps('may'), '[192.0.2.7]'), false);
    assert.deepEqual(r.kind === 'targets' && r.targets.map((t) => [t.mxHost, t.via]), [['192.0.2.7', 'literal']]);
  });

  it('without DANE or REQUIRETLS the plain client is asked and mxSecure stays false', async () => {
    const dnssec = tableDnssec({});
    const d = deps('verify', { dnssec });
    const r = await planDomain(ctx(d), false);
    assert.deepEqual(r.kind === 'targets' && r.targets.map((t) => t.mxHost), ['mx2.dest.test', 'mx1.dest.test']);
    assert.equal(r.kind === 'targets' && r.mxSecure, false);
    assert.deepEqual(dnssec.asked, []);
  });

  it('level dane: the targets and their status are the validated answer; the plain client is not asked', async () => {
    const dns = tableDns({ [D]: ['forged.attacker.test'] });
    const dnssec = tableDnssec({ mx: { [D]: answer(D, 'MX', 'secure', mx('mx1.dest.test', 'mx2.dest.test')) } });
    const r = await planDomain(ctx(deps('dane', { dns, dnssec })), false);
    assert.deepEqual(r.kind === 'targets' && r.targets.map((t) => [t.mxHost, t.via]), [
      ['mx1.dest.test', 'mx'],
      ['mx2.dest.test', 'mx'],
    ]);
    assert.equal(r.kind === 'targets' && r.mxSecure, true);
    assert.deepEqual(dns.asked, []);
  });

  it('REQUIRETLS consults the validating resolver too; an insecure answer is used but not secure', async () => {
    const dnssec = tableDnssec({ mx: { [D]: answer(D, 'MX', 'insecure', mx('mx1.dest.test')) } });
    const r = await planDomain(ctx(deps('verify', { dnssec })), true);
    assert.deepEqual(r.kind === 'targets' && [r.targets.map((t) => t.mxHost), r.mxSecure], [['mx1.dest.test'], false]);
  });

  it('a bogus or indeterminate MX answer holds the mail (RFC 7672 §2.2.1)', async () => {
    for (const status of ['bogus', 'indeterminate'] as const) {
      const dnssec = tableDnssec({ mx: { [D]: answer<MxRecord>(D, 'MX', status, []) } });
      const r = await planDomain(ctx(deps('dane', { dnssec })), false);
      assert.deepEqual(r, { kind: 'failed', failure: { kind: 'mx-dnssec', status, detail: 'SERVFAIL' } });
    }
  });

  it('null MX (RFC 7505) from either source; a "." beside real MX records is dropped', async () => {
    const nullMx = { records: [], nullMx: true, implicit: false, nullMxMixed: false };
    const plain = await planDomain(ctx(deps('may', { dns: tableDns({ [D]: nullMx }) })), false);
    assert.deepEqual(plain, { kind: 'failed', failure: { kind: 'null-mx' } });
    for (const root of ['.', '']) {
      const dnssec = tableDnssec({ mx: { [D]: answer(D, 'MX', 'secure', [{ exchange: root, priority: 0 }]) } });
      assert.deepEqual(await planDomain(ctx(deps('dane', { dnssec })), false), {
        kind: 'failed',
        failure: { kind: 'null-mx' },
      });
    }
    const mixed = tableDnssec({
      mx: { [D]: answer(D, 'MX', 'secure', [{ exchange: '.', priority: 0 }, ...mx('mx1.dest.test')]) },
    });
    const r = await planDomain(ctx(deps('dane', { dnssec: mixed })), false);
    assert.deepEqual(r.kind === 'targets' && r.targets.map((t) => t.mxHost), ['mx1.dest.test']);
  });

  it('implicit MX (RFC 5321 §5.1) from the validated NODATA answer and the address lookup', async () => {
    const dnssec = tableDnssec({
      mx: { [D]: answer<MxRecord>(D, 'MX', 'secure', []) },
      addresses: { [D]: answer(D, 'A', 'secure', ['192.0.2.9']) },
    });
    const r = await planDomain(ctx(deps('dane', { dnssec })), false);
    assert.deepEqual(r, {
      kind: 'targets',
      targets: [{ mxHost: D, port: 25, nextHop: D, via: 'implicit-mx' }],
      mxSecure: true,
    });
    const none = tableDnssec({
      mx: { [D]: answer<MxRecord>(D, 'MX', 'secure', []) },
      addresses: { [D]: answer<string>(D, 'A', 'secure', []) },
    });
    assert.deepEqual(await planDomain(ctx(deps('dane', { dnssec: none })), false), {
      kind: 'failed',
      failure: { kind: 'no-mail-server' },
    });
    const bogusA = tableDnssec({
      mx: { [D]: answer<MxRecord>(D, 'MX', 'secure', []) },
      addresses: { [D]: answer<string>(D, 'A', 'bogus', []) },
    });
    const b = await planDomain(ctx(deps('dane', { dnssec: bogusA })), false);
    assert.equal(b.kind === 'failed' && b.failure.kind, 'mx-dnssec');
  });

  it('NXDOMAIN bounces; a temporary DNS failure defers', async () => {
    const dnssec = tableDnssec({ mx: { [D]: answer<MxRecord>(D, 'MX', 'secure', [], 'NXDOMAIN') } });
    const r = await planDomain(ctx(deps('dane', { dnssec })), false);
    assert.equal(r.kind === 'failed' && r.failure.kind, 'nxdomain');
    const failing = tableDns({});
    failing.mxLookup = async () => {
      throw new DnsError('dns-timeout', D, 'MX', `MX ${D}: timed out`);
    };
    const t = await planDomain(ctx(deps('may', { dns: failing })), false);
    assert.deepEqual(t, { kind: 'failed', failure: { kind: 'dns-temporary', detail: `MX ${D}: timed out` } });
  });

  it('parseHostPort', () => {
    assert.deepEqual(parseHostPort('h.test', 25), { host: 'h.test', port: 25 });
    assert.deepEqual(parseHostPort('h.test:2525', 25), { host: 'h.test', port: 2525 });
    assert.deepEqual(parseHostPort('[::1]:26', 25), { host: '::1', port: 26 });
    assert.deepEqual(parseHostPort('::1', 25), { host: '::1', port: 25 });
  });
});
