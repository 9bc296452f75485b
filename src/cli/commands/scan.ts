/**
 * `postern scan`: parse the arguments (targets file, CA files, profile), call runScan, print the
 * report (text or JSON, optionally HTML). The scan itself lives in src/scan/run.ts.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { UsageError } from '../../core/errors.ts';
import { PRODUCT } from '../../core/version.ts';
import { colourWanted, makeStyle, renderDomain, renderEndpoint } from '../../scan/render-text.ts';
import { runScan } from '../../scan/run.ts';
import { loadProfileFile } from '../../tls/profiles/custom.ts';
import { getProfile, isProfileId, PROFILE_IDS } from '../../tls/profiles/index.ts';
import type { Profile } from '../../tls/profiles/types.ts';

export { SCAN_EXIT } from '../../scan/run.ts';

/** A built-in profile id, or a path to a YAML profile (errors name file:line:key). */
async function resolveProfile(spec: string): Promise<Profile> {
  if (isProfileId(spec)) return getProfile(spec);
  if (/\.ya?ml$/i.test(spec) || spec.includes('/')) return loadProfileFile(spec);
  throw new UsageError(`unknown profile "${spec}"`, {
    hint: `use one of ${PROFILE_IDS.join(', ')}, or a path to a YAML profile file`,
  });
}

export interface ScanCliOptions {
  file?: string;
  json?: boolean;
  html?: string;
  name?: string;
  caFile?: string[];
  dnsServer?: string[];
  /**
   * Trust the AD bit of a --dns-server that is not on loopback (DANE). Off by default: an AD bit
   * is only worth something over a path nobody can tamper with (RFC 7672 §2.1, RFC 6698 §4.1).
   */
  trustAd?: boolean;
  services: string;
  profile: string;
  maxConnPerIp: number;
  timeout: number;
  /** Total per endpoint, ms (`--endpoint-timeout`). */
  endpointTimeout?: number;
  injectionTest: boolean;
}

async function readTargetsFile(path: string): Promise<string[]> {
  let text: string;
  try {
    if (path === '-') {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      text = Buffer.concat(chunks).toString('utf8');
    } else text = await readFile(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read targets file ${path}: ${(e as Error).message}`, {
      hint: 'give a readable file with one target per line',
    });
  }
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
}

async function readCaFiles(paths: string[]): Promise<string[]> {
  return Promise.all(
    paths.map(async (p) => {
      try {
        const pem = await readFile(p, 'utf8');
        if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate in it');
        return pem;
      } catch (e) {
        throw new UsageError(`--ca-file ${p}: ${(e as Error).message}`, {
          hint: 'give a PEM file with one or more CERTIFICATE blocks',
        });
      }
    }),
  );
}

/** `postern scan`: parse, run the scan (src/scan/run.ts), print; returns the exit code. */
export async function scanCommand(args: string[], opts: ScanCliOptions): Promise<number> {
  const targets = [...args, ...(opts.file ? await readTargetsFile(opts.file) : [])];
  const ca = opts.caFile ? await readCaFiles(opts.caFile) : undefined;
  const profile = await resolveProfile(opts.profile);
  const { report, exitCode } = await runScan({
    targets,
    profile,
    ...(ca === undefined ? {} : { ca }),
    ...(opts.name === undefined ? {} : { name: opts.name }),
    ...(opts.dnsServer === undefined ? {} : { dnsServers: opts.dnsServer }),
    trustAd: opts.trustAd === true,
    services: opts.services,
    maxConnPerIp: opts.maxConnPerIp,
    timeoutMs: opts.timeout,
    ...(opts.endpointTimeout === undefined ? {} : { endpointTimeoutMs: opts.endpointTimeout }),
    injectionTest: opts.injectionTest,
    progress: (line) => process.stderr.write(`${line}\n`),
  });
  if (opts.html) {
    // Loaded only when asked for: the renderer is the largest scan module.
    const { renderHtml } = await import('../../scan/render-html.ts');
    try {
      await writeFile(opts.html, renderHtml(report, { generatedBy: PRODUCT }));
    } catch (e) {
      throw new UsageError(`--html ${opts.html}: ${(e as Error).message}`, { hint: 'give a writable file path' });
    }
  }
  if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const st = makeStyle(colourWanted(process.stdout));
    const parts = report.targets.map((r) => renderEndpoint(r, st));
    for (const d of report.domains ?? []) parts.push(renderDomain(d, st));
    process.stdout.write(`${parts.join('\n\n')}\n`);
  }
  return exitCode;
}
