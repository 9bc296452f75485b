/**
 * The outbound policy matrix as a golden file, in the spirit of Postfix's src/smtp/tls_policy.in
 * / tls_policy.ref: every table level × DANE state × MTA-STS mode × TLS facts → the decision the
 * delivery pipeline makes for one MX host (policy/resolve.ts, then policy/decide.ts, exactly as
 * src/delivery/loop.ts and attempt.ts call them). The table is generated and compared byte for
 * byte with policy-matrix.ref; regenerate with POSTERN_UPDATE_GOLDEN=1 and read the diff.
 *
 * Columns: level | dane | mta-sts | tls || use/skip | enforced level | ok/fail | action | rule
 * - dane: none (securely no TLSA), secure-usable (a DANE-EE record matching certificate A),
 *   secure-unusable (only PKIX-EE, unusable in SMTP: RFC 7672 §3.1.3), insecure, bogus. Only
 *   looked up at levels dane/dane-only (as the loop does); other levels see no DANE state.
 * - mta-sts: none | testing/enforce with the MX listed or not; "enforce-unlisted+mxsec": not
 *   listed, but the MX RRset is DNSSEC-validated (RFC 8461 §2 / resolve.ts step 2).
 * - tls: what the server did: no STARTTLS; TLS 1.0 / TLS 1.2 with a PKIX-untrusted certificate /
 *   TLS 1.2 trusted for another name / TLS 1.3 trusted for the MX name / TLS 1.3 trusted for the
 *   recipient domain only, not the MX name (all certificate B);
 *   DANE match (TLS 1.3, self-signed certificate A: matches the TLSA record, not PKIX) / DANE
 *   mismatch (TLS 1.3, self-signed certificate B).
 * Hex digests in rule texts are shown as <hex> (the certificates are made per run).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import type { TlsaRecord } from '../../src/dns/dnssec.ts';
import type { DaneState } from '../../src/policy/dane/lookup.ts';
import { tlsaAssociation } from '../../src/policy/dane/verify.ts';
import { decide } from '../../src/policy/decide.ts';
import { attemptsTls, TLS_LEVELS, wantsDane } from '../../src/policy/levels.ts';
import type { TlsLevel } from '../../src/policy/levels.ts';
import { resolveHostPolicy } from '../../src/policy/resolve.ts';
import type { StsInput } from '../../src/policy/resolve.ts';
import type { CertInfo } from '../../src/tls/cert/analyze.ts';
import type { ChainReport } from '../../src/tls/cert/chain.ts';
import type { NegotiatedSession } from '../../src/tls/session.ts';
import { makeCert } from '../helpers/certs.ts';

const REF = new URL('./policy-matrix.ref', import.meta.url);
const MX = 'mx.example.org';
const DOMAIN = 'example.org';
const NOW = new Date('2026-06-01T00:00:00Z');

const DANE_STATES = ['none', 'secure-usable', 'secure-unusable', 'insecure', 'bogus'] as const;
const STS_MODES = [
  'none',
  'testing-listed',
  'testing-unlisted',
  'enforce-listed',
  'enforce-unlisted',
  'enforce-unlisted+mxsec',
] as const;
const TLS_FACTS = [
  'no-starttls',
  'tls1.0-trusted',
  'tls1.2-untrusted',
  'tls1.2-trusted-wrong-name',
  'tls1.3-trusted',
  'tls1.3-trusted-domain-only',
  'dane-match',
  'dane-mismatch',
] as const;

function certInfo(o: Partial<CertInfo>): CertInfo {
  return {
    subject: `CN=${MX}`,
    issuer: 'CN=Test CA',
    serialNumber: '01',
    notBefore: '2026-01-01T00:00:00.000Z',
    notAfter: '2027-01-01T00:00:00.000Z',
    keyType: 'EC',
    keyBits: 256,
    curve: 'P-256',
    signatureAlgorithm: 'ecdsa-with-SHA256',
    signatureHash: 'sha256',
    sha256: 'AA',
    dnsNames: [MX],
    ipAddresses: [],
    commonName: MX,
    selfSigned: false,
    isCA: false,
    ...o,
  };
}

function chainReport(trusted: boolean, leaf: Partial<CertInfo>): ChainReport {
  const l = certInfo(leaf);
  return {
    leaf: l,
    chain: [l],
    trust: {
      trusted,
      anchor: trusted ? 'CN=Test CA' : null,
      error: trusted ? null : 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    },
    hostname: { checked: MX, matches: l.dnsNames.includes(MX), matchedName: null },
    validity: { expired: false, notYetValid: false, daysLeft: 200 },
  };
}

function session(protocol: string, der: Buffer): NegotiatedSession {
  const tls13 = protocol === 'TLSv1.3';
  const cipher = tls13 ? 'TLS_AES_128_GCM_SHA256' : 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256';
  return {
    protocol,
    cipher: { name: cipher, standardName: cipher, version: protocol },
    group: 'x25519',
    ephemeralKeyBits: 253,
    peerChain: [der],
    peerChainSource: 'issuer-walk',
    authorized: false,
    authorizationError: null,
    servername: MX,
    alpn: null,
    sessionReused: false,
  };
}

interface Facts {
  offered: boolean;
  session: NegotiatedSession | null;
  chain: ChainReport | null;
}

async function build(): Promise<string> {
  const certA = await makeCert({ subject: `CN=${MX}`, dnsNames: [MX] });
  const certB = await makeCert({ subject: `CN=${MX}`, dnsNames: [MX] });
  const usable: TlsaRecord = { usage: 3, selector: 1, matchingType: 1, data: tlsaAssociation(certA.der, 1, 1) };
  const unusable: TlsaRecord = { usage: 1, selector: 1, matchingType: 1, data: tlsaAssociation(certA.der, 1, 1) };
  const dane = (s: (typeof DANE_STATES)[number]): DaneState => {
    switch (s) {
      case 'none':
        return { kind: 'none', base: MX, why: 'no-tlsa' };
      case 'secure-usable':
        return { kind: 'dane', base: MX, records: [usable], unusable: [], all: [usable] };
      case 'secure-unusable':
        return {
          kind: 'encrypt-only',
          base: MX,
          unusable: [{ record: unusable, why: 'PKIX-EE(1) is not used for SMTP' }],
          all: [unusable],
        };
      case 'insecure':
        return { kind: 'none', base: MX, why: 'insecure-tlsa' };
      case 'bogus':
        return { kind: 'failed', base: MX, status: 'bogus', detail: `TLSA lookup for _25._tcp.${MX}: SERVFAIL` };
    }
  };
  const sts = (m: (typeof STS_MODES)[number]): StsInput | null => {
    if (m === 'none') return null;
    const mode = m.startsWith('enforce') ? 'enforce' : 'testing';
    const mx = m.endsWith('-listed') ? [MX] : ['mx.other.example'];
    return {
      policy: { version: 'STSv1', mode, mx, maxAge: 86400 },
      text: `version: STSv1\nmode: ${mode}\nmx: ${mx.join('\nmx: ')}\nmax_age: 86400\n`,
      id: 'id1',
    };
  };
  const selfSigned = { selfSigned: true, issuer: `CN=${MX}` };
  const facts: Record<(typeof TLS_FACTS)[number], Facts> = {
    'no-starttls': { offered: false, session: null, chain: null },
    'tls1.0-trusted': { offered: true, session: session('TLSv1', certB.der), chain: chainReport(true, {}) },
    'tls1.2-untrusted': {
      offered: true,
      session: session('TLSv1.2', certB.der),
      chain: chainReport(false, selfSigned),
    },
    'tls1.2-trusted-wrong-name': {
      offered: true,
      session: session('TLSv1.2', certB.der),
      chain: chainReport(true, { dnsNames: ['mail.other.example'], subject: 'CN=mail.other.example' }),
    },
    'tls1.3-trusted': { offered: true, session: session('TLSv1.3', certB.der), chain: chainReport(true, {}) },
    'tls1.3-trusted-domain-only': {
      offered: true,
      session: session('TLSv1.3', certB.der),
      chain: chainReport(true, { dnsNames: [DOMAIN], subject: `CN=${DOMAIN}` }),
    },
    'dane-match': { offered: true, session: session('TLSv1.3', certA.der), chain: chainReport(false, selfSigned) },
    'dane-mismatch': { offered: true, session: session('TLSv1.3', certB.der), chain: chainReport(false, selfSigned) },
  };

  const lines = [
    '# Generated by test/conformance/policy-matrix.test.ts (POSTERN_UPDATE_GOLDEN=1). Do not edit.',
    '# level | dane | mta-sts | tls || use/skip | enforced level | ok/fail | action | rule',
  ];
  for (const level of TLS_LEVELS) {
    for (const d of DANE_STATES) {
      for (const m of STS_MODES) {
        for (const f of TLS_FACTS) {
          lines.push(`${[level, d, m, f].join(' | ')} || ${row(level, d, m, f)}`);
        }
      }
    }
  }
  return lines.join('\n').replace(/\b[0-9a-f]{8,}\b/g, '<hex>') + '\n';

  function row(
    level: TlsLevel,
    d: (typeof DANE_STATES)[number],
    m: (typeof STS_MODES)[number],
    f: (typeof TLS_FACTS)[number],
  ): string {
    const table = { level, profile: null, matched: `domain ${DOMAIN}` };
    // As plan.ts/loop.ts: TLSA looked up only for the DANE levels.
    const hp = resolveHostPolicy({
      table,
      mxHost: MX,
      mxSecure: m.endsWith('+mxsec'),
      dane: wantsDane(level) ? dane(d) : null,
      sts: sts(m),
    });
    if (hp.kind === 'skip') return `skip | - | fail | defer | ${hp.rule} (${hp.resultType})`;
    const x = facts[f];
    // As attempt.ts: STARTTLS only when the level attempts TLS and the server offers it.
    const tls = attemptsTls(hp.level) && x.offered;
    const via = hp.source === 'dane' ? 'DANE' : hp.source === 'mta-sts' ? 'MTA-STS' : undefined;
    const dec = decide({
      level: hp.level,
      profile: hp.profile,
      session: tls ? x.session : null,
      tlsOffered: x.offered,
      tlsError: null,
      chain: tls ? x.chain : null,
      mxHost: MX,
      nextHopDomain: DOMAIN,
      policySource: DOMAIN,
      policyDomain: DOMAIN,
      now: NOW,
      ...(hp.dane !== null ? { dane: hp.dane } : {}),
      ...(via !== undefined ? { via } : {}),
      ...(hp.source === 'mta-sts' ? { mxNameRequired: true } : {}),
    });
    const testing =
      hp.stsTesting !== null
        ? ` [MTA-STS testing: MX ${hp.stsTesting.mxCovered ? 'listed' : 'not listed'}, reported only]`
        : '';
    return `use | ${hp.level} | ${dec.ok ? 'ok' : 'fail'} | ${dec.action} | ${dec.rule}${testing}`;
  }
}

describe('policy matrix golden file (tls_policy.in/.ref style)', () => {
  it('every level × DANE state × MTA-STS mode × TLS facts decides as policy-matrix.ref says', async () => {
    const got = await build();
    if (process.env['POSTERN_UPDATE_GOLDEN'] === '1') await writeFile(REF, got);
    const want = await readFile(REF, 'utf8');
    assert.equal(got, want, 'the decisions changed: regenerate with POSTERN_UPDATE_GOLDEN=1 and review the diff');
    assert.equal(
      got.split('\n').length - 3,
      TLS_LEVELS.length * DANE_STATES.length * STS_MODES.length * TLS_FACTS.length,
    );
  });
});
