import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PosternError } from '../../../../src/core/errors.ts';
import { evaluate } from '../../../../src/tls/evaluate.ts';
import type { CertFacts, TlsFacts } from '../../../../src/tls/evaluate.ts';
import { loadProfileFile, parseProfileYaml } from '../../../../src/tls/profiles/custom.ts';
import { getProfile } from '../../../../src/tls/profiles/index.ts';

const EXAMPLE = fileURLToPath(new URL('../../../fixtures/profiles/example.yaml', import.meta.url));

const leaf = (o: Partial<CertFacts> = {}): CertFacts => ({
  keyType: 'EC',
  keyBits: 256,
  curve: 'P-256',
  signatureHash: 'sha256',
  signatureAlgorithm: 'ecdsa-with-SHA256',
  selfSigned: false,
  subject: 'CN=mx.example.test',
  ...o,
});

function server(o: Partial<TlsFacts> = {}): TlsFacts {
  return {
    protocols: ['TLSv1.2', 'TLSv1.3'],
    suites: { 'TLSv1.2': [0xc02b, 0xc027], 'TLSv1.3': [0x1301, 0x1303] },
    groups: ['x25519', 'secp256r1'],
    dhBits: [],
    certificates: [leaf()],
    secureRenegotiation: true,
    extendedMasterSecret: true,
    ...o,
  };
}

/** The PosternError a call throws; fails the test when it does not throw one. */
function errorOf(fn: () => unknown): PosternError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof PosternError, `expected PosternError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected an error');
}

describe('loadProfileFile: the documented example', () => {
  test('loads, extends bsi, and grades', async () => {
    const p = await loadProfileFile(EXAMPLE);
    assert.equal(p.id, 'example-mail-policy');
    assert.equal(p.title, 'Example mail policy');
    assert.equal(p.minRsaBits, 3072);
    assert.equal(p.features.extendedMasterSecret, 'required');
    // Merged with bsi: BSI's own entries are still there.
    assert.equal(p.suites.tls12.get(0xc02c), 'good');
    assert.equal(p.suites.tls13.get(0x1303), 'sufficient');
    assert.equal(p.suites.tls12.get(0xc02f), 'good'); // via its OpenSSL name
    assert.equal(p.groups.get('x25519'), 'sufficient');

    const base = evaluate(server(), getProfile('bsi'));
    assert.deepEqual(base.findings.map((f) => f.id).sort(), ['cipher-not-allowed', 'group-not-allowed']);

    const v = evaluate(server(), p);
    assert.equal(v.profile, 'example-mail-policy');
    assert.equal(v.compliant, true);
    assert.deepEqual(
      v.findings.map((f) => [f.id, f.severity, f.evidence]),
      [['cipher-phase-out', 'low', ['TLSv1.2 0xC027 TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256']]],
    );

    const noEms = evaluate(server({ extendedMasterSecret: false }), p);
    assert.equal(noEms.compliant, false);
    const ems = noEms.findings.find((f) => f.id === 'ems-missing');
    assert.equal(ems?.severity, 'medium');
    assert.equal(ems?.rule, 'Example Corp TLS policy §4.2 (Extended Master Secret mandatory)');
  });
});

describe('parseProfileYaml: errors name file:line:column and the key path', () => {
  test('unknown key (top level and nested)', () => {
    const e = errorOf(() =>
      parseProfileYaml('id: p\nextends: bsi\nsuites:\n  tls12x: []\nminRsaBit: 4096\n', 'profile.yaml'),
    );
    assert.equal(e.code, 'config-invalid');
    assert.equal(
      e.message,
      "profile.yaml:4:3: suites.tls12x: unknown key 'tls12x'\nprofile.yaml:5:1: minRsaBit: unknown key 'minRsaBit'",
    );
  });

  test('wrong type', () => {
    const e = errorOf(() => parseProfileYaml('id: p\nminRsaBits: lots\n', 'profile.yaml'));
    assert.equal(e.code, 'config-invalid');
    assert.match(e.message, /^profile\.yaml:2:13: minRsaBits: expected (int|number), got 'lots'$/);
    const list = errorOf(() => parseProfileYaml('id: p\ncertCurves: P-256\n', 'profile.yaml'));
    assert.match(list.message, /^profile\.yaml:2:13: certCurves: expected array, got 'P-256'$/);
  });

  test('unknown suite name, at its list index', () => {
    const yaml = [
      'id: p',
      'extends: bsi',
      'suites:',
      '  tls12:',
      '    - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
      '    - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: good',
      '    - TLS_FOO',
      '',
    ].join('\n');
    const e = errorOf(() => parseProfileYaml(yaml, 'profile.yaml'));
    assert.equal(e.message, "profile.yaml:7:7: suites.tls12[2]: unknown cipher suite 'TLS_FOO'");
  });

  test('bad rating, suite in the wrong table, unknown group, SSLv3, unknown extends', () => {
    const yaml = [
      'id: p',
      'extends: nist',
      'versions:',
      '  SSLv3: good',
      'suites:',
      '  tls13:',
      '    - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
      '    - TLS_AES_128_GCM_SHA256: great',
      'groups: [secp256r1, curve9000]',
      '',
    ].join('\n');
    const lines = errorOf(() => parseProfileYaml(yaml, 'p.yaml')).message.split('\n');
    assert.deepEqual(lines, [
      "p.yaml:2:10: extends: expected one of bsi, ncsc-nl, mozilla-intermediate, mozilla-modern, got 'nist'",
      'p.yaml:4:3: versions.SSLv3: SSLv3 cannot be allowed (RFC 6176 / RFC 7568 prohibit it)',
      "p.yaml:7:7: suites.tls13[0]: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' is not a TLS 1.3 suite; list it under suites.tls12",
      "p.yaml:8:31: suites.tls13[1].TLS_AES_128_GCM_SHA256: unknown rating 'great' (expected good, sufficient, phase-out, insufficient)",
      "p.yaml:9:21: groups[1]: unknown group 'curve9000'",
    ]);
  });

  test('a rules key that is not a finding id is reported at the key', () => {
    const e = errorOf(() => parseProfileYaml('id: p\nrules:\n  Bad_Id: x\n', 'p.yaml'));
    assert.equal(
      e.message,
      "p.yaml:3:3: rules.Bad_Id: 'Bad_Id' is not a finding id (lower-case letters, digits, '.', '-')",
    );
  });

  test('missing id, YAML syntax errors and duplicate keys', () => {
    assert.equal(
      errorOf(() => parseProfileYaml('title: x\n', 'p.yaml')).message,
      'p.yaml:1:1: id: missing (expected string)',
    );
    const syntax = errorOf(() => parseProfileYaml('id: p\nversions: [TLSv1.2\n', 'p.yaml'));
    assert.equal(syntax.code, 'config-invalid');
    assert.match(syntax.message, /^p\.yaml:\d+:\d+: /);
    const dup = errorOf(() => parseProfileYaml('id: p\nid: q\n', 'p.yaml'));
    assert.match(dup.message, /^p\.yaml:2:1: .*[Uu]nique/);
  });
});

describe('extends', () => {
  test('extends: bsi with minRsaBits overridden keeps every other BSI rule', () => {
    const p = parseProfileYaml('id: bsi-rsa2048\nextends: bsi\nminRsaBits: 2048\n', 'p.yaml');
    const rsa = server({
      suites: { 'TLSv1.2': [0xc02f], 'TLSv1.3': [0x1301] },
      groups: ['secp256r1'],
      certificates: [leaf({ keyType: 'RSA', keyBits: 2048, curve: null })],
    });
    assert.deepEqual(
      evaluate(rsa, getProfile('bsi')).findings.map((f) => f.id),
      ['cert-weak-key'],
    );
    const v = evaluate(rsa, p);
    assert.deepEqual(v, { profile: 'bsi-rsa2048', compliant: true, findings: [] });
    // Still BSI otherwise: X25519 and ChaCha20 are not allowed.
    assert.deepEqual(
      evaluate(server({ certificates: [leaf()] }), p)
        .findings.map((f) => f.id)
        .sort(),
      ['cipher-not-allowed', 'group-not-allowed'],
    );
    assert.equal(p.title, 'bsi-rsa2048');
    assert.match(p.source, /extending BSI TR-02102-2/);
  });

  test('a rating of insufficient removes an inherited entry; without extends nothing is allowed', () => {
    const p = parseProfileYaml(
      'id: strict\nextends: mozilla-intermediate\ngroups:\n  - x25519: insufficient\n',
      'p.yaml',
    );
    assert.deepEqual(
      evaluate(server({ suites: { 'TLSv1.3': [0x1301] } }), p).findings.map((f) => f.id),
      ['group-not-allowed'],
    );
    const empty = parseProfileYaml('id: empty\n', 'p.yaml');
    const v = evaluate(server(), empty);
    assert.deepEqual(v.findings.map((f) => f.id).sort(), [
      'cipher-not-allowed',
      'group-not-allowed',
      'protocol-tls1.2',
      'protocol-tls1.3',
    ]);
  });
});

describe('loadProfileFile: files', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-profile-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('errors name the path as given', async () => {
    const path = join(dir, 'profile.yaml');
    await writeFile(path, 'id: p\nfeatures:\n  heartbeat: required\n');
    await assert.rejects(loadProfileFile(path), (e: unknown) => {
      assert.ok(e instanceof PosternError);
      assert.equal(e.code, 'config-invalid');
      assert.equal(e.message, `${path}:3:3: features.heartbeat: unknown key 'heartbeat'`);
      return true;
    });
  });

  test('a missing file or a directory is config-invalid', async () => {
    await assert.rejects(loadProfileFile(join(dir, 'nope.yaml')), { code: 'config-invalid', message: /ENOENT/ });
    await assert.rejects(loadProfileFile(dir), { code: 'config-invalid', message: /not a regular file/ });
  });
});
