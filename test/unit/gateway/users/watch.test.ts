/**
 * `postern user add|passwd|remove` take effect in a running server at once (no SIGHUP): the
 * gateway watches the users file's directory and reloads it; a file that does not parse keeps
 * the users already loaded. Issue 9: following the README, a new user's AUTH got 535 until SIGHUP.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import { registerUserCommands } from '../../../../src/cli/commands/user.ts';
import { makeCert } from '../../../helpers/certs.ts';
import { openSession, saslPlain, startTestGateway, waitFor } from '../../../helpers/gateway.ts';
import type { TestGateway } from '../../../helpers/gateway.ts';

const OLD = { name: 'old@postern.test', password: 'old user password' };

describe('the users file is reloaded by a running gateway', { timeout: 120_000 }, () => {
  let g: TestGateway;
  before(async () => {
    const cert = await makeCert({ subject: 'CN=mx.postern.test', dnsNames: ['mx.postern.test'] });
    g = await startTestGateway({
      certPem: cert.pem,
      keyPem: cert.keyPem,
      listeners: [{ name: 'submission', mode: 'starttls', role: 'submission', auth: 'required' }],
      users: [OLD],
    });
  });
  after(async () => {
    await g?.close();
  });

  /** `postern user …args --config <the gateway's config> --password-stdin`, in-process. */
  const userCli = async (args: string[], password = ''): Promise<string> => {
    let out = '';
    const program = new Command().exitOverride();
    registerUserCommands(program, {
      stdin: Readable.from([`${password}\n`]),
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: () => true },
    });
    await program.parseAsync(['user', ...args, '--config', g.configPath], { from: 'user' });
    return out;
  };
  const reloads = (): number => g.logs.filter((l) => l['event'] === 'admin.users-reloaded').length;
  const nextReload = async (before: number, what: string): Promise<void> => {
    await waitFor(() => (reloads() > before ? true : null), 20_000, what);
  };
  const auth = async (user: string, password: string): Promise<number> => {
    const c = await openSession(g.port['submission'] as number, { starttls: true });
    try {
      return (await c.cmd(`AUTH PLAIN ${saslPlain(user, password)}`, 30_000)).code;
    } finally {
      c.close();
    }
  };

  test('add, passwd and remove are seen without SIGHUP; a broken file keeps the old users', async () => {
    let n = reloads();
    await userCli(['add', 'new@postern.test', '--password-stdin'], 'new user password');
    await nextReload(n, 'the reload after `user add`');
    assert.equal(await auth('new@postern.test', 'new user password'), 235);

    n = reloads();
    await userCli(['passwd', 'new@postern.test', '--password-stdin'], 'changed password!');
    await nextReload(n, 'the reload after `user passwd`');
    assert.equal(await auth('new@postern.test', 'changed password!'), 235);

    n = reloads();
    await userCli(['remove', 'new@postern.test']);
    await nextReload(n, 'the reload after `user remove`');
    assert.equal(await auth('new@postern.test', 'changed password!'), 535);

    // A hand edit that does not parse: logged, and the users loaded before stay.
    const failed = g.logs.filter((l) => l['event'] === 'admin.users-reload-failed').length;
    await writeFile(join(g.dir, 'users.yaml'), 'users:\n  x: [not a user\n', { mode: 0o600 });
    await waitFor(
      () => (g.logs.filter((l) => l['event'] === 'admin.users-reload-failed').length > failed ? true : null),
      20_000,
      'the failed reload to be logged',
    );
    assert.equal(await auth(OLD.name, OLD.password), 235);
  });
});
