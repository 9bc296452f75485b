/**
 * A private Postfix instance on loopback for integration tests: its own config, queue and data
 * directories under a temp dir, one smtpd on 127.0.0.1:PORT, logs in a file (CI has no syslog),
 * mail for the test domain dropped into a Maildir, and every other destination refused by the
 * error transport so nothing ever leaves the machine.
 *
 * Needs root (Postfix's master must start as root) and the Debian `postfix` package
 * (scripts/install-peers.sh). No `multi_instance_enable`/`alternate_config_directories` is needed:
 * those only gate set-gid programs (postdrop, postqueue) and postmulti, not `postfix -c` run by
 * root, so two instances at once just need distinct directories and ports.
 */
import { existsSync } from 'node:fs';
import { chown, mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PosternError } from '../../../src/core/errors.ts';
import { assertLoopback, freePort, waitForBanner } from './ports.ts';
import { readPidFile, waitForPidFile, runOk, runStarter, stopDaemon, trackDaemon, untrackDaemon } from './proc.ts';
import { makeTempDir } from './tmp.ts';

export interface PostfixOptions {
  /** 0/undefined = pick a free loopback port. */
  port?: number;
  certPem: string;
  keyPem: string;
  /** Intermediates, appended after the leaf in smtpd_tls_cert_file. */
  chainPem?: string;
  /** smtpd_tls_protocols, e.g. '>=TLSv1.2' or '!SSLv2,!SSLv3' (unset: left to OpenSSL). */
  protocols?: string;
  /** smtpd_tls_mandatory_protocols. */
  mandatoryProtocols?: string;
  /** smtpd_tls_ciphers grade. */
  ciphers?: 'high' | 'medium' | 'low' | 'export' | 'null';
  /**
   * When set: tls_high_cipherlist = this and smtpd_tls_ciphers = high. An OpenSSL cipher string
   * for TLS ≤ 1.2 only; append ':@SECLEVEL=0' for SHA-1/TLS 1.0-era suites (OpenSSL 3 default 2).
   */
  cipherList?: string;
  /** smtpd_tls_exclude_ciphers. */
  excludeCiphers?: string;
  /**
   * TLS 1.3 suites (OpenSSL `Ciphersuites` syntax, e.g. 'TLS_AES_128_GCM_SHA256'). Postfix has no
   * main.cf knob for these; Postfix ≥ 3.7.6 (Debian 12 ships 3.7.11) reads `tls_config_file` /
   * `tls_config_name`, so we write an OpenSSL config whose system_default section sets them.
   */
  tls13Ciphers?: string;
  /** More main.cf settings, applied last (override anything above). */
  extra?: Record<string, string>;
}

export interface PostfixInstance {
  host: '127.0.0.1';
  port: number;
  configDir: string;
  /** Maildir (cur/new/tmp) where mail for any address @peer.test is delivered. */
  maildir: string;
  stop(): Promise<void>;
  logs(): Promise<string>;
}

/** Domain this instance accepts mail for (mydestination); myhostname is mx.peer.test. */
export const POSTFIX_TEST_DOMAIN = 'peer.test';

const POSTFIX = '/usr/sbin/postfix';
const POSTCONF = '/usr/sbin/postconf';

/** True when Debian's postfix package is installed. */
export function postfixAvailable(): boolean {
  return existsSync(POSTFIX) && existsSync(POSTCONF);
}

async function idOf(flag: '-u' | '-g', user: string): Promise<number> {
  const r = await runOk('id', [flag, user], { timeoutMs: 5000 });
  return Number.parseInt(r.stdout.trim(), 10);
}

/**
 * master.cf: the single smtpd listener plus the internal services Postfix needs to accept, queue
 * and deliver (or refuse) mail. Nothing is chrooted (the private queue dir has no chroot files).
 */
function masterCf(port: number): string {
  const rows: [string, string, string, string, string, string, string, string][] = [
    [`127.0.0.1:${port}`, 'inet', 'n', '-', 'n', '-', '-', 'smtpd'],
    ['pickup', 'unix', 'n', '-', 'n', '60', '1', 'pickup'],
    ['cleanup', 'unix', 'n', '-', 'n', '-', '0', 'cleanup'],
    ['qmgr', 'unix', 'n', '-', 'n', '300', '1', 'qmgr'],
    ['tlsmgr', 'unix', '-', '-', 'n', '1000?', '1', 'tlsmgr'],
    ['rewrite', 'unix', '-', '-', 'n', '-', '-', 'trivial-rewrite'],
    ['bounce', 'unix', '-', '-', 'n', '-', '0', 'bounce'],
    ['defer', 'unix', '-', '-', 'n', '-', '0', 'bounce'],
    ['trace', 'unix', '-', '-', 'n', '-', '0', 'bounce'],
    ['verify', 'unix', '-', '-', 'n', '-', '1', 'verify'],
    ['flush', 'unix', 'n', '-', 'n', '1000?', '0', 'flush'],
    ['proxymap', 'unix', '-', '-', 'n', '-', '-', 'proxymap'],
    ['proxywrite', 'unix', '-', '-', 'n', '-', '1', 'proxymap'],
    ['smtp', 'unix', '-', '-', 'n', '-', '-', 'smtp'],
    ['relay', 'unix', '-', '-', 'n', '-', '-', 'smtp'],
    ['showq', 'unix', 'n', '-', 'n', '-', '-', 'showq'],
    ['error', 'unix', '-', '-', 'n', '-', '-', 'error'],
    ['retry', 'unix', '-', '-', 'n', '-', '-', 'error'],
    ['discard', 'unix', '-', '-', 'n', '-', '-', 'discard'],
    ['local', 'unix', '-', 'n', 'n', '-', '-', 'local'],
    ['virtual', 'unix', '-', 'n', 'n', '-', '-', 'virtual'],
    ['lmtp', 'unix', '-', '-', 'n', '-', '-', 'lmtp'],
    ['anvil', 'unix', '-', '-', 'n', '-', '1', 'anvil'],
    ['scache', 'unix', '-', '-', 'n', '-', '1', 'scache'],
    // maillog_file (Postfix ≥ 3.4) is written by postlogd through this socket.
    ['postlog', 'unix-dgram', 'n', '-', 'n', '-', '1', 'postlogd'],
  ];
  return rows.map((r) => r.join('  ')).join('\n') + '\n';
}

/** Start a private Postfix on loopback and wait until it answers 220. */
export async function startPostfix(opts: PostfixOptions): Promise<PostfixInstance> {
  if (!postfixAvailable()) {
    throw new PosternError('peer-missing', 'postfix is not installed', {
      hint: 'run scripts/install-peers.sh as root',
    });
  }
  const host = '127.0.0.1' as const;
  assertLoopback(host);
  const port = opts.port !== undefined && opts.port > 0 ? opts.port : await freePort(host);
  const tmp = await makeTempDir(`postfix-${port}`);
  const root = tmp.path;
  const configDir = join(root, 'etc');
  const queueDir = join(root, 'queue');
  const dataDir = join(root, 'data');
  const mailBase = join(root, 'mail');
  const maillog = join(root, 'maillog');

  try {
    const [uid, gid] = await Promise.all([idOf('-u', 'postfix'), idOf('-g', 'postfix')]);
    await Promise.all([mkdir(configDir, { mode: 0o755 }), mkdir(queueDir, { mode: 0o755 })]);
    // data_directory must belong to mail_owner (master.lock, tls session caches); the Maildir
    // is written by virtual(8) running as the uid we give it below.
    for (const d of [dataDir, mailBase]) {
      await mkdir(d, { mode: 0o700 });
      await chown(d, uid, gid);
    }
    const certFile = join(configDir, 'cert.pem');
    const keyFile = join(configDir, 'key.pem');
    await writeFile(certFile, opts.certPem.trimEnd() + '\n' + (opts.chainPem ? opts.chainPem.trimEnd() + '\n' : ''), {
      mode: 0o644,
    });
    // smtpd reads the key as root before dropping privileges.
    await writeFile(keyFile, opts.keyPem, { mode: 0o600 });
    await writeFile(join(configDir, 'main.cf'), '', { mode: 0o644 });
    await writeFile(join(configDir, 'master.cf'), masterCf(port), { mode: 0o644 });

    const settings: Record<string, string> = {
      compatibility_level: '3.6',
      queue_directory: queueDir,
      data_directory: dataDir,
      inet_interfaces: host,
      inet_protocols: 'ipv4',
      myhostname: 'mx.peer.test',
      mydomain: POSTFIX_TEST_DOMAIN,
      myorigin: POSTFIX_TEST_DOMAIN,
      mydestination: POSTFIX_TEST_DOMAIN,
      mynetworks: '127.0.0.0/8',
      syslog_name: `postfix-${port}`,
      maillog_file: maillog,
      maillog_file_prefixes: root,
      // No /etc/aliases and no system users: accept any local part, deliver all into one Maildir.
      alias_maps: '',
      alias_database: '',
      local_recipient_maps: '',
      local_transport: 'virtual',
      virtual_mailbox_domains: '',
      virtual_mailbox_base: mailBase,
      virtual_mailbox_maps: 'static:inbox/',
      virtual_uid_maps: `static:${uid}`,
      virtual_gid_maps: `static:${gid}`,
      virtual_minimum_uid: String(Math.min(uid, 100)),
      // Never deliver off this machine, and make no DNS queries (the resolver is not loopback).
      default_transport: 'error:5.7.1 outbound mail disabled in postern test peer',
      relay_transport: 'error:5.7.1 outbound mail disabled in postern test peer',
      smtp_dns_support_level: 'disabled',
      smtpd_peername_lookup: 'no',
      biff: 'no',
      smtpd_tls_security_level: 'may',
      smtpd_tls_cert_file: certFile,
      smtpd_tls_key_file: keyFile,
      smtpd_tls_loglevel: '1',
      smtpd_tls_received_header: 'yes',
    };
    if (opts.protocols !== undefined) settings['smtpd_tls_protocols'] = opts.protocols;
    if (opts.mandatoryProtocols !== undefined) settings['smtpd_tls_mandatory_protocols'] = opts.mandatoryProtocols;
    if (opts.ciphers !== undefined) settings['smtpd_tls_ciphers'] = opts.ciphers;
    if (opts.cipherList !== undefined) {
      settings['tls_high_cipherlist'] = opts.cipherList;
      settings['smtpd_tls_ciphers'] = 'high';
    }
    if (opts.excludeCiphers !== undefined) settings['smtpd_tls_exclude_ciphers'] = opts.excludeCiphers;
    if (opts.tls13Ciphers !== undefined) {
      const cnf = join(configDir, 'openssl-tls.cnf');
      await writeFile(
        cnf,
        [
          'postern = postern_settings',
          '[postern_settings]',
          'ssl_conf = postern_ssl',
          '[postern_ssl]',
          'system_default = postern_tls',
          '[postern_tls]',
          `Ciphersuites = ${opts.tls13Ciphers}`,
          '',
        ].join('\n'),
        { mode: 0o644 },
      );
      settings['tls_config_file'] = cnf;
      settings['tls_config_name'] = 'postern';
    }
    Object.assign(settings, opts.extra ?? {});
    const assignments = Object.entries(settings).map(([k, v]) => {
      if (/[\r\n]/.test(k + v)) throw new PosternError('peer-bad-config', `main.cf setting ${k} contains a newline`);
      return `${k}=${v}`;
    });
    await runOk(POSTCONF, ['-c', configDir, '-e', ...assignments]);
    // Postfix waits until its config files are older than "now" before starting (a guard against
    // edits within the same second going unnoticed); backdating them saves ~2 s per start.
    const past = new Date(Date.now() - 10_000);
    for (const f of ['main.cf', 'master.cf']) await utimes(join(configDir, f), past, past);

    const start = await runStarter(POSTFIX, ['-c', configDir, 'start'], join(root, 'start.out'), 60_000);
    const pidFile = join(queueDir, 'pid', 'master.pid');
    const pid = start.code === 0 ? await waitForPidFile(pidFile) : null;
    if (start.code !== 0 || pid === null) {
      const log = await readFile(maillog, 'utf8').catch(() => '');
      throw new PosternError(
        'peer-start-failed',
        `postfix start failed (exit ${String(start.code)}): ${start.stderr.trim()}\n${log}`,
      );
    }
    trackDaemon(pid);

    let stopped = false;
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      // What `postfix stop` does (SIGTERM to master, which terminates its children), minus its
      // 1-second polling; we also wait for every process of this instance's group to exit.
      await stopDaemon(pid);
      untrackDaemon(pid);
      await tmp.remove();
    };

    try {
      await waitForBanner(host, port, '220', 20_000);
    } catch (e) {
      const log = await readFile(maillog, 'utf8').catch(() => '');
      await stop();
      throw new PosternError('peer-start-failed', `postfix on ${host}:${port} did not answer 220\n${log}`, {
        cause: e,
      });
    }

    return {
      host,
      port,
      configDir,
      maildir: join(mailBase, 'inbox'),
      stop,
      logs: () => readFile(maillog, 'utf8').catch(() => ''),
    };
  } catch (e) {
    // A failed start must not leave a daemon or files behind.
    const pid = await readPidFile(join(queueDir, 'pid', 'master.pid'));
    if (pid !== null) {
      await stopDaemon(pid);
      untrackDaemon(pid);
    }
    await tmp.remove();
    throw e;
  }
}
