/** Password hashes: scrypt/argon2id, self-describing, constant-time verification. */
import assert from 'node:assert/strict';
import { argon2Sync, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { hashPassword, parseHash, verifyPassword } from '../../../../src/gateway/users.ts';

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
