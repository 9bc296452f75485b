import { readFile } from 'node:fs/promises';
import { PosternError, UsageError } from '../../core/errors.ts';
import { colourWanted, makeStyle, renderEndpoint } from '../../scan/render-text.ts';
import { scanEndpoint } from '../../scan/scan.ts';
import type { EndpointReport, ScanReport } from '../../scan/scan.ts';
import { parseTarget, resolveTarget } from '../../scan/target.ts';
import type { ResolvedTarget } from '../../scan/target.ts';

export interface ScanCliOptions {
  file?: string;
  json?: boolean;
  name?: string;
  caFile?: string[];
  maxConnPerIp: number;
  timeout: number;
  injectionTest: boolean;
}

async function readTargetsFile(path: string): Promise<string[]> {
  let text: string;
  try {
    text =
      path === '-'
        ? await new Response(process.stdin as unknown as ReadableStream).text()
        : await readFile(path, 'utf8');
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

export const SCAN_EXIT = { ok: 0, findings: 1, usage: 2, unreachable: 3 } as const;

/** `postern scan`: resolve targets, scan each address (at most 4 endpoints at once), print. */
export async function scanCommand(args: string[], opts: ScanCliOptions): Promise<number> {
  const inputs = [...args, ...(opts.file ? await readTargetsFile(opts.file) : [])];
  if (inputs.length === 0)
    throw new UsageError('no targets given', {
      hint: 'postern scan smtp://mx.example.org or postern scan 127.0.0.1:25',
    });
  const parsed = inputs.map(parseTarget);
  const ca = opts.caFile ? await readCaFiles(opts.caFile) : undefined;
  const resolved: ResolvedTarget[] = [];
  for (const t of parsed) {
    try {
      resolved.push(...(await resolveTarget(t)));
    } catch (e) {
      throw new PosternError(
        'dns-failed',
        `cannot resolve ${t.host}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        { hint: 'check the host name, or give an IP address' },
      );
    }
  }
  const reports: EndpointReport[] = new Array(resolved.length);
  const multi = resolved.length > 1;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < resolved.length) {
      const i = next++;
      const t = resolved[i] as ResolvedTarget;
      if (multi) process.stderr.write(`scanning ${t.url} (${t.address}) …\n`);
      reports[i] = await scanEndpoint(t, {
        ...(opts.name === undefined ? {} : { name: opts.name }),
        ...(ca === undefined ? {} : { ca }),
        maxConnPerIp: opts.maxConnPerIp,
        timeoutMs: opts.timeout,
        injectionTest: opts.injectionTest,
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, resolved.length) }, worker));
  const report: ScanReport = {
    schemaVersion: 1,
    profile: 'bsi',
    generatedAt: new Date().toISOString(),
    targets: reports,
  };
  if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const st = makeStyle(colourWanted(process.stdout));
    process.stdout.write(`${reports.map((r) => renderEndpoint(r, st)).join('\n\n')}\n`);
  }
  if (reports.some((r) => !r.reachable)) return SCAN_EXIT.unreachable;
  return reports.every((r) => r.compliant) ? SCAN_EXIT.ok : SCAN_EXIT.findings;
}
