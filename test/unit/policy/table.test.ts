import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyTable, loadPolicyTable } from '../../../src/policy/table.ts';
import { getProfile } from '../../../src/tls/profiles/index.ts';
import { UsageError } from '../../../src/core/errors.ts';

describe('PolicyTable', () => {
  const table = new PolicyTable({
    default: { level: 'may' },
    domains: {
      'Example.ORG.': { level: 'verify', profile: 'bsi' },
      '.example.org': { level: 'encrypt' },
      '.deep.example.org': { level: 'secure', profile: 'ncsc-nl' },
      'partner.test': { level: 'none' },
    },
  });

  it('exact domain wins, case- and trailing-dot-insensitive', () => {
    const r = table.lookup('EXAMPLE.org.');
    assert.equal(r.level, 'verify');
    assert.equal(r.profile?.id, 'bsi');
    assert.equal(r.matched, 'domain example.org');
  });

  it('a leading-dot entry matches subdomains only, most specific parent first', () => {
    assert.deepEqual(
      { level: table.lookup('mx.example.org').level, matched: table.lookup('mx.example.org').matched },
      { level: 'encrypt', matched: 'domain .example.org' },
    );
    const deep = table.lookup('a.b.deep.example.org');
    assert.equal(deep.level, 'secure');
    assert.equal(deep.profile?.id, 'ncsc-nl');
    assert.equal(deep.matched, 'domain .deep.example.org');
    // '.deep.example.org' does not match deep.example.org itself: that is a subdomain of example.org.
    assert.equal(table.lookup('deep.example.org').matched, 'domain .example.org');
  });

  it('falls back to the default', () => {
    const r = table.lookup('elsewhere.test');
    assert.deepEqual(
      { level: r.level, profile: r.profile, matched: r.matched },
      { level: 'may', profile: null, matched: 'default' },
    );
    assert.equal(table.lookup('notexample.org').matched, 'default');
  });

  it('rejects a profile below encrypt, unknown profiles, levels and duplicates', () => {
    assert.throws(() => new PolicyTable({ default: { level: 'may', profile: 'bsi' } }), /needs level encrypt/);
    assert.throws(() => new PolicyTable({ default: { level: 'encrypt', profile: 'nist' } }), UsageError);
    assert.throws(() => new PolicyTable({ default: { level: 'paranoid' } }), UsageError);
    assert.throws(
      () =>
        new PolicyTable({
          default: { level: 'may' },
          domains: { 'a.test': { level: 'may' }, 'A.test.': { level: 'none' } },
        }),
      /twice/,
    );
  });

  it('accepts a loaded Profile object and lists entries', () => {
    const t = new PolicyTable({ default: { level: 'encrypt', profile: getProfile('mozilla-modern') } });
    assert.equal(t.lookup('x.test').profile?.id, 'mozilla-modern');
    assert.deepEqual(t.entries(), [{ domain: 'default', level: 'encrypt', profile: 'mozilla-modern' }]);
  });

  it('loadPolicyTable reads a YAML profile file relative to baseDir', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'postern-policy-'));
    try {
      const yaml = await readFile(new URL('../../fixtures/profiles/example.yaml', import.meta.url), 'utf8');
      await writeFile(join(dir, 'custom.yaml'), yaml);
      const t = await loadPolicyTable(
        { default: { level: 'may' }, domains: { 'bank.test': { level: 'verify', profile: 'custom.yaml' } } },
        { baseDir: dir },
      );
      const p = t.lookup('bank.test').profile;
      assert.ok(p !== null);
      assert.equal(p.id, 'example-mail-policy');
      assert.equal(t.lookup('other.test').profile, null);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
