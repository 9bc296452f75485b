/** What SIGHUP reloads (src/gateway/reload.ts): users, relay rules and policy; a broken file keeps the old ones. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, it } from 'node:test';
import { embeddedDefaults } from '../../../src/config/defaults.ts';
import { loadLiveConfig } from '../../../src/gateway/reload.ts';
import { addUser, loadUsers } from '../../../src/gateway/users.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

it('reload picks up users and policy; a broken users file leaves the previous rules in place', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-reload-'));
  dirs.push(dir);
  const config = embeddedDefaults(dir);
  const live = await loadLiveConfig(config);
  assert.equal(live.users?.size, 0, 'no users file yet: an empty store');
  assert.equal(live.policy.lookup('example.org').level, 'may');
  assert.equal(live.relay.isTrustedNetwork('127.0.0.1'), true);

  await addUser(config.users!, 'me@example.org', 'a long enough password');
  const next = {
    ...config,
    policy: { ...config.policy, default: { level: 'encrypt' as const, profile: null } },
    relay: { ...config.relay, networks: ['10.0.0.0/8'] },
  };
  await live.reload(next);
  assert.equal(live.users?.size, 1);
  assert.equal(live.policy.lookup('example.org').level, 'encrypt');
  assert.equal(live.relay.isTrustedNetwork('127.0.0.1'), false);

  writeFileSync(config.users!, 'users: [this is not: a users file\n', { mode: 0o600 });
  await assert.rejects(live.reload(config));
  assert.equal(live.users?.size, 1, 'the old users stay');
  assert.equal(live.policy.lookup('example.org').level, 'encrypt', 'and the old policy');

  // A new store (e.g. the file watcher) rebuilds the relay rules on it, with the current relay config.
  live.setUsers(await loadUsers(path.join(dir, 'nobody.yaml'), { allowMissing: true }));
  assert.equal(live.users?.size, 0);
  assert.equal(live.relay.isTrustedNetwork('10.1.2.3'), true);
});
