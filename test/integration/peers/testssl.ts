/**
 * Runs Debian's testssl.sh (`testssl`, 3.0.x) as an independent oracle: `-E` lists, per protocol,
 * every cipher suite the server accepts, tested with testssl's own bash sockets (so SSLv2/SSLv3
 * and suites the system OpenSSL 3 lacks are covered too).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PosternError } from '../../../src/core/errors.ts';
import { assertLoopback } from './ports.ts';
import { withTempDir } from './tmp.ts';

export type TestsslProtocol = 'SSLv2' | 'SSLv3' | 'TLSv1.0' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

export interface TestsslResult {
  /** Every protocol is present; an empty set means testssl found no suite for it. */
  suites: Map<TestsslProtocol, Set<number>>;
  /** testssl's flat JSON (an array of findings). */
  raw: unknown;
  durationMs: number;
}

const TESTSSL = '/usr/bin/testssl';

/** testssl's section names in `-E` finding ids (`cipher-tls1_2_xc030`). */
const ID_PROTOCOLS: Record<string, TestsslProtocol> = {
  ssl2: 'SSLv2',
  ssl3: 'SSLv3',
  tls1: 'TLSv1.0',
  tls1_1: 'TLSv1.1',
  tls1_2: 'TLSv1.2',
  tls1_3: 'TLSv1.3',
};
/** The same sections as printed at the start of the finding text ("TLS 1.2   xc030   …"). */
const TEXT_PROTOCOLS: Record<string, TestsslProtocol> = {
  SSLv2: 'SSLv2',
  SSLv3: 'SSLv3',
  'TLS 1': 'TLSv1.0',
  'TLS 1.1': 'TLSv1.1',
  'TLS 1.2': 'TLSv1.2',
  'TLS 1.3': 'TLSv1.3',
};

/** True when Debian's testssl.sh package is installed. */
export function testsslAvailable(): boolean {
  return existsSync(TESTSSL);
}

interface Finding {
  id: string;
  severity: string;
  finding: string;
}

function asFindings(raw: unknown): Finding[] {
  if (!Array.isArray(raw)) throw new PosternError('peer-testssl-output', 'testssl JSON is not an array');
  const out: Finding[] = [];
  for (const item of raw as unknown[]) {
    if (typeof item !== 'object' || item === null) continue;
    const o = item as Record<string, unknown>;
    out.push({
      id: typeof o['id'] === 'string' ? o['id'] : '',
      severity: typeof o['severity'] === 'string' ? o['severity'] : '',
      finding: typeof o['finding'] === 'string' ? o['finding'] : '',
    });
  }
  return out;
}

/**
 * Parse testssl 3.0 flat JSON from `-E` into protocol → code points. The id carries section and
 * hex code (`cipher-tls1_2_xc030`, `cipher-ssl2_x010080`; leading zeros dropped: `x2f` = 0x002F);
 * the finding text is the fallback when an id has another form.
 */
export function parseTestsslCiphers(raw: unknown): Map<TestsslProtocol, Set<number>> {
  const suites = new Map<TestsslProtocol, Set<number>>();
  for (const p of Object.values(ID_PROTOCOLS)) suites.set(p, new Set());
  for (const f of asFindings(raw)) {
    let proto: TestsslProtocol | undefined;
    let hex: string | undefined;
    const byId = /^cipher[-_](ssl2|ssl3|tls1|tls1_1|tls1_2|tls1_3)_x([0-9a-f]{1,6})$/i.exec(f.id);
    if (byId) {
      proto = ID_PROTOCOLS[(byId[1] ?? '').toLowerCase()];
      hex = byId[2];
    } else if (/^cipher[-_]/i.test(f.id)) {
      const byText = /^(SSLv2|SSLv3|TLS 1(?:\.[123])?)\s+x([0-9a-f]{1,6})\s/i.exec(f.finding.trim());
      if (byText) {
        proto = TEXT_PROTOCOLS[byText[1] ?? ''];
        hex = byText[2];
      }
    }
    if (proto !== undefined && hex !== undefined) suites.get(proto)?.add(Number.parseInt(hex, 16));
  }
  return suites;
}

/**
 * Run `testssl -E` against a loopback server and return the accepted suites per protocol.
 * Throws PosternError('peer-testssl-failed') when testssl reports a fatal scan problem or leaves
 * no JSON, and ('peer-testssl-timeout') when it exceeds `timeoutMs` (its process group is killed).
 */
export async function runTestsslCiphers(opts: {
  host: string;
  port: number;
  starttls?: 'smtp' | 'imap' | 'pop3' | null;
  timeoutMs?: number;
}): Promise<TestsslResult> {
  if (!testsslAvailable()) {
    throw new PosternError('peer-missing', 'testssl is not installed', {
      hint: 'run scripts/install-peers.sh as root',
    });
  }
  assertLoopback(opts.host);
  const timeoutMs = opts.timeoutMs ?? 180_000;
  return await withTempDir('testssl', async (dir) => {
    const jsonFile = join(dir, 'result.json');
    const target = opts.host.includes(':') ? `[${opts.host}]:${opts.port}` : `${opts.host}:${opts.port}`;
    const args = [
      '-E',
      '--jsonfile',
      jsonFile,
      '--warnings',
      'off',
      '--quiet',
      '--color',
      '0',
      // The system resolver is not on loopback: testssl must make no DNS queries at all.
      '--nodns',
      'none',
      '--ip',
      opts.host,
      '--connect-timeout',
      '10',
      '--openssl-timeout',
      '10',
      ...(opts.starttls ? ['-t', opts.starttls] : []),
      target,
    ];
    const started = Date.now();
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      // detached: testssl leads its own process group, so a timeout kills it and its openssl children.
      const child = spawn(TESTSSL, args, {
        cwd: dir,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, TERM: 'dumb', COLUMNS: '200' },
      });
      let output = '';
      const keep = (b: Buffer): void => {
        if (output.length < 1_000_000) output += b.toString('utf8');
      };
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        if (child.pid !== undefined) {
          try {
            process.kill(-child.pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }, timeoutMs);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(new PosternError('peer-exec-failed', `cannot run testssl: ${e.message}`, { cause: e }));
      });
      child.once('close', (c) => {
        clearTimeout(timer);
        if (timedOut)
          reject(new PosternError('peer-testssl-timeout', `testssl against ${target} exceeded ${timeoutMs} ms`));
        else resolve({ code: c, output });
      });
    });
    const durationMs = Date.now() - started;
    const text = await readFile(jsonFile, 'utf8').catch(() => null);
    if (text === null || text.trim() === '') {
      throw new PosternError(
        'peer-testssl-failed',
        `testssl (exit ${String(code)}) wrote no JSON:\n${output.slice(-4000)}`,
      );
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new PosternError('peer-testssl-failed', `testssl JSON does not parse: ${(e as Error).message}`, {
        cause: e,
      });
    }
    const fatal = asFindings(raw).filter((f) => f.severity === 'FATAL' || f.id === 'scanProblem');
    if (fatal.length > 0) {
      throw new PosternError(
        'peer-testssl-failed',
        `testssl scan problem: ${fatal.map((f) => `${f.id}: ${f.finding}`).join('; ')}`,
      );
    }
    return { suites: parseTestsslCiphers(raw), raw, durationMs };
  });
}
