/**
 * decide(): every level × situation. Pure inputs: a NegotiatedSession and a ChainReport as data.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from '../../../src/policy/decide.ts';
import type { DecideInput } from '../../../src/policy/decide.ts';
import { TLS_LEVELS } from '../../../src/policy/levels.ts';
import type { TlsLevel } from '../../../src/policy/levels.ts';
import type { ChainReport } from '../../../src/tls/cert/chain.ts';
import type { CertInfo } from '../../../src/tls/cert/analyze.ts';
import type { NegotiatedSession } from '../../../src/tls/session.ts';
import { getProfile } from '../../../src/tls/profiles/index.ts';

const BSI = getProfile('bsi');

function session(o: Partial<NegotiatedSession> = {}): NegotiatedSession {
  return {
    protocol: 'TLSv1.3',
    cipher: { name: 'TLS_AES_128_GCM_SHA256', standardName: 'TLS_AES_128_GCM_SHA256', version: 'TLSv1.3' },
    group: 'secp256r1',
    ephemeralKeyBits: 256,
    peerChain: [Buffer.from([0x30])],
    peerChainSource: 'issuer-walk',
    authorized: true,
    authorizationError: null,
    servername: 'mx.example.org',
    alpn: null,
    sessionReused: false,
    ...o,
  };
}

function cert(o: Partial<CertInfo> = {}): CertInfo {
  return {
    subject: 'CN=mx.example.org',
    issuer: 'CN=Test CA',
    serialNumber: '01',
    notBefore: '2025-01-01T00:00:00.000Z',
    notAfter: '2027-01-01T00:00:00.000Z',
    keyType: 'EC',
    keyBits: 256,
    curve: 'P-256',
    signatureAlgorithm: 'ecdsa-with-SHA256',
    signatureHash: 'sha256',
    sha256: 'AA',
    dnsNames: ['mx.example.org'],
    ipAddresses: [],
    commonName: 'mx.example.org',
    selfSigned: false,
    isCA: false,
    ...o,
  };
}

function chain(
  o: { leaf?: Partial<CertInfo>; trusted?: boolean; error?: string | null; expired?: boolean } = {},
): ChainReport {
  const leaf = cert(o.leaf);
  return {
    leaf,
    chain: [leaf],
    trust: { trusted: o.trusted ?? true, anchor: o.trusted === false ? null : 'CN=Test CA', error: o.error ?? null },
    hostname: { checked: null, matches: false, matchedName: null },
    validity: { expired: o.expired ?? false, notYetValid: false, daysLeft: o.expired === true ? -3 : 300 },
  };
}

function input(level: TlsLevel, o: Partial<DecideInput> = {}): DecideInput {
  return {
    level,
    profile: null,
    session: session(),
    tlsOffered: true,
    tlsError: null,
    chain: chain(),
    mxHost: 'mx.example.org',
    nextHopDomain: 'example.org',
    policySource: 'example.org',
    ...o,
  };
}

const noTls = { session: null, chain: null };

describe('decide: STARTTLS not offered', () => {
  it('none and may send in cleartext; encrypt and above defer with 4.7.4 naming missing/stripped', () => {
    for (const level of TLS_LEVELS) {
      const d = decide(input(level, { ...noTls, tlsOffered: false }));
      if (level === 'none' || level === 'may') {
        assert.equal(d.ok, true, level);
        assert.equal(d.action, 'cleartext', level);
      } else {
        assert.equal(d.ok, false, level);
        assert.equal(d.temporary, true);
        assert.equal(d.action, 'defer');
        assert.equal(d.enhanced, '4.7.4');
        assert.deepEqual(d.failures, ['starttls-not-supported']);
        assert.match(d.reason, /did not offer STARTTLS/);
        assert.match(d.reason, /stripped/);
        assert.match(d.rule, new RegExp(`^policy example\\.org: ${level}`));
      }
    }
  });
});

describe('decide: STARTTLS refused / handshake failed', () => {
  it('may continues in cleartext on the same connection after a refusal', () => {
    const d = decide(input('may', { ...noTls, tlsError: '454 4.7.0 TLS not available', tlsFailure: 'refused' }));
    assert.equal(d.ok, true);
    assert.equal(d.action, 'cleartext');
    assert.match(d.rule, /STARTTLS refused/);
  });

  it('may retries in cleartext on a new connection after a failed handshake (Postfix)', () => {
    const d = decide(input('may', { ...noTls, tlsError: 'TLS handshake failed: no shared cipher' }));
    assert.equal(d.ok, true);
    assert.equal(d.action, 'cleartext-reconnect');
  });

  it('encrypt/verify/secure never fall back to cleartext', () => {
    for (const level of ['encrypt', 'verify', 'secure'] as const) {
      const r = decide(input(level, { ...noTls, tlsError: '454 4.7.0 TLS not available', tlsFailure: 'refused' }));
      assert.equal(r.ok, false);
      assert.equal(r.action, 'defer');
      assert.deepEqual(r.failures, ['starttls-refused']);
      assert.match(r.reason, /refused STARTTLS \(454 4\.7\.0/);
      const h = decide(input(level, { ...noTls, tlsError: 'TLS handshake failed: unsupported protocol' }));
      assert.equal(h.ok, false);
      assert.equal(h.enhanced, '4.7.5');
      assert.deepEqual(h.failures, ['tls-handshake-failed']);
      assert.match(h.reason, /handshake with mx\.example\.org failed \(TLS handshake failed: unsupported protocol\)/);
    }
  });

  it('none never attempts TLS', () => {
    const d = decide(input('none', noTls));
    assert.equal(d.ok, true);
    assert.equal(d.action, 'cleartext');
    assert.match(d.rule, /TLS not attempted/);
  });
});

describe('decide: a TLS session was negotiated', () => {
  const untrusted = chain({ trusted: false, error: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' });
  const expired = chain({
    trusted: false,
    error: 'CERT_HAS_EXPIRED',
    expired: true,
    leaf: { notAfter: '2020-02-03T00:00:00.000Z' },
  });
  const selfSigned = chain({ trusted: false, error: 'DEPTH_ZERO_SELF_SIGNED_CERT', leaf: { selfSigned: true } });
  const wrongName = chain({ leaf: { dnsNames: ['abc.xy'] } });

  it('may and encrypt accept any certificate', () => {
    for (const level of ['may', 'encrypt'] as const) {
      for (const c of [untrusted, expired, selfSigned, wrongName, null]) {
        const d = decide(input(level, { chain: c }));
        assert.equal(d.ok, true, `${level}`);
        assert.equal(d.action, 'tls');
      }
    }
  });

  it('verify needs a trusted chain and the MX name', () => {
    assert.equal(decide(input('verify')).ok, true);
    assert.match(decide(input('verify')).rule, /trusted chain, name mx\.example\.org matches mx\.example\.org/);
    const u = decide(input('verify', { chain: untrusted }));
    assert.equal(u.ok, false);
    assert.deepEqual(u.failures, ['certificate-not-trusted']);
    assert.match(
      u.rule,
      /^policy example\.org: verify — certificate not trusted \(UNABLE_TO_GET_ISSUER_CERT_LOCALLY\)/,
    );
    assert.match(u.reason, /not trusted/);
    const e = decide(input('verify', { chain: expired }));
    assert.deepEqual(e.failures, ['certificate-expired']);
    assert.match(e.reason, /expired on 2020-02-03/);
    const s = decide(input('verify', { chain: selfSigned }));
    assert.match(s.reason, /self-signed/);
    const n = decide(input('verify', { chain: wrongName }));
    assert.deepEqual(n.failures, ['certificate-host-mismatch']);
    assert.match(n.reason, /valid for abc\.xy, not for mx\.example\.org/);
    const none = decide(input('verify', { chain: null }));
    assert.deepEqual(none.failures, ['certificate-missing']);
  });

  it('verify matches a wildcard SAN for the MX name (RFC 9525)', () => {
    assert.equal(decide(input('verify', { chain: chain({ leaf: { dnsNames: ['*.example.org'] } }) })).ok, true);
    assert.equal(decide(input('verify', { chain: chain({ leaf: { dnsNames: ['*.org'] } }) })).ok, false);
  });

  it('secure matches the next-hop domain or a name under it, not merely the MX name', () => {
    // mx.example.org is under the next hop example.org (dot-nexthop): ok.
    assert.equal(decide(input('secure')).ok, true);
    assert.equal(decide(input('secure', { chain: chain({ leaf: { dnsNames: ['example.org'] } }) })).ok, true);
    // An MX elsewhere whose certificate matches only its own name fails secure but passes verify.
    const elsewhere = { mxHost: 'mx.hoster.test', chain: chain({ leaf: { dnsNames: ['mx.hoster.test'] } }) };
    assert.equal(decide(input('verify', elsewhere)).ok, true);
    const d = decide(input('secure', elsewhere));
    assert.equal(d.ok, false);
    assert.deepEqual(d.failures, ['certificate-host-mismatch']);
    assert.match(d.reason, /not for example\.org or a name under it/);
    assert.equal(decide(input('secure', { chain: untrusted })).ok, false);
  });

  it('verify refuses forgeable signatures and small keys on the path', () => {
    const sha1 = decide(
      input('verify', {
        chain: chain({ leaf: { signatureHash: 'sha1', signatureAlgorithm: 'sha1WithRSAEncryption' } }),
      }),
    );
    assert.equal(sha1.ok, false);
    assert.deepEqual(sha1.failures, ['certificate-weak']);
    assert.match(sha1.reason, /sha1WithRSAEncryption.*cert-weak-signature/);
    const small = decide(input('verify', { chain: chain({ leaf: { keyType: 'RSA', keyBits: 1024, curve: null } }) }));
    assert.match(small.reason, /RSA-1024 key.*cert-weak-key/);
    // encrypt does not look at certificates at all.
    assert.equal(decide(input('encrypt', { chain: chain({ leaf: { signatureHash: 'sha1' } }) })).ok, true);
  });

  it('TLS below 1.2 fails every mandatory level (RFC 8996) but is fine for may', () => {
    const old = session({
      protocol: 'TLSv1',
      cipher: {
        name: 'ECDHE-RSA-AES128-SHA',
        standardName: 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA',
        version: 'TLSv1/SSLv3',
      },
    });
    assert.equal(decide(input('may', { session: old })).ok, true);
    for (const level of ['encrypt', 'verify', 'secure'] as const) {
      const d = decide(input(level, { session: old }));
      assert.equal(d.ok, false);
      assert.ok(d.failures.includes('tls-version-deprecated'));
      assert.match(d.reason, /negotiated TLS 1\.0, which RFC 8996 forbids \(protocol-tls1\.0\)/);
    }
  });

  it('a profile is enforced with tls/evaluate and the failing rule ids are named', () => {
    const old = session({
      protocol: 'TLSv1',
      cipher: {
        name: 'ECDHE-RSA-AES128-SHA',
        standardName: 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA',
        version: 'TLSv1/SSLv3',
      },
    });
    const d = decide(input('encrypt', { profile: BSI, session: old }));
    assert.equal(d.ok, false);
    assert.equal(d.temporary, true);
    assert.ok(d.failures.includes('profile-noncompliant'));
    assert.deepEqual(d.findings.map((f) => f.id).sort(), ['cipher-not-allowed', 'protocol-tls1.0']);
    assert.match(d.reason, /the receiving server mx\.example\.org negotiated TLS 1\.0/);
    assert.match(d.reason, /TLS 1\.0 \(protocol-tls1\.0\)/);
    assert.match(d.reason, /cipher suite TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA \(cipher-not-allowed\)/);
    assert.match(d.reason, /your policy for example\.org requires encrypt and BSI TR-02102-2/);
    assert.match(d.rule, /^policy example\.org: encrypt \+ bsi — /);
    // RFC 8996 is said once: the profile's own finding names the version.
    assert.equal(d.reason.match(/TLS 1\.0/g)?.length, 2);
  });

  it('BSI refuses X25519 (not in TR-02102-2) but accepts secp256r1', () => {
    assert.equal(decide(input('encrypt', { profile: BSI })).ok, true);
    const x = decide(input('encrypt', { profile: BSI, session: session({ group: 'X25519' }) }));
    assert.equal(x.ok, false);
    assert.match(x.reason, /key exchange group X25519 \(group-not-allowed\)/);
    // The same session is fine under NCSC-NL.
    assert.equal(
      decide(input('encrypt', { profile: getProfile('ncsc-nl'), session: session({ group: 'X25519' }) })).ok,
      true,
    );
  });

  it('verify + profile reports both certificate and crypto failures', () => {
    const d = decide(
      input('verify', {
        profile: BSI,
        chain: chain({ trusted: false, error: 'X', leaf: { keyType: 'RSA', keyBits: 2048, curve: null } }),
      }),
    );
    assert.equal(d.ok, false);
    assert.ok(d.failures.includes('certificate-not-trusted'));
    assert.ok(d.failures.includes('profile-noncompliant'));
    assert.match(d.reason, /cert-weak-key/);
  });

  it('the default policy is named as such', () => {
    const d = decide(
      input('encrypt', { ...noTls, tlsOffered: false, policySource: 'default', policyDomain: 'dest.test' }),
    );
    assert.match(d.rule, /^policy default: encrypt/);
    assert.match(d.reason, /the default policy \(applied to dest\.test\) requires TLS/);
  });
});

describe('decide: MTA-STS over secure (RFC 8461 §4.1)', () => {
  it('secure accepts a certificate for the next-hop domain only, but not when MTA-STS requires the MX name', () => {
    const domainOnly = chain({ leaf: { dnsNames: ['example.org'], subject: 'CN=example.org' } });
    assert.equal(decide(input('secure', { chain: domainOnly })).ok, true);
    const sts = decide(input('secure', { chain: domainOnly, via: 'MTA-STS', mxNameRequired: true }));
    assert.equal(sts.ok, false);
    assert.deepEqual(sts.failures, ['certificate-host-mismatch']);
    assert.match(sts.reason, /MTA-STS policy requires \(RFC 8461 §4\.1\)/);
    assert.equal(decide(input('secure', { mxNameRequired: true })).ok, true, 'a certificate for the MX name passes');
  });
});
