/** Users: scrypt/argon2id hashes, constant-cost verification, atomic rewrites, login rate limits. */
import assert from 'node:assert/strict';
import { argon2Sync, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PosternError } from '../../../src/core/errors.ts';
import {
  addUser,
  AuthRateLimiter,
  DUMMY_HASH,
  hashPassword,
  listUsers,
  loadUsers,
  parseHash,
  removeUser,
  SCRYPT_PARAMS,
  setPassword,
  UserStore,
  verifyPassword,
} from '../../../src/gateway/users.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'postern-users-'));
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

describe('password hashes', () => {
  test('scrypt, self-describing, salted', async () => {
    const h = await hashPassword('correct horse battery');
    assert.match(h, /^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    assert.notEqual(await hashPassword('correct horse battery'), h, 'same password, different salt');
    assert.equal(await verifyPassword('correct horse battery', h), true);
    assert.equal(await verifyPassword('correct horse batterY', h), false);
    assert.equal(await verifyPassword('', h), false);
  });
  test('parameters travel with the hash (a cheaper hash still verifies)', async () => {
    const h = await hashPassword('pw-one-two', { ln: 10, r: 8, p: 1 });
    assert.match(h, /^\$scrypt\$ln=10,/);
    assert.equal(await verifyPassword('pw-one-two', h), true);
  });
  test('Unicode passwords are compared in NFC (RFC 8265 OpaqueString)', async () => {
    const h = await hashPassword('gr\u00fcn-gr\u00fcn', { ln: 10, r: 8, p: 1 });
    assert.equal(await verifyPassword('gru\u0308n-gru\u0308n', h), true);
  });
  test('argon2id PHC hashes (imported users) verify', async () => {
    const salt = randomBytes(16);
    const tag = argon2Sync('argon2id', {
      message: 'imported!',
      nonce: salt,
      parallelism: 1,
      tagLength: 32,
      memory: 19456,
      passes: 2,
    });
    const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');
    const h = `$argon2id$v=19$m=19456,t=2,p=1$${b64(salt)}$${b64(tag)}`;
    assert.equal(await verifyPassword('imported!', h), true);
    assert.equal(await verifyPassword('imported?', h), false);
  });
  test('unusable hashes never verify and name the problem', async () => {
    const refusedHash = (h: string): string => {
      const p = parseHash(h);
      assert.ok(typeof p === 'string', `accepted ${h}`);
      return p;
    };
    assert.match(refusedHash('$scrypt$ln=30,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$' + 'A'.repeat(43)), /out of range/);
    assert.match(refusedHash('$scrypt$ln=20,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$' + 'A'.repeat(43)), /256 MiB/);
    assert.match(refusedHash('$1$md5crypt$xyz'), /unknown hash format/);
    assert.match(
      refusedHash('$argon2id$v=19$m=9999999,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$' + 'A'.repeat(43)),
      /out of range/,
    );
    assert.equal(await verifyPassword('x', 'plaintext'), false);
  });
});

describe('UserStore', () => {
  let store: UserStore;
  before(async () => {
    store = new UserStore([
      {
        name: 'Alice@Example.org',
        password: await hashPassword('alice-secret'),
        addresses: [],
        certificates: ['AB:'.repeat(31) + 'AB'],
      },
      {
        name: 'bob',
        password: await hashPassword('bob-secret'),
        addresses: ['bob@example.org', '@example.net'],
        certificates: [],
      },
      { name: 'svc', password: await hashPassword('svc-secret'), addresses: [], certificates: [] },
    ]);
  });
  test('verify: right password, wrong password, unknown user, names case-insensitive', async () => {
    assert.equal(await store.verify('alice@example.org', 'alice-secret'), true);
    assert.equal(await store.verify('ALICE@EXAMPLE.ORG', 'alice-secret'), true);
    assert.equal(await store.verify('alice@example.org', 'bob-secret'), false);
    assert.equal(await store.verify('mallory', 'alice-secret'), false);
    assert.equal(await store.verify('alice@example.org', 'x'.repeat(2000)), false);
    assert.equal(store.canonicalName('Alice@EXAMPLE.org'), 'alice@example.org');
    assert.equal(store.has('mallory'), false);
  });
  test('an unknown user costs one hash with the same parameters as a real one (no enumeration by timing)', async () => {
    // Checked structurally, not by the clock (timing belongs in bench/): the stand-in hash for a
    // missing user uses exactly the scrypt parameters new hashes get, so both verifications do
    // the same work.
    const dummy = parseHash(DUMMY_HASH);
    const real = parseHash(await hashPassword('some-password'));
    assert.ok(typeof dummy !== 'string' && typeof real !== 'string');
    assert.deepEqual({ ...dummy, salt: null, hash: null }, { ...real, salt: null, hash: null });
    assert.equal(await store.verify('nobody-at-all', 'wrong-password'), false);
  });
  test('sender addresses: the list, else the name when it is an address', () => {
    assert.deepEqual(store.addresses('alice@example.org'), ['alice@example.org']);
    assert.deepEqual(store.addresses('BOB'), ['bob@example.org', '@example.net']);
    assert.deepEqual(store.addresses('svc'), []);
    assert.deepEqual(store.addresses('mallory'), []);
  });
  test('client certificates map to users', () => {
    assert.equal(store.userForCertificate('ab'.repeat(32)), 'alice@example.org');
    assert.equal(store.userForCertificate('cd'.repeat(32)), null);
    assert.equal(store.userForCertificate('nonsense'), null);
  });
});

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
    assert.match(s.warnings[0] ?? '', /readable by others \(mode 644\)/);
  });
  test('default cost is the documented one', () => {
    assert.deepEqual({ ...SCRYPT_PARAMS }, { ln: 15, r: 8, p: 1 });
  });
});

describe('AuthRateLimiter', () => {
  const make = () => {
    let now = 1_000_000;
    const rl = new AuthRateLimiter({
      perIp: { failures: 3, windowMs: 60_000 },
      perUser: { failures: 5, windowMs: 120_000 },
      maxEntries: 100,
      now: () => now,
    });
    return { rl, advance: (ms: number) => (now += ms) };
  };
  test('per IP: the n-th failure blocks until the oldest one leaves the sliding window', () => {
    const { rl, advance } = make();
    rl.recordFailure('203.0.113.1', 'a');
    advance(10_000);
    rl.recordFailure('203.0.113.1', 'b');
    advance(10_000);
    assert.deepEqual(rl.check('203.0.113.1', 'c'), { allowed: true, retryAfterMs: 0 });
    rl.recordFailure('203.0.113.1', 'c');
    const c = rl.check('203.0.113.1', 'd');
    assert.equal(c.allowed, false);
    assert.equal(c.retryAfterMs, 40_000);
    assert.equal(rl.check('203.0.113.2', 'd').allowed, true, 'other IPs are unaffected');
    advance(40_000);
    assert.equal(rl.check('203.0.113.1', 'd').allowed, true, 'first failure aged out');
    rl.recordFailure('203.0.113.1', 'd');
    assert.equal(rl.check('203.0.113.1', 'd').allowed, false, 'sliding, not a fixed window');
  });
  test('per user: failures from many IPs add up; success clears the user but not the IP', () => {
    const { rl } = make();
    for (let i = 0; i < 5; i++) rl.recordFailure(`198.51.100.${i}`, 'Victim');
    const c = rl.check('198.51.100.99', 'victim');
    assert.equal(c.allowed, false);
    assert.equal(c.retryAfterMs, 120_000);
    rl.recordSuccess('198.51.100.99', 'VICTIM');
    assert.equal(rl.check('198.51.100.99', 'victim').allowed, true);
    rl.recordFailure('192.0.2.1', null);
    rl.recordFailure('192.0.2.1', null);
    rl.recordFailure('192.0.2.1', 'x');
    rl.recordSuccess('192.0.2.1', 'x');
    assert.equal(rl.check('192.0.2.1', 'y').allowed, false, 'a success does not reset the IP budget');
  });
  test('IPv6 clients count per /64; IPv4-mapped addresses count as IPv4', () => {
    const { rl } = make();
    for (const ip of ['2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:1:2:ffff::3']) rl.recordFailure(ip, null);
    assert.equal(rl.check('2001:db8:1:2::99', null).allowed, false);
    assert.equal(rl.check('2001:db8:1:3::1', null).allowed, true);
    for (let i = 0; i < 3; i++) rl.recordFailure('::ffff:192.0.2.7', null);
    assert.equal(rl.check('192.0.2.7', null).allowed, false);
  });
  test('memory is bounded', () => {
    const { rl } = make();
    for (let i = 0; i < 1000; i++) rl.recordFailure(`10.0.${i >> 8}.${i & 255}`, `user${i}`);
    assert.ok(rl.size.ips <= 100 && rl.size.users <= 100, JSON.stringify(rl.size));
    // The most recent offenders are the ones kept.
    for (let i = 0; i < 2; i++) rl.recordFailure('10.0.3.231', null);
    assert.equal(rl.check('10.0.3.231', null).allowed, false);
  });
});
