/**
 * mtaSts.allowPrivateAddresses: the insecure switch for internal MTA-STS policy hosts is off
 * unless written down, must be a boolean, and is reported at its line like every other key.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PosternError } from '../../../src/core/errors.ts';
import { parseConfig } from '../../../src/config/load.ts';

const BASE = [
  'hostname: mail.example.org',
  'tls: { cert: tls/cert.pem, key: tls/key.pem }',
  'listen:',
  '  - { name: mx, address: 127.0.0.1, port: 2525, mode: starttls, role: mx }',
];

describe('config: mtaSts.allowPrivateAddresses', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-sts-private-'));
    await mkdir(join(dir, 'tls'));
    await writeFile(join(dir, 'tls', 'cert.pem'), 'not checked here\n');
    await writeFile(join(dir, 'tls', 'key.pem'), 'not checked here\n');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const parse = (extra: string[]) => parseConfig([...BASE, ...extra, ''].join('\n'), 'postern.yaml', dir);

  it('is off by default', async () => {
    const c = await parse([]);
    assert.notEqual(c.mtaSts.allowPrivateAddresses, true);
  });

  it('is on only when set to true', async () => {
    assert.equal((await parse(['mtaSts: { allowPrivateAddresses: true }'])).mtaSts.allowPrivateAddresses, true);
    assert.notEqual((await parse(['mtaSts: { allowPrivateAddresses: false }'])).mtaSts.allowPrivateAddresses, true);
  });

  it('must be a boolean, named at its line', async () => {
    await assert.rejects(parse(['mtaSts:', '  allowPrivateAddresses: "yes"']), (e: unknown) => {
      assert.ok(e instanceof PosternError);
      assert.match(e.message, /^postern\.yaml:6:\d+: mtaSts\.allowPrivateAddresses: /);
      return true;
    });
  });
});
