/**
 * `postern user …` as an operator uses it: a child process through bin/postern.js, password on
 * stdin with --password-stdin, errors as one line plus a hint, never a stack trace.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadUsers } from '../../../src/gateway/users.ts';

const BIN = new URL('../../../bin/postern.js', import.meta.url).pathname;

function run(args: string[], input = ''): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', input, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertNoStack(s: string): void {
  assert.doesNotMatch(s, /\n\s+at .+:\d+:\d+/, `stack trace leaked:\n${s}`);
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'postern-user-cli-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('postern user', () => {
  it('add with --password-stdin, list, passwd, remove', async () => {
    const users = join(dir, 'users.yaml');
    let r = run(
      [
        'user',
        'add',
        'Alice@Example.org',
        '--address',
        'alice@example.org',
        '--address',
        '@example.net',
        '--users',
        users,
        '--password-stdin',
      ],
      'alice password\nignored second line\n',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /added user alice@example\.org to /);
    assert.equal((await stat(users)).mode & 0o777, 0o600);
    let store = await loadUsers(users);
    assert.equal(await store.verify('alice@example.org', 'alice password'), true);

    r = run(['user', 'list', '--users', users]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^alice@example\.org\s+scrypt\s+alice@example\.org, @example\.net$/m);
    r = run(['user', 'list', '--users', users, '--json']);
    assert.deepEqual(JSON.parse(r.stdout), [
      {
        name: 'alice@example.org',
        addresses: ['alice@example.org', '@example.net'],
        certificates: 0,
        scheme: 'scrypt',
      },
    ]);

    r = run(['user', 'passwd', 'alice@example.org', '--users', users, '--password-stdin'], 'new password\r\n');
    assert.equal(r.code, 0, r.stderr);
    store = await loadUsers(users);
    assert.equal(await store.verify('alice@example.org', 'new password'), true);

    r = run(['user', 'remove', 'alice@example.org', '--users', users]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await loadUsers(users)).size, 0);
    assert.doesNotMatch(await readFile(users, 'utf8'), /alice/);
  });

  it('takes the users file from --config', async () => {
    const cfgDir = join(dir, 'cfg');
    await mkdir(join(cfgDir, 'tls'), { recursive: true });
    await writeFile(join(cfgDir, 'tls', 'c.pem'), 'x');
    await writeFile(
      join(cfgDir, 'postern.yaml'),
      'hostname: mx.example.org\ntls: { cert: tls/c.pem, key: tls/c.pem }\nusers: people.yaml\nlisten:\n  - { name: mx, address: 127.0.0.1, port: 2525, mode: starttls, role: mx }\n',
    );
    const r = run(
      ['user', 'add', 'bob', '--config', join(cfgDir, 'postern.yaml'), '--password-stdin'],
      'bob password\n',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await loadUsers(join(cfgDir, 'people.yaml'))).has('bob'), true);
  });

  it('errors: one line, a hint, no stack trace', () => {
    const users = join(dir, 'errors.yaml');
    const cases: [string[], string, RegExp][] = [
      [['user', 'add', 'carol', '--users', users], '', /^postern: stdin is not a terminal$/m],
      [['user', 'add', 'carol', '--users', users, '--password-stdin'], 'short\n', /^postern: password too short$/m],
      [['user', 'remove', 'nobody', '--users', users], '', /^postern: no user 'nobody' in /m],
      [
        ['user', 'add', 'x', '--config', join(dir, 'missing.yaml'), '--password-stdin'],
        'long enough\n',
        /cannot read config: ENOENT/,
      ],
    ];
    for (const [args, input, message] of cases) {
      const r = run(args, input);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, message);
      assert.match(r.stderr, /^hint: /m, args.join(' '));
      assertNoStack(r.stderr);
    }
  });
});
