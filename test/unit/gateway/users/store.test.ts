/** UserStore: lookups, constant-cost verification, addresses, certificates. */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { DUMMY_HASH, hashPassword, parseHash, UserStore } from '../../../../src/gateway/users.ts';

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
