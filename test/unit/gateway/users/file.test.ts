/** The users file: atomic locked rewrites, validation, permission warnings. */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PosternError } from '../../../../src/core/errors.ts';
import {
  addUser,
  hashPassword,
  listUsers,
  loadUsers,
  removeUser,
  SCRYPT_PARAMS,
  setPassword,
} from '../../../../src/gateway/users.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'postern-users-file-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function rejectsWith(p: Promise<unknown>, code: string): Promise<PosternError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof PosternError, String(e));
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

describe('users file', () => {
  test('add, passwd, remove, list: atomic rewrites, mode 0600, comments kept, no temp files left', async () => {
    const path = join(dir, 'users.yaml');
    await addUser(path, 'Carol@Example.org', 'carol-secret', { addresses: ['carol@example.org', 'c@example.org'] });
    await addUser(path, 'dave', 'dave-secret');
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const text = await readFile(path, 'utf8');
    assert.match(text, /^# postern users file/);
    assert.match(text, /^ {2}carol@example\.org:\n {4}password: \$scrypt\$/m);
    await writeFile(path, text.replace('  dave:', '  # the build robot\n  dave:'), { mode: 0o600 });

    await rejectsWith(addUser(path, 'CAROL@example.org', 'whatever-pw'), 'user-exists');
    await setPassword(path, 'DAVE', 'dave-new-secret');
    let store = await loadUsers(path);
    assert.equal(await store.verify('dave', 'dave-new-secret'), true);
    assert.equal(await store.verify('dave', 'dave-secret'), false);
    assert.deepEqual(store.addresses('carol@example.org'), ['carol@example.org', 'c@example.org']);
    assert.match(await readFile(path, 'utf8'), /# the build robot/);

    await removeUser(path, 'carol@example.org');
    await rejectsWith(removeUser(path, 'carol@example.org'), 'user-unknown');
    await rejectsWith(setPassword(path, 'nobody', 'password-x'), 'user-unknown');
    store = await loadUsers(path);
    assert.deepEqual(
      store.list().map((u) => u.name),
      ['dave'],
    );
    assert.deepEqual(await listUsers(path), [{ name: 'dave', addresses: [], certificates: 0, scheme: 'scrypt' }]);
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.includes('users')),
      ['users.yaml'],
    );
    assert.deepEqual(store.warnings, []);
  });
  test('concurrent adds are serialised by the lock: none is lost', async () => {
    const path = join(dir, 'concurrent.yaml');
    await Promise.all(['u1', 'u2', 'u3', 'u4'].map((u) => addUser(path, u, `${u}-password`)));
    const store = await loadUsers(path);
    assert.deepEqual(
      store.list().map((u) => u.name),
      ['u1', 'u2', 'u3', 'u4'],
    );
  });
  test('bad input is refused before anything is written', async () => {
    const path = join(dir, 'bad-input.yaml');
    await rejectsWith(addUser(path, 'has space', 'long-enough'), 'usage');
    await rejectsWith(addUser(path, 'x', 'short'), 'usage');
    await rejectsWith(addUser(path, 'x', 'long-enough', { addresses: ['not an address'] }), 'usage');
    await rejectsWith(addUser(path, 'x', 'long-enough', { certificates: ['abc'] }), 'usage');
    await assert.rejects(stat(path), { code: 'ENOENT' });
  });
  test('a broken file is reported with file:line:key and never rewritten', async () => {
    const path = join(dir, 'broken.yaml');
    const text = 'users:\n  eve:\n    password: plaintext\n    adresses: []\n';
    await writeFile(path, text, { mode: 0o644 });
    const e = await rejectsWith(loadUsers(path), 'config-invalid');
    assert.deepEqual(e.message.split('\n'), [
      `${path}:3:15: users.eve.password: unknown hash format (expected '$scrypt$ln=…' or '$argon2id$v=19$…')`,
      `${path}:4:5: users.eve.adresses: unknown key 'adresses'`,
    ]);
    await rejectsWith(addUser(path, 'frank', 'frank-secret'), 'config-invalid');
    assert.equal(await readFile(path, 'utf8'), text);
  });
  test('missing file: an error, or an empty store when allowed; readable-by-others is warned about', async () => {
    await rejectsWith(loadUsers(join(dir, 'none.yaml')), 'users-missing');
    assert.equal((await loadUsers(join(dir, 'none.yaml'), { allowMissing: true })).size, 0);
    const path = join(dir, 'open.yaml');
    await writeFile(
      path,
      `users:\n  g:\n    password: '${await hashPassword('g-password', { ln: 10, r: 8, p: 1 })}'\n`,
      { mode: 0o644 },
    );
    const s = await loadUsers(path);
    assert.match(s.warnings[0] ?? '', /readable by group\/others \(mode 0644\); run chmod 600 /);
  });
  test('default cost is the documented one', () => {
    assert.deepEqual({ ...SCRYPT_PARAMS }, { ln: 15, r: 8, p: 1 });
  });
});
