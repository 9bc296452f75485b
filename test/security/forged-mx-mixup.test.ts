/**
 * Attack: a forged (unsigned) MX answer used under the DNSSEC status of a different, validated
 * answer. The delivery loop used to take its targets from `dns.mxLookup` (node:dns, any of the
 * configured servers, no validation) while `mxSecure` came from a separate `dnssec.mx()` query.
 * An attacker who could forge the plain answer (off-path spoofing of the non-validating path, a
 * second resolver) got their MX host treated as "from a DNSSEC-validated RRset": it passed the
 * MTA-STS MX filter (RFC 8461 §4.1) when it had its own signed TLSA, and it counted as an
 * authenticated next hop for REQUIRETLS (RFC 8689 §4.1).
 *
 * Fixed: whenever the DNSSEC resolver is consulted for a domain, the targets ARE the validated
 * answer (one query for the check and the use), so they cannot differ.
 *
 * Fakes only (no network): the plain client answers mx.attacker.test, the validating resolver
 * answers mx.victim.test (secure). `connectOverride` records which host names delivery tries to
 * reach and sends them to a closed loopback port.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deliverMessage, policyCheck } from '../../src/delivery/deliver.ts';
import type { DeliveryDeps } from '../../src/delivery/deliver.ts';
import type { DnssecAnswer, DnssecResolver, TlsaRecord } from '../../src/dns/dnssec.ts';
import type { DnsClient, MxLookup, MxRecord } from '../../src/dns/resolver.ts';
import { PolicyTable } from '../../src/policy/table.ts';
import type { TlsLevel } from '../../src/policy/levels.ts';
import { queuedMessage, TEST_TIMEOUTS } from '../helpers/queued.ts';

const DOMAIN = 'victim.test';
const FORGED: MxLookup = {
  records: [{ exchange: 'mx.attacker.test', priority: 10 }],
  nullMx: false,
  implicit: false,
  nullMxMixed: false,
};

function plainDns(): DnsClient {
  return {
    servers: null,
    mx: async () => FORGED.records,
    mxLookup: async () => FORGED,
    addresses: async () => ['127.0.0.1'],
    txt: async () => [],
    srv: async () => ({ records: [], notAvailable: false }),
  };
}

function answer<T>(
  qname: string,
  qtype: DnssecAnswer<T>['qtype'],
  status: DnssecAnswer<T>['status'],
  records: T[],
): DnssecAnswer<T> {
  return { qname, qtype, status, rcode: 'NOERROR', records, canonicalName: qname, detail: null };
}

/** The validating resolver: the real, signed MX; the attacker's host has its own signed TLSA. */
function validating(): DnssecResolver {
  const tlsa: TlsaRecord = { usage: 3, selector: 1, matchingType: 1, data: Buffer.alloc(32, 7) };
  return {
    server: '127.0.0.1:53',
    validating: true,
    mx: async (d) =>
      answer<MxRecord>(
        d,
        'MX',
        d === DOMAIN ? 'secure' : 'insecure',
        d === DOMAIN ? [{ exchange: 'mx.victim.test', priority: 10 }] : [],
      ),
    addresses: async (h) => answer<string>(h, 'A', 'secure', ['127.0.0.1']),
    txt: async (n) => answer<string[]>(n, 'TXT', 'insecure', []),
    tlsa: async (h, port) => answer<TlsaRecord>(`_${port}._tcp.${h}`, 'TLSA', 'secure', [tlsa]),
  };
}

function deps(level: TlsLevel, tried: string[], extra: Partial<DeliveryDeps> = {}): DeliveryDeps {
  return {
    dns: plainDns(),
    dnssec: validating(),
    policy: new PolicyTable({ default: { level, profile: null }, domains: {} }),
    routes: {},
    heloName: 'gw.test',
    now: () => new Date(),
    timeouts: TEST_TIMEOUTS,
    // Port 1 on loopback: nothing listens, the attempt fails at once.
    connectOverride: (host) => {
      tried.push(host);
      return { address: '127.0.0.1', port: 1 };
    },
    ...extra,
  };
}

const BODY = Buffer.from('Subject: t\r\n\r\nhello\r\n');

describe('forged MX answer vs validated MX status', () => {
  it('level dane: the MX hosts tried are the ones from the validated answer', async () => {
    const tried: string[] = [];
    const [st] = await deliverMessage(queuedMessage('fmx1', [`bob@${DOMAIN}`], BODY), BODY, deps('dane', tried));
    assert.deepEqual(tried, ['mx.victim.test']);
    assert.equal(st?.state, 'deferred');
  });

  it('REQUIRETLS: an unvalidated MX never counts as authenticated by DNSSEC', async () => {
    const tried: string[] = [];
    const msg = queuedMessage('fmx2', [`bob@${DOMAIN}`], BODY, { requireTls: true });
    await deliverMessage(msg, BODY, deps('verify', tried));
    assert.deepEqual(tried, ['mx.victim.test']);
  });

  it('MTA-STS enforce: a forged MX with its own signed TLSA does not slip past the MX filter', async () => {
    const tried: string[] = [];
    const view = {
      state: 'policy' as const,
      policy: { version: 'STSv1' as const, mode: 'enforce' as const, mx: ['mx.victim.test'], maxAge: 86400 },
      id: '1',
      policyText: 'version: STSv1\nmode: enforce\nmx: mx.victim.test\nmax_age: 86400\n',
      error: null,
    };
    const sts = { lookup: async () => view, recheck: async () => view };
    await deliverMessage(queuedMessage('fmx3', [`bob@${DOMAIN}`], BODY), BODY, deps('dane', tried, { sts }));
    assert.deepEqual(tried, ['mx.victim.test']);
  });

  it('postern policy check reports the validated MX hosts', async () => {
    const tried: string[] = [];
    const r = await policyCheck(DOMAIN, deps('dane', tried));
    assert.deepEqual(
      r.mx.map((m) => m.host),
      ['mx.victim.test'],
    );
  });
});
