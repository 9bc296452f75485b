import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runOk } from './proc.ts';
import { withTempDir } from './tmp.ts';

/** A PEM certificate and its unencrypted PKCS#8 key. */
export interface TestCert {
  certPem: string;
  keyPem: string;
}

/**
 * Self-signed RSA certificate made with the openssl CLI, for peers that need one. Defaults: RSA
 * 2048, CN and SAN dNSName mx.peer.test, valid 2 days.
 */
export async function makeSelfSignedCert(
  opts: { dnsNames?: string[]; rsaBits?: number; days?: number } = {},
): Promise<TestCert> {
  const names = opts.dnsNames ?? ['mx.peer.test'];
  const cn = names[0] ?? 'mx.peer.test';
  return await withTempDir('cert', async (dir) => {
    const certFile = join(dir, 'cert.pem');
    const keyFile = join(dir, 'key.pem');
    await runOk('openssl', [
      'req',
      '-x509',
      '-newkey',
      `rsa:${opts.rsaBits ?? 2048}`,
      '-nodes',
      '-sha256',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      String(opts.days ?? 2),
      '-subj',
      `/CN=${cn}`,
      '-addext',
      `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
      '-addext',
      'extendedKeyUsage=serverAuth',
    ]);
    return { certPem: await readFile(certFile, 'utf8'), keyPem: await readFile(keyFile, 'utf8') };
  });
}
