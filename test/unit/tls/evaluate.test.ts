import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate, factsFromSession, protocolFindingId } from '../../../src/tls/evaluate.ts';
import type { CertFacts, RuleFinding, TlsFacts, Verdict } from '../../../src/tls/evaluate.ts';
import { BSI_PROFILE, BSI_TLS12_TABLE1, BSI_TLS13 } from '../../../src/tls/profiles/bsi.ts';
import { getProfile, PROFILE_IDS } from '../../../src/tls/profiles/index.ts';
import type { ProfileId } from '../../../src/tls/profiles/index.ts';
import type { Profile } from '../../../src/tls/profiles/types.ts';
import { suiteByCode, suiteByName } from '../../../src/tls/wire/suites.ts';
import { groupByName } from '../../../src/tls/wire/constants.ts';

const bsi = getProfile('bsi');
const ncsc = getProfile('ncsc-nl');
const mozI = getProfile('mozilla-intermediate');
const mozM = getProfile('mozilla-modern');

function code(name: string): number {
  const s = suiteByName(name);
  assert.ok(s, `test data: unknown suite ${name}`);
  return s.code;
}

function cert(o: Partial<CertFacts> = {}): CertFacts {
  return {
    keyType: 'EC',
    keyBits: 256,
    curve: 'P-256',
    signatureHash: 'sha256',
    signatureAlgorithm: 'ecdsa-with-SHA256',
    selfSigned: false,
    subject: 'CN=mx.example.test',
    ...o,
  };
}

const GOOD_FEATURES = {
  secureRenegotiation: true,
  compression: false,
  clientRenegotiation: false,
  heartbeat: false,
  encryptThenMac: true,
  extendedMasterSecret: true,
  fallbackScsv: true,
} as const;

/** Everything BSI asks for, ECDSA P-256 leaf under an RSA-4096 CA, which sends its (weak, SHA-1) root along. */
function bsiPerfect(): TlsFacts {
  return {
    protocols: ['TLSv1.2', 'TLSv1.3'],
    suites: {
      'TLSv1.2': [
        code('TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'),
        code('TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'),
        code('TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384'),
        code('TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256'),
      ],
      'TLSv1.3': [code('TLS_AES_256_GCM_SHA384'), code('TLS_AES_128_GCM_SHA256')],
    },
    groups: ['secp384r1', 'secp256r1', 'brainpoolP256r1'],
    dhBits: [],
    certificates: [
      cert(),
      cert({
        keyType: 'RSA',
        keyBits: 4096,
        curve: null,
        signatureAlgorithm: 'sha384WithRSAEncryption',
        signatureHash: 'sha384',
        subject: 'CN=Example CA',
      }),
      // A trust anchor sent along: skipped, whatever its key and signature.
      cert({
        keyType: 'RSA',
        keyBits: 1024,
        curve: null,
        signatureAlgorithm: 'sha1WithRSAEncryption',
        signatureHash: 'sha1',
        selfSigned: true,
        subject: 'CN=Old Root',
      }),
    ],
    ...GOOD_FEATURES,
  };
}

/** Roughly Postfix on a Debian default: TLS 1.0–1.3, CBC-SHA1 and static-RSA suites, DHE-2048, RSA-2048. */
function debianDefault(): TlsFacts {
  const legacy = [
    code('TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA'), // 0xC013
    code('TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA'),
    code('TLS_DHE_RSA_WITH_AES_128_CBC_SHA'),
    code('TLS_DHE_RSA_WITH_AES_256_CBC_SHA'),
    code('TLS_RSA_WITH_AES_128_CBC_SHA'),
    code('TLS_RSA_WITH_AES_256_CBC_SHA'),
  ];
  return {
    protocols: ['TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'],
    suites: {
      'TLSv1.0': legacy,
      'TLSv1.1': legacy,
      'TLSv1.2': [
        code('TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384'),
        code('TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256'),
        code('TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256'),
        code('TLS_DHE_RSA_WITH_AES_256_GCM_SHA384'),
        code('TLS_DHE_RSA_WITH_AES_128_GCM_SHA256'),
        code('TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384'),
        code('TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256'),
        code('TLS_RSA_WITH_AES_256_GCM_SHA384'),
        code('TLS_RSA_WITH_AES_128_GCM_SHA256'),
        ...legacy,
      ],
      'TLSv1.3': [code('TLS_AES_256_GCM_SHA384'), code('TLS_CHACHA20_POLY1305_SHA256'), code('TLS_AES_128_GCM_SHA256')],
    },
    groups: ['x25519', 'secp256r1', 'x448', 'secp521r1', 'secp384r1', 'ffdhe2048', 'ffdhe3072'],
    dhBits: [2048],
    certificates: [
      cert({ keyType: 'RSA', keyBits: 2048, curve: null, signatureAlgorithm: 'sha256WithRSAEncryption' }),
      cert({
        keyType: 'RSA',
        keyBits: 2048,
        curve: null,
        signatureAlgorithm: 'sha256WithRSAEncryption',
        subject: 'CN=R11',
      }),
    ],
    ...GOOD_FEATURES,
  };
}

function ids(v: Verdict): string[] {
  return v.findings.map((f) => f.id).sort();
}

function finding(v: Verdict, id: string): RuleFinding {
  const f = v.findings.find((x) => x.id === id);
  assert.ok(f, `expected finding ${id} in ${JSON.stringify(ids(v))}`);
  return f;
}

describe('profiles', () => {
  test('getProfile knows every PROFILE_ID, bsi first, and rejects others', () => {
    assert.equal(PROFILE_IDS[0], 'bsi');
    for (const id of PROFILE_IDS) assert.equal(getProfile(id).id, id);
    assert.throws(() => getProfile('nist' as ProfileId), { code: 'profile-unknown' });
  });

  test('BSI profile data and the scanner-facing Table 1 / TLS 1.3 sets are the same lists', () => {
    const good12 = [...BSI_PROFILE.suites.tls12].filter(([, r]) => r === 'good').map(([c]) => c);
    assert.deepEqual(new Set(good12), BSI_TLS12_TABLE1);
    assert.deepEqual(new Set(BSI_PROFILE.suites.tls13.keys()), BSI_TLS13);
  });

  test('suite tables hold only suites of their version family; groups are canonical names', () => {
    for (const id of PROFILE_IDS) {
      const p: Profile = getProfile(id);
      for (const c of p.suites.tls13.keys()) assert.equal(suiteByCode(c)?.family, 'tls13', `${id} ${c}`);
      for (const c of p.suites.tls12.keys()) assert.equal(suiteByCode(c)?.family, 'tls', `${id} ${c}`);
      for (const g of p.groups.keys()) assert.equal(groupByName(g)?.name, g, `${id} ${g}`);
    }
  });

  test('profiles are frozen', () => {
    assert.throws(() => {
      (bsi as { minRsaBits: number }).minRsaBits = 1;
    }, TypeError);
  });
});

describe('evaluate: a BSI-perfect server', () => {
  test('bsi: compliant, no findings (the self-signed root sent along is skipped)', () => {
    const v = evaluate(bsiPerfect(), bsi);
    assert.deepEqual(v, { profile: 'bsi', compliant: true, findings: [] });
  });

  test('ncsc-nl: compliant; the CBC-SHA256/384 suites are phase-out (low)', () => {
    const v = evaluate(bsiPerfect(), ncsc);
    assert.equal(v.compliant, true);
    assert.deepEqual(ids(v), ['cipher-phase-out']);
    const f = finding(v, 'cipher-phase-out');
    assert.equal(f.severity, 'low');
    assert.deepEqual(f.evidence, [
      'TLSv1.2 0xC024 TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384',
      'TLSv1.2 0xC023 TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256',
    ]);
  });

  test('mozilla-modern: not compliant because of TLS 1.2 (and what comes with it)', () => {
    const v = evaluate(bsiPerfect(), mozM);
    assert.equal(v.compliant, false);
    assert.deepEqual(ids(v), ['cipher-not-allowed', 'group-not-allowed', 'protocol-tls1.2']);
    assert.equal(finding(v, 'protocol-tls1.2').severity, 'medium');
    assert.deepEqual(finding(v, 'group-not-allowed').evidence, ['brainpoolP256r1']);
    assert.match(finding(v, 'protocol-tls1.2').rule, /Mozilla Server Side TLS 6\.0 Modern/);
  });

  test('mozilla-intermediate: CBC suites and brainpool are outside its lists', () => {
    const v = evaluate(bsiPerfect(), mozI);
    assert.deepEqual(ids(v), ['cipher-not-allowed', 'group-not-allowed']);
    assert.equal(finding(v, 'cipher-not-allowed').evidence?.length, 2);
  });
});

describe('evaluate: a Debian-default-like server', () => {
  test('bsi: exact findings', () => {
    const v = evaluate(debianDefault(), bsi);
    assert.equal(v.compliant, false);
    assert.deepEqual(ids(v), [
      'cert-weak-key',
      'cipher-not-allowed',
      'dh-too-small',
      'group-not-allowed',
      'protocol-tls1.0',
      'protocol-tls1.1',
    ]);
    const c = finding(v, 'cipher-not-allowed');
    assert.equal(c.severity, 'medium');
    assert.ok(c.evidence?.includes('TLSv1.2 0xC013 TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA'));
    assert.ok(c.evidence?.includes('TLSv1.0 0x002F TLS_RSA_WITH_AES_128_CBC_SHA'));
    assert.ok(c.evidence?.includes('TLSv1.3 0x1303 TLS_CHACHA20_POLY1305_SHA256'));
    // Table 1 suites are not listed.
    assert.ok(!c.evidence?.some((e) => e.includes('TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256')));
    assert.deepEqual(finding(v, 'group-not-allowed').evidence, ['x25519', 'x448', 'ffdhe2048']);
    assert.deepEqual(finding(v, 'dh-too-small').evidence, ['DH 2048 bit']);
    assert.equal(finding(v, 'cert-weak-key').evidence?.length, 2);
    assert.equal(finding(v, 'protocol-tls1.0').severity, 'medium');
    assert.match(finding(v, 'cipher-not-allowed').rule, /^BSI TR-02102-2 \(2025-01\) §3\.3\.1 Table 1/);
  });

  test('ncsc-nl: exact findings, with phase-out ones at low', () => {
    const v = evaluate(debianDefault(), ncsc);
    assert.equal(v.compliant, false);
    assert.deepEqual(ids(v), [
      'cert-key-phase-out',
      'cipher-not-allowed',
      'cipher-phase-out',
      'dh-too-small',
      'group-not-allowed',
      'group-phase-out',
      'protocol-tls1.0',
      'protocol-tls1.1',
    ]);
    assert.deepEqual(finding(v, 'group-not-allowed').evidence, ['ffdhe2048']);
    assert.deepEqual(finding(v, 'group-phase-out').evidence, ['ffdhe3072']);
    const po = finding(v, 'cipher-phase-out');
    assert.ok(po.evidence?.includes('TLSv1.2 0x009F TLS_DHE_RSA_WITH_AES_256_GCM_SHA384'));
    assert.ok(po.evidence?.includes('TLSv1.2 0xC027 TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256'));
    assert.equal(finding(v, 'cert-key-phase-out').severity, 'low');
  });

  test('mozilla-intermediate: old versions, non-AEAD suites and extra groups', () => {
    const v = evaluate(debianDefault(), mozI);
    assert.deepEqual(ids(v), ['cipher-not-allowed', 'group-not-allowed', 'protocol-tls1.0', 'protocol-tls1.1']);
    assert.deepEqual(finding(v, 'group-not-allowed').evidence, ['x448', 'secp521r1', 'ffdhe2048', 'ffdhe3072']);
  });
});

describe('evaluate: single facts', () => {
  test('X25519: bsi group-not-allowed; ncsc-nl and mozilla accept it (any spelling)', () => {
    const facts = { ...bsiPerfect(), groups: ['X25519', 'secp256r1'] };
    const v = evaluate(facts, bsi);
    assert.equal(v.compliant, false);
    assert.deepEqual(ids(v), ['group-not-allowed']);
    assert.deepEqual(finding(v, 'group-not-allowed').evidence, ['x25519']);
    for (const p of [ncsc, mozI]) assert.ok(!ids(evaluate(facts, p)).includes('group-not-allowed'), p.id);
  });

  test('hybrid ML-KEM groups: X25519MLKEM768 fails bsi, SecP256r1MLKEM768 passes; mozilla lists X25519MLKEM768', () => {
    const x = { ...bsiPerfect(), groups: ['X25519MLKEM768'] };
    assert.deepEqual(ids(evaluate(x, bsi)), ['group-not-allowed']);
    assert.deepEqual(ids(evaluate({ ...bsiPerfect(), groups: ['SecP256r1MLKEM768'] }, bsi)), []);
    assert.ok(!ids(evaluate(x, mozI)).includes('group-not-allowed'));
    assert.ok(!ids(evaluate(x, ncsc)).includes('group-not-allowed'));
  });

  test('an unknown group name is not allowed anywhere', () => {
    const v = evaluate({ ...bsiPerfect(), groups: ['mystery-curve'] }, ncsc);
    assert.deepEqual(finding(v, 'group-not-allowed').evidence, ['mystery-curve']);
  });

  test('RSA-2048 leaf: bsi cert-weak-key (medium), ncsc-nl phase-out (low, compliant), mozilla fine', () => {
    const facts = {
      ...bsiPerfect(),
      certificates: [
        cert({ keyType: 'RSA', keyBits: 2048, curve: null, signatureAlgorithm: 'sha256WithRSAEncryption' }),
      ],
    };
    const b = evaluate(facts, bsi);
    assert.deepEqual(ids(b), ['cert-weak-key']);
    assert.equal(finding(b, 'cert-weak-key').severity, 'medium');
    assert.deepEqual(finding(b, 'cert-weak-key').evidence, ['leaf CN=mx.example.test: RSA-2048']);
    const n = evaluate(facts, ncsc);
    assert.equal(n.compliant, true);
    assert.equal(finding(n, 'cert-key-phase-out').severity, 'low');
    assert.ok(!ids(n).includes('cert-weak-key'));
    assert.ok(!ids(evaluate(facts, mozI)).some((i) => i.startsWith('cert-')));
    // Mozilla Modern wants ECDSA certificates.
    assert.deepEqual(finding(evaluate(facts, mozM), 'cert-key-type-not-allowed').evidence, [
      'leaf CN=mx.example.test: RSA',
    ]);
  });

  test('RSA-1024 is high under every profile; an RSA-3072 key passes bsi and ncsc-nl', () => {
    const weak = { ...bsiPerfect(), certificates: [cert({ keyType: 'RSA', keyBits: 1024, curve: null })] };
    for (const p of [bsi, ncsc, mozI]) assert.equal(finding(evaluate(weak, p), 'cert-weak-key').severity, 'high', p.id);
    const ok = { ...bsiPerfect(), certificates: [cert({ keyType: 'RSA', keyBits: 3072, curve: null })] };
    assert.deepEqual(ids(evaluate(ok, bsi)), []);
    assert.ok(!ids(evaluate(ok, ncsc)).some((i) => i.startsWith('cert-')));
  });

  test('EC curves outside the profile list, and secp256k1 under bsi', () => {
    const p521 = { ...bsiPerfect(), certificates: [cert({ keyBits: 521, curve: 'P-521' })] };
    assert.deepEqual(ids(evaluate(p521, bsi)), []);
    assert.deepEqual(
      ids(evaluate(p521, mozI)),
      ['cipher-not-allowed', 'cert-key-type-not-allowed', 'group-not-allowed'].sort(),
    );
    const k1 = { ...bsiPerfect(), certificates: [cert({ curve: 'secp256k1' })] };
    assert.deepEqual(ids(evaluate(k1, bsi)), ['cert-key-type-not-allowed']);
  });

  test('SHA-1 signed leaf or intermediate: cert-weak-signature high everywhere; SHA-224 phase-out under ncsc-nl', () => {
    const sha1 = bsiPerfect();
    sha1.certificates[1] = {
      ...sha1.certificates[1]!,
      signatureHash: 'sha1',
      signatureAlgorithm: 'sha1WithRSAEncryption',
    };
    for (const p of [bsi, ncsc, mozI, mozM]) {
      const f = finding(evaluate(sha1, p), 'cert-weak-signature');
      assert.equal(f.severity, 'high', p.id);
      assert.deepEqual(f.evidence, ['intermediate CN=Example CA: sha1WithRSAEncryption']);
    }
    const sha224 = {
      ...bsiPerfect(),
      certificates: [cert({ signatureHash: 'sha224', signatureAlgorithm: 'ecdsa-with-SHA224' })],
    };
    assert.equal(finding(evaluate(sha224, bsi), 'cert-weak-signature').severity, 'medium');
    const n = evaluate(sha224, ncsc);
    assert.equal(finding(n, 'cert-signature-phase-out').severity, 'low');
    assert.equal(n.compliant, true);
  });

  test('EXPORT / NULL / anon / RC4 classes are reported by every profile with their own severity', () => {
    const facts: TlsFacts = {
      ...bsiPerfect(),
      protocols: ['TLSv1.0', 'TLSv1.2', 'TLSv1.3'],
      suites: {
        ...bsiPerfect().suites,
        'TLSv1.0': [0x0003, 0x0002, 0x0034, 0x0005],
      },
    };
    for (const id of PROFILE_IDS) {
      const v = evaluate(facts, getProfile(id));
      assert.equal(v.compliant, false);
      assert.equal(finding(v, 'cipher-export').severity, 'critical');
      assert.deepEqual(finding(v, 'cipher-export').evidence, ['TLSv1.0 0x0003 TLS_RSA_EXPORT_WITH_RC4_40_MD5']);
      assert.equal(finding(v, 'cipher-null').severity, 'critical');
      assert.deepEqual(finding(v, 'cipher-null').evidence, ['TLSv1.0 0x0002 TLS_RSA_WITH_NULL_SHA']);
      assert.equal(finding(v, 'cipher-anon').severity, 'high');
      assert.deepEqual(finding(v, 'cipher-anon').evidence, ['TLSv1.0 0x0034 TLS_DH_anon_WITH_AES_128_CBC_SHA']);
      assert.equal(finding(v, 'cipher-rc4').severity, 'high');
      assert.deepEqual(finding(v, 'cipher-rc4').evidence, [
        'TLSv1.0 0x0003 TLS_RSA_EXPORT_WITH_RC4_40_MD5',
        'TLSv1.0 0x0005 TLS_RSA_WITH_RC4_128_SHA',
      ]);
      const notAllowed = finding(v, 'cipher-not-allowed').evidence ?? [];
      assert.equal(notAllowed.filter((e) => e.startsWith('TLSv1.0 ')).length, 4);
      assert.match(finding(v, 'cipher-rc4').rule, /RFC 7465/);
    }
  });

  test('SSLv2 is critical and SSLv3 high under every profile', () => {
    const facts = { ...bsiPerfect(), protocols: ['SSLv2', 'SSLv3', 'TLSv1.2'] as TlsFacts['protocols'] };
    for (const id of PROFILE_IDS) {
      const v = evaluate(facts, getProfile(id));
      assert.equal(finding(v, 'protocol-sslv2').severity, 'critical');
      assert.equal(finding(v, 'protocol-sslv3').severity, 'high');
    }
    assert.equal(protocolFindingId('TLSv1.0'), 'protocol-tls1.0');
  });

  test('a phase-out version gives a low finding (custom profile rating TLS 1.1 phase-out)', () => {
    const p: Profile = { ...ncsc, versions: { ...ncsc.versions, 'TLSv1.1': 'phase-out' } };
    const v = evaluate({ ...bsiPerfect(), protocols: ['TLSv1.1', 'TLSv1.2'] }, p);
    assert.equal(finding(v, 'protocol-tls1.1').severity, 'low');
  });

  test('no recognised protocol fails closed', () => {
    const v = evaluate({ ...bsiPerfect(), protocols: [] }, mozI);
    assert.equal(v.compliant, false);
    assert.equal(finding(v, 'protocol-unknown').severity, 'high');
  });

  test('DH below 1024 bit is high, below the profile minimum medium', () => {
    const v = evaluate({ ...bsiPerfect(), dhBits: [512, 2048, 4096] }, bsi);
    const f = finding(v, 'dh-too-small');
    assert.equal(f.severity, 'high');
    assert.deepEqual(f.evidence, ['DH 512 bit', 'DH 2048 bit']);
    assert.equal(finding(evaluate({ ...bsiPerfect(), dhBits: [2048] }, bsi), 'dh-too-small').severity, 'medium');
  });

  test('features: required → profile severity, recommended → low, ignored → none; TLS 1.3-only skips TLS 1.2 features', () => {
    const bad = {
      ...bsiPerfect(),
      secureRenegotiation: false,
      compression: true,
      clientRenegotiation: true,
      heartbeat: true,
      encryptThenMac: false,
      extendedMasterSecret: false,
      fallbackScsv: false,
    };
    const b = evaluate(bad, bsi);
    const sev = (v: Verdict): Record<string, string> => Object.fromEntries(v.findings.map((f) => [f.id, f.severity]));
    assert.deepEqual(sev(b), {
      'renegotiation-insecure': 'high',
      'compression-enabled': 'high',
      'client-renegotiation': 'medium',
      'heartbeat-enabled': 'medium',
      'etm-missing': 'low',
      'ems-missing': 'low',
      'fallback-scsv-missing': 'low',
    });
    const m = evaluate(bad, mozI);
    assert.ok(ids(m).includes('renegotiation-insecure'));
    assert.ok(!ids(m).includes('ems-missing'));
    assert.ok(!ids(m).includes('heartbeat-enabled'));
    const only13 = evaluate(
      { ...bad, protocols: ['TLSv1.3'], suites: { 'TLSv1.3': [0x1301] }, compression: null },
      bsi,
    );
    assert.deepEqual(ids(only13), ['heartbeat-enabled']);
  });

  test('unknown suite codes count as not allowed', () => {
    const v = evaluate({ ...bsiPerfect(), suites: { 'TLSv1.3': [0x1301, 0xfafa] } }, bsi);
    assert.deepEqual(finding(v, 'cipher-not-allowed').evidence, ['TLSv1.3 0xFAFA unknown']);
  });
});

describe('factsFromSession', () => {
  const leaf = [cert()];

  test('TLS_AES_128_GCM_SHA256 over X25519', () => {
    const facts = factsFromSession(
      {
        protocol: 'TLSv1.3',
        cipher: { standardName: 'TLS_AES_128_GCM_SHA256' },
        group: 'X25519',
        ephemeralKeyBits: 253,
      },
      leaf,
    );
    assert.deepEqual(facts, {
      protocols: ['TLSv1.3'],
      suites: { 'TLSv1.3': [0x1301] },
      groups: ['x25519'],
      dhBits: [],
      certificates: leaf,
    });
    assert.deepEqual(ids(evaluate(facts, bsi)), ['group-not-allowed']);
    assert.equal(evaluate(facts, ncsc).compliant, true);
    assert.equal(evaluate(facts, mozM).compliant, true);
  });

  test("node's 'TLSv1' is TLS 1.0; an unnamed DHE group becomes a DH size", () => {
    const facts = factsFromSession(
      {
        protocol: 'TLSv1',
        cipher: { standardName: 'TLS_DHE_RSA_WITH_AES_128_CBC_SHA' },
        group: 'DH 1024',
        ephemeralKeyBits: 1024,
      },
      leaf,
    );
    assert.deepEqual(facts.protocols, ['TLSv1.0']);
    assert.deepEqual(facts.suites, { 'TLSv1.0': [0x0033] });
    assert.deepEqual(facts.groups, []);
    assert.deepEqual(facts.dhBits, [1024]);
    assert.deepEqual(ids(evaluate(facts, mozI)), ['cipher-not-allowed', 'dh-too-small', 'protocol-tls1.0']);
  });

  test('a named FFDHE group stays a group (not double-counted as a DH size)', () => {
    const facts = factsFromSession(
      {
        protocol: 'TLSv1.3',
        cipher: { standardName: 'TLS_AES_256_GCM_SHA384' },
        group: 'ffdhe2048',
        ephemeralKeyBits: 2048,
      },
      leaf,
    );
    assert.deepEqual(facts.groups, ['ffdhe2048']);
    assert.deepEqual(facts.dhBits, []);
  });

  test('unknown protocol and suite fail closed', () => {
    const facts = factsFromSession(
      { protocol: 'TLSv9', cipher: { standardName: 'TLS_MADE_UP' }, group: null, ephemeralKeyBits: null },
      leaf,
    );
    assert.deepEqual(facts.protocols, []);
    assert.deepEqual(facts.unknownSuites, ['TLS_MADE_UP']);
    const v = evaluate(facts, mozI);
    assert.equal(v.compliant, false);
    assert.deepEqual(ids(v), ['cipher-not-allowed', 'protocol-unknown']);
  });
});
