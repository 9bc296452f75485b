/**
 * A private Dovecot 2.3 (Debian 12) on loopback for integration tests: IMAP, IMAPS, POP3 and POP3S
 * listeners, one passwd-file user, base_dir/state_dir/mail/log all in a temp dir.
 *
 * Dovecot counts a connection whose remote IP equals its local IP as "secured" (plaintext auth is
 * then allowed and IMAP never says LOGINDISABLED, even with ssl = required). Our client connects
 * from 127.0.0.1, so listening on 127.0.0.2 (the default here) gives the behaviour a real remote
 * client sees: LOGINDISABLED before STARTTLS, no plaintext USER/LOGIN (RFC 2595 §3.2, RFC 8314).
 */
import { existsSync } from 'node:fs';
import { chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PosternError } from '../../../src/core/errors.ts';
import { assertLoopback, freePort, waitForBanner } from './ports.ts';
import { readPidFile, waitForPidFile, runOk, runStarter, stopDaemon, trackDaemon, untrackDaemon } from './proc.ts';
import { makeTempDir } from './tmp.ts';

export interface DovecotOptions {
  /** Loopback address to listen on; default 127.0.0.2 (see the module comment). */
  host?: string;
  imapPort?: number;
  imapsPort?: number;
  pop3Port?: number;
  pop3sPort?: number;
  certPem: string;
  keyPem: string;
  /** ssl_min_protocol, e.g. 'TLSv1.2' (Dovecot 2.3 default) or 'TLSv1'. */
  sslMinProtocol?: string;
  /** ssl_cipher_list (TLS ≤ 1.2, OpenSSL syntax). */
  sslCipherList?: string;
  /** ssl_cipher_suites (TLS 1.3, OpenSSL Ciphersuites syntax). */
  sslCipherSuites?: string;
  sslPreferServerCiphers?: boolean;
  /**
   * ssl_dh parameters (PEM). Default: Debian's /usr/share/dovecot/dh.pem, as Debian's own config
   * sets. `null` leaves ssl_dh unset: Dovecot then aborts any handshake that selects a DHE suite
   * with an internal_error alert, which also cuts testssl's cipher enumeration short.
   */
  sslDhPem?: string | null;
  /** Raw dovecot.conf lines appended at the end. */
  extraConfig?: string;
}

export interface DovecotInstance {
  host: string;
  ports: { imap: number; imaps: number; pop3: number; pop3s: number };
  /** The single passwd-file user (PLAIN password). */
  user: { name: string; password: string };
  configPath: string;
  logs(): Promise<string>;
  stop(): Promise<void>;
}

const DOVECOT = '/usr/sbin/dovecot';
const DOVEADM = '/usr/bin/doveadm';
const DEBIAN_DH = '/usr/share/dovecot/dh.pem';
export const DOVECOT_TEST_USER = { name: 'tester', password: 'tester-secret' } as const;

/** True when Debian's dovecot-core (and -imapd/-pop3d) are installed. */
export function dovecotAvailable(): boolean {
  return (
    existsSync(DOVECOT) &&
    existsSync(DOVEADM) &&
    existsSync('/usr/lib/dovecot/imap-login') &&
    existsSync('/usr/lib/dovecot/pop3-login')
  );
}

function setting(name: string, value: string): string {
  if (/[\r\n]/.test(value)) throw new PosternError('peer-bad-config', `dovecot setting ${name} contains a newline`);
  return `${name} = ${value}`;
}

/** Start a private Dovecot and wait until its IMAP and POP3 listeners greet. */
export async function startDovecot(opts: DovecotOptions): Promise<DovecotInstance> {
  if (!dovecotAvailable()) {
    throw new PosternError('peer-missing', 'dovecot (imapd, pop3d) is not installed', {
      hint: 'run scripts/install-peers.sh as root',
    });
  }
  const host = opts.host ?? '127.0.0.2';
  assertLoopback(host);
  const pick = async (p: number | undefined): Promise<number> => (p !== undefined && p > 0 ? p : await freePort(host));
  const ports = {
    imap: await pick(opts.imapPort),
    imaps: await pick(opts.imapsPort),
    pop3: await pick(opts.pop3Port),
    pop3s: await pick(opts.pop3sPort),
  };
  const tmp = await makeTempDir(`dovecot-${ports.imap}`);
  const root = tmp.path;
  const baseDir = join(root, 'run');
  const configPath = join(root, 'dovecot.conf');
  const logPath = join(root, 'dovecot.log');

  try {
    // Mail is owned by nobody: any uid ≥ first_valid_uid that is not root will do.
    const [uid, gid] = await Promise.all([
      runOk('id', ['-u', 'nobody']).then((r) => Number.parseInt(r.stdout.trim(), 10)),
      runOk('id', ['-g', 'nobody']).then((r) => Number.parseInt(r.stdout.trim(), 10)),
    ]);
    await mkdir(baseDir, { mode: 0o755 });
    await mkdir(join(root, 'state'), { mode: 0o755 });
    const mailRoot = join(root, 'mail');
    await mkdir(mailRoot, { mode: 0o755 });
    await chown(mailRoot, uid, gid);
    const certFile = join(root, 'cert.pem');
    const keyFile = join(root, 'key.pem');
    await writeFile(certFile, opts.certPem, { mode: 0o644 });
    await writeFile(keyFile, opts.keyPem, { mode: 0o600 });
    const usersFile = join(root, 'users');
    const u = DOVECOT_TEST_USER;
    await writeFile(usersFile, `${u.name}:{PLAIN}${u.password}:${uid}:${gid}::${join(mailRoot, u.name)}::\n`, {
      mode: 0o644,
    });

    const lines = [
      setting('base_dir', baseDir),
      setting('state_dir', join(root, 'state')),
      setting('instance_name', `postern-${ports.imap}`),
      setting('listen', host),
      setting('protocols', 'imap pop3'),
      setting('log_path', logPath),
      setting('hostname', 'imap.peer.test'),
      setting('ssl', 'yes'),
      setting('ssl_cert', `<${certFile}`),
      setting('ssl_key', `<${keyFile}`),
      setting('disable_plaintext_auth', 'yes'),
      setting('auth_mechanisms', 'plain'),
      setting('login_trusted_networks', ''),
      setting('mail_location', 'maildir:~/Maildir'),
      setting('first_valid_uid', String(Math.min(uid, 500))),
      setting('first_valid_gid', '1'),
    ];
    const dhPem = opts.sslDhPem === undefined ? await readFile(DEBIAN_DH, 'utf8').catch(() => null) : opts.sslDhPem;
    if (dhPem !== null) {
      const dhFile = join(root, 'dh.pem');
      await writeFile(dhFile, dhPem, { mode: 0o644 });
      lines.push(setting('ssl_dh', `<${dhFile}`));
    }
    if (opts.sslMinProtocol !== undefined) lines.push(setting('ssl_min_protocol', opts.sslMinProtocol));
    if (opts.sslCipherList !== undefined) lines.push(setting('ssl_cipher_list', opts.sslCipherList));
    if (opts.sslCipherSuites !== undefined) lines.push(setting('ssl_cipher_suites', opts.sslCipherSuites));
    if (opts.sslPreferServerCiphers !== undefined)
      lines.push(setting('ssl_prefer_server_ciphers', opts.sslPreferServerCiphers ? 'yes' : 'no'));
    lines.push(
      'passdb {',
      '  driver = passwd-file',
      `  args = scheme=PLAIN username_format=%u ${usersFile}`,
      '}',
      'userdb {',
      '  driver = passwd-file',
      `  args = username_format=%u ${usersFile}`,
      '}',
      'service imap-login {',
      `  inet_listener imap {\n    port = ${ports.imap}\n  }`,
      `  inet_listener imaps {\n    port = ${ports.imaps}\n    ssl = yes\n  }`,
      '}',
      'service pop3-login {',
      `  inet_listener pop3 {\n    port = ${ports.pop3}\n  }`,
      `  inet_listener pop3s {\n    port = ${ports.pop3s}\n    ssl = yes\n  }`,
      '}',
    );
    if (opts.extraConfig !== undefined) lines.push(opts.extraConfig);
    await writeFile(configPath, lines.join('\n') + '\n', { mode: 0o644 });

    // Dovecot forks into the background once its listeners are bound.
    const start = await runStarter(DOVECOT, ['-c', configPath], join(root, 'start.out'), 30_000);
    const pidFile = join(baseDir, 'master.pid');
    const pid = start.code === 0 ? await waitForPidFile(pidFile) : null;
    if (start.code !== 0 || pid === null) {
      const log = await readFile(logPath, 'utf8').catch(() => '');
      throw new PosternError(
        'peer-start-failed',
        `dovecot failed to start (exit ${String(start.code)}): ${start.stderr.trim()}\n${log}`,
      );
    }
    trackDaemon(pid);

    let stopped = false;
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      // Same as `doveadm stop` (SIGTERM to master), but we also wait for the whole process group.
      await stopDaemon(pid);
      untrackDaemon(pid);
      await tmp.remove();
    };

    try {
      await waitForBanner(host, ports.imap, '* OK', 20_000);
      await waitForBanner(host, ports.pop3, '+OK', 20_000);
    } catch (e) {
      const log = await readFile(logPath, 'utf8').catch(() => '');
      await stop();
      throw new PosternError('peer-start-failed', `dovecot on ${host} did not greet\n${log}`, { cause: e });
    }

    return {
      host,
      ports,
      user: { name: u.name, password: u.password },
      configPath,
      logs: () => readFile(logPath, 'utf8').catch(() => ''),
      stop,
    };
  } catch (e) {
    const pid = await readPidFile(join(baseDir, 'master.pid'));
    if (pid !== null) {
      // Same as `doveadm stop` (SIGTERM to master), but we also wait for the whole process group.
      await stopDaemon(pid);
      untrackDaemon(pid);
    }
    await tmp.remove();
    throw e;
  }
}
