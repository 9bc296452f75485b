/**
 * `postern user add|passwd|remove|list`: manage the users file (src/gateway/users.ts). Passwords
 * are read from the terminal without echo (asked twice), or with `--password-stdin` as the
 * first line of stdin for scripts; never from the command line, where `ps` would show them.
 */
import type { Command } from 'commander';
import { UsageError } from '../../core/errors.ts';
// The config loader and the users module (zod, yaml, scrypt) are imported when a user command
// runs, so registering these commands costs the rest of the CLI nothing at start-up.

/** The streams the commands use (tests pass their own). */
export interface UserCommandIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

export interface UsersFileOptions {
  users?: string;
  config?: string;
}

/** `--users` wins; else the `users` key of `--config`; else the embedded default (`./var/users.yaml`). */
export async function resolveUsersPath(opts: UsersFileOptions): Promise<string> {
  if (opts.users !== undefined) return opts.users;
  if (opts.config !== undefined) {
    const { loadConfig } = await import('../../config/load.ts');
    const config = await loadConfig(opts.config);
    if (config.users === null)
      throw new UsageError(`${opts.config} has no 'users' file`, {
        hint: 'add `users: users.yaml` to the config, or pass --users <file>',
      });
    return config.users;
  }
  const { embeddedDefaults } = await import('../../config/defaults.ts');
  const fallback = embeddedDefaults().users;
  if (fallback === null) throw new UsageError('no users file', { hint: 'pass --users <file> or --config <file>' });
  return fallback;
}

const MAX_LINE = 4096;

/** First line of a non-TTY stream (without CR/LF). */
async function readLine(stdin: NodeJS.ReadableStream): Promise<string> {
  let buf = '';
  for await (const chunk of stdin) {
    buf += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    const nl = buf.indexOf('\n');
    if (nl >= 0) return buf.slice(0, nl).replace(/\r$/, '');
    if (buf.length > MAX_LINE) throw new UsageError('password line too long');
  }
  return buf.replace(/\r$/, '');
}

/** Reads one line from a TTY in raw mode, echoing nothing. */
function readHidden(io: UserCommandIo, prompt: string): Promise<string> {
  const { stdin } = io;
  io.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (err: Error | null): void => {
      stdin.removeListener('data', onData);
      stdin.setRawMode?.(false);
      stdin.pause();
      io.stderr.write('\n');
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (chunk: Buffer | string): void => {
      for (const ch of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return done(null);
        if (ch === '\u0003') return done(new UsageError('cancelled'));
        if (ch === '\u007f' || ch === '\b') text = [...text].slice(0, -1).join('');
        else if (ch >= ' ') text += ch;
        if (text.length > MAX_LINE) return done(new UsageError('password too long'));
      }
    };
    stdin.setRawMode?.(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}

/** The new password: from stdin with `passwordStdin`, else typed twice on the terminal. */
export async function readNewPassword(io: UserCommandIo, passwordStdin: boolean): Promise<string> {
  if (passwordStdin) return readLine(io.stdin);
  if (io.stdin.isTTY !== true)
    throw new UsageError('stdin is not a terminal', {
      hint: 'pipe the password and pass --password-stdin (e.g. `printf %s "$PW" | postern user add alice --password-stdin`)',
    });
  const first = await readHidden(io, 'New password: ');
  const second = await readHidden(io, 'Repeat password: ');
  if (first !== second) throw new UsageError('the passwords do not match');
  return first;
}

function fileOptions(cmd: Command): Command {
  return cmd
    .option('--users <file>', "the users file (default: the config's `users`, else ./var/users.yaml)")
    .option('--config <file>', 'take the users file from this postern.yaml');
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Adds `postern user add|passwd|remove|list` to the program. */
export function registerUserCommands(program: Command, io: UserCommandIo = process): void {
  const user = program.command('user').description('manage the users who may log in (SMTP AUTH) to `postern serve`');

  fileOptions(
    user
      .command('add')
      .description('add a user; the password is read from the terminal (or stdin with --password-stdin)')
      .argument('<name>', 'login name, usually the email address')
      .option('--address <address>', "a sender address the user may use, or '@domain' (repeatable)", collect)
      .option(
        '--certificate <sha256>',
        'SHA-256 fingerprint of a client certificate for SASL EXTERNAL (repeatable)',
        collect,
      )
      .option('--password-stdin', 'read the password from the first line of stdin'),
  ).action(
    async (
      name: string,
      opts: UsersFileOptions & { address?: string[]; certificate?: string[]; passwordStdin?: boolean },
    ) => {
      const path = await resolveUsersPath(opts);
      const password = await readNewPassword(io, opts.passwordStdin === true);
      const { addUser } = await import('../../gateway/users.ts');
      await addUser(path, name, password, { addresses: opts.address ?? [], certificates: opts.certificate ?? [] });
      io.stdout.write(`added user ${name.normalize('NFC').toLowerCase()} to ${path}\n`);
    },
  );

  fileOptions(
    user
      .command('passwd')
      .description("change a user's password")
      .argument('<name>', 'login name')
      .option('--password-stdin', 'read the password from the first line of stdin'),
  ).action(async (name: string, opts: UsersFileOptions & { passwordStdin?: boolean }) => {
    const path = await resolveUsersPath(opts);
    const password = await readNewPassword(io, opts.passwordStdin === true);
    const { setPassword } = await import('../../gateway/users.ts');
    await setPassword(path, name, password);
    io.stdout.write(`changed the password of ${name.normalize('NFC').toLowerCase()} in ${path}\n`);
  });

  fileOptions(user.command('remove').description('remove a user').argument('<name>', 'login name')).action(
    async (name: string, opts: UsersFileOptions) => {
      const path = await resolveUsersPath(opts);
      const { removeUser } = await import('../../gateway/users.ts');
      await removeUser(path, name);
      io.stdout.write(`removed user ${name.normalize('NFC').toLowerCase()} from ${path}\n`);
    },
  );

  fileOptions(user.command('list').description('list users and the sender addresses they may use'))
    .option('--json', 'print JSON')
    .action(async (opts: UsersFileOptions & { json?: boolean }) => {
      const path = await resolveUsersPath(opts);
      const { listUsers } = await import('../../gateway/users.ts');
      const users = await listUsers(path);
      if (opts.json) {
        io.stdout.write(`${JSON.stringify(users, null, 2)}\n`);
        return;
      }
      if (users.length === 0) {
        io.stdout.write(`no users in ${path}\n`);
        return;
      }
      const width = Math.max(4, ...users.map((u) => u.name.length));
      io.stdout.write(`${'USER'.padEnd(width)}  HASH      ADDRESSES\n`);
      for (const u of users) {
        const extra = u.certificates > 0 ? ` (+${u.certificates} certificate${u.certificates > 1 ? 's' : ''})` : '';
        io.stdout.write(
          `${u.name.padEnd(width)}  ${u.scheme.padEnd(8)}  ${u.addresses.join(', ') || '(none: may not send)'}${extra}\n`,
        );
      }
    });
}
