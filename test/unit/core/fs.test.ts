/** core/fs.ts: atomic replacement — mode, no temp file left behind, concurrent writers. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createFileExclusive, looseMode, SECRET_MODE, tempPathFor, writeFileAtomic } from '../../../src/core/fs.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'postern-fs-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  test('creates the file with exactly the requested mode, whatever the umask', async () => {
    const f = join(dir, 'secret.key');
    const old = process.umask(0o000); // a umask that would leave a 0666 request world-writable
    try {
      await writeFileAtomic(f, 'key material\n', { mode: SECRET_MODE });
    } finally {
      process.umask(old);
    }
    assert.equal((await stat(f)).mode & 0o777, 0o600);
    assert.equal(await readFile(f, 'utf8'), 'key material\n');
    const pub = join(dir, 'cert.pem');
    await writeFileAtomic(pub, 'cert', { mode: 0o644 });
    assert.equal((await stat(pub)).mode & 0o777, 0o644);
  });

  test('replaces an existing file and narrows its mode (the new inode is the temp file)', async () => {
    const f = join(dir, 'users.yaml');
    await writeFile(f, 'old', { mode: 0o644 });
    await writeFileAtomic(f, 'new', { mode: SECRET_MODE });
    assert.equal(await readFile(f, 'utf8'), 'new');
    assert.equal((await stat(f)).mode & 0o777, 0o600);
  });

  test('on failure the target is untouched and no temp file is left behind', async () => {
    const sub = join(dir, 'fail');
    await mkdir(sub);
    const target = join(sub, 'target');
    await writeFile(target, 'original');
    // A directory in the way makes the rename fail after the temp file was written and synced.
    const blocked = join(sub, 'blocked');
    await mkdir(blocked);
    await writeFile(join(blocked, 'x'), 'not empty');
    await assert.rejects(writeFileAtomic(blocked, 'data', { mode: SECRET_MODE }), /EISDIR|ENOTEMPTY|EEXIST/);
    assert.deepEqual((await readdir(sub)).sort(), ['blocked', 'target']);
    // A missing directory: nothing to clean up, the error says why.
    await assert.rejects(writeFileAtomic(join(sub, 'nope', 'f'), 'data', { mode: SECRET_MODE }), /ENOENT/);
    assert.equal(await readFile(target, 'utf8'), 'original');
  });

  test('concurrent writers each use their own temp file: the result is one complete version', async () => {
    const f = join(dir, 'contended');
    const versions = Array.from({ length: 20 }, (_, i) => `${String(i).padStart(2, '0')}:${'x'.repeat(64 * 1024)}`);
    await Promise.all(versions.map((v) => writeFileAtomic(f, v, { mode: SECRET_MODE })));
    const text = await readFile(f, 'utf8');
    assert.ok(versions.includes(text), 'the file is exactly one of the written versions, not a mix');
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.startsWith('.contended.')),
      [],
      'no temp files left behind',
    );
  });

  test('temp names are unique and in the same directory', () => {
    const a = tempPathFor('/srv/x/users.yaml');
    const b = tempPathFor('/srv/x/users.yaml');
    assert.notEqual(a, b);
    assert.match(a, /^\/srv\/x\/\.users\.yaml\.\d+\.[0-9a-f]{12}\.tmp$/);
  });
});

describe('createFileExclusive', () => {
  test('creates once: concurrent creators end with one complete version, exactly one wins', async () => {
    const f = join(dir, 'admin.token');
    const versions = Array.from({ length: 10 }, (_, i) => `token-${i}\n`);
    const won = await Promise.all(versions.map((v) => createFileExclusive(f, v, { mode: SECRET_MODE })));
    assert.equal(won.filter(Boolean).length, 1);
    assert.equal(await readFile(f, 'utf8'), versions[won.indexOf(true)]);
    assert.equal((await stat(f)).mode & 0o777, 0o600);
    assert.equal(await createFileExclusive(f, 'other', { mode: SECRET_MODE }), false);
    assert.equal(await readFile(f, 'utf8'), versions[won.indexOf(true)], 'an existing file is never replaced');
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.startsWith('.admin.token.')),
      [],
      'no temp files left behind',
    );
  });
});

describe('looseMode', () => {
  test('null for owner-only modes, the octal mode otherwise', () => {
    assert.equal(looseMode(0o100600), null);
    assert.equal(looseMode(0o100400), null);
    assert.equal(looseMode(0o100640), '0640');
    assert.equal(looseMode(0o100604), '0604');
  });
});
