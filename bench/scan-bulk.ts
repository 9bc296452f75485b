/**
 * Benchmark (issue 3): scan 500 loopback endpoints in one process with bounded concurrency and
 * bounded memory. 25 testbeds on 127.0.1.1–127.0.1.25, 20 servers each (good and broken SMTP,
 * IMAP and POP3), scanned by `scanEndpoint` 16 endpoints at a time under one shared politeness
 * limiter (2 connections per address). Reports endpoints/minute and peak RSS, checks every report
 * against its server's manifest entry (mismatches must be 0), and watches for leaks: RSS after
 * each tenth of the run, and the process's live handles before and after.
 *
 *   node bench/scan-bulk.ts [--addresses 25] [--per-address 20] [--concurrency 16] [--no-doc]
 *
 * Needs no peers (the testbed is postern's own). Writes its table to docs/benchmarks.md.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { weaknessIds } from '../src/cli/commands/demo.ts';
import { scanEndpoint } from '../src/scan/scan.ts';
import type { EndpointReport } from '../src/scan/scan.ts';
import { parseTarget } from '../src/scan/target.ts';
import { startTestbed } from '../src/testbed/index.ts';
import type { ManifestServer, Testbed } from '../src/testbed/index.ts';
import { ConnectionLimiter } from '../src/tls/probe/index.ts';
import { VERSIONS } from '../src/tls/wire/constants.ts';
import { formatSuiteCode } from '../src/tls/wire/suites.ts';
import { writeDocSection } from './common.ts';

/** 20 catalog servers: good and broken, SMTP (STARTTLS and implicit), IMAP, POP3. */
export const BULK_MIX = [
  'smtp-good',
  'smtps-good',
  'smtp-expired',
  'smtp-self-signed',
  'smtp-wrong-name',
  'smtp-sha1',
  'smtp-rsa1024',
  'smtp-tls10',
  'smtp-tls11',
  'smtp-shame',
  'smtp-no-starttls',
  'smtp-starttls-454',
  'smtp-starttls-stripped',
  'smtp-cmd-injection',
  'smtp-response-injection',
  'imap-good',
  'imaps-good',
  'imap-bad',
  'pop3-good',
  'pop3-bad',
];

/** Differences between a report and the manifest's ground truth (empty = correct). */
export function compareWithManifest(s: ManifestServer, r: EndpointReport): string[] {
  const wrong: string[] = [];
  const found = VERSIONS.filter((v) => r.protocols[v]);
  const expected = VERSIONS.filter((v) => s.expected.protocols.includes(v));
  if (found.join() !== expected.join()) wrong.push(`protocols [${found.join(' ')}] expected [${expected.join(' ')}]`);
  for (const v of VERSIONS) {
    const f = r.ciphers
      .filter((c) => c.protocol === v)
      .map((c) => c.code)
      .sort();
    const e = (s.expected.suites[v] ?? []).map(formatSuiteCode).sort();
    if (f.join() !== e.join()) wrong.push(`${v} suites [${f.join(' ')}] expected [${e.join(' ')}]`);
  }
  const w = weaknessIds(r);
  const ew = [...s.weaknesses].sort();
  if (w.join() !== ew.join()) wrong.push(`weaknesses [${w.join(' ')}] expected [${ew.join(' ')}]`);
  return wrong;
}

/** Live handles by type (sockets, servers, timers …), from the public resource API. */
function handles(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const h of process.getActiveResourcesInfo()) out[h] = (out[h] ?? 0) + 1;
  return out;
}

/** A `gc()` for settled-heap measurements (v8 flag set at run time; no CLI flag needed). */
function gcFn(): () => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as unknown;
  return typeof gc === 'function' ? (gc as () => void) : () => undefined;
}

interface BulkOptions {
  addresses: number;
  perAddress: number;
  concurrency: number;
  doc: boolean;
}

export async function benchScanBulk(o: BulkOptions): Promise<string> {
  const gc = gcFn();
  const mix = BULK_MIX.slice(0, o.perAddress);
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  const stateDir = await mkdtemp(join(tmpdir(), 'postern-bench-bulk-'));
  const testbeds: Testbed[] = [];
  let rssPeak = 0;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }, 100);
  try {
    const tStart = performance.now();
    // The first testbed generates keys and certificates into stateDir; the others reuse them.
    for (let i = 1; i <= o.addresses; i++) {
      testbeds.push(await startTestbed({ address: `127.0.1.${i}`, basePort: 0, only: mix, stateDir }));
    }
    const startMs = performance.now() - tStart;
    // Interleave addresses so concurrent scans mostly hit different addresses.
    const perTb = testbeds.map((tb) => tb.manifest.servers);
    const queue: Array<{ s: ManifestServer; ca: string }> = [];
    for (let j = 0; j < mix.length; j++) {
      for (const [k, servers] of perTb.entries()) {
        const s = servers[j];
        const tb = testbeds[k];
        if (s && tb) queue.push({ s, ca: tb.manifest.caPem });
      }
    }
    gc();
    const handlesBefore = handles();
    const rssBefore = process.memoryUsage().rss;
    const heapBefore = process.memoryUsage().heapUsed;
    log(`${testbeds.length} testbeds, ${queue.length} endpoints, started in ${(startMs / 1000).toFixed(1)} s`);

    const limiter = new ConnectionLimiter(2);
    const mismatches: string[] = [];
    let unreachable = 0;
    let connections = 0;
    let done = 0;
    const rssSteps: number[] = [];
    const heapSteps: number[] = [];
    const step = Math.max(1, Math.floor(queue.length / 10));
    let next = 0;
    const t0 = performance.now();
    const worker = async (): Promise<void> => {
      for (let i = next++; i < queue.length; i = next++) {
        const item = queue[i];
        if (!item) continue;
        const { s, ca } = item;
        const report = await scanEndpoint(
          { ...parseTarget(s.url), address: s.address },
          { name: s.hostname, ca: [ca], timeoutMs: 5000, rateLimitBackoffMs: 200, maxConnPerIp: 2, limiter },
        );
        // Keep only the verdict, not the report: memory must not grow with the endpoint count.
        for (const w of compareWithManifest(s, report)) mismatches.push(`${s.address} ${s.id}: ${w}`);
        if (!report.reachable && s.expected.starttls !== 'missing' && s.expected.starttls !== 'refused') unreachable++;
        connections += report.stats.connections;
        done++;
        if (done % step === 0) {
          rssSteps.push(process.memoryUsage().rss);
          heapSteps.push(process.memoryUsage().heapUsed);
          log(`  ${done}/${queue.length} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
        }
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    const scanMs = performance.now() - t0;
    // Let sockets closed by the last scans (delayed destroys, TIME_WAIT callbacks) settle.
    await new Promise((r) => setTimeout(r, 500));
    gc();
    const rssAfter = process.memoryUsage().rss;
    const heapAfter = process.memoryUsage().heapUsed;
    const handlesAfter = handles();
    const maxRssKb = process.resourceUsage().maxRSS;

    const mb = (b: number): string => (b / (1024 * 1024)).toFixed(0);
    const perMin = (queue.length / scanMs) * 60_000;
    const lines = [
      '## `bench/scan-bulk`: 500 loopback endpoints in one process',
      '',
      `Measured ${new Date().toISOString().slice(0, 10)}, Node ${process.versions.node}, 2 cores. ${testbeds.length} testbeds on ` +
        `127.0.1.1–127.0.1.${testbeds.length}, ${mix.length} servers each (${mix.join(', ')}), scanned in-process by ` +
        `\`scanEndpoint\` ${o.concurrency} endpoints at a time under one shared limiter of 2 connections per address ` +
        `(full audit: enumeration, preference, groups, weakness checks, full handshake, injection check). The testbed ` +
        `servers run in the same process, so the RSS and CPU figures include them.`,
      '',
      '| endpoints | wall (s) | endpoints / minute | connections | mismatches vs manifest | unreachable | peak RSS (sampled, MB) | maxRSS (MB) |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      `| ${queue.length} | ${(scanMs / 1000).toFixed(1)} | ${perMin.toFixed(0)} | ${connections} | ${mismatches.length} | ${unreachable} | ${mb(rssPeak)} | ${(maxRssKb / 1024).toFixed(0)} |`,
      '',
      `- RSS with all testbeds up, before scanning (after GC): ${mb(rssBefore)} MB; after all ${queue.length} scans (after GC): ${mb(rssAfter)} MB.`,
      `- V8 heap used after GC: ${mb(heapBefore)} MB before scanning, ${mb(heapAfter)} MB after (what survives the run).`,
      `- RSS at each tenth of the run: ${rssSteps.map(mb).join(', ')} MB; heap used (no GC): ${heapSteps.map(mb).join(', ')} MB.`,
      `- Live handles before: ${JSON.stringify(handlesBefore)}; after: ${JSON.stringify(handlesAfter)}.`,
      `- Testbed start-up (${testbeds.length} × ${mix.length} servers, shared key cache): ${(startMs / 1000).toFixed(1)} s (not counted in the scan rate).`,
    ];
    if (mismatches.length > 0) {
      lines.push('', 'Mismatches (first 20):');
      for (const m of mismatches.slice(0, 20)) lines.push(`  - ${m}`);
    }
    const md = lines.join('\n');
    if (o.doc) await writeDocSection('scan-bulk', md);
    return md;
  } finally {
    clearInterval(sampler);
    for (const tb of testbeds) await tb.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const { values } = parseArgs({
    options: {
      addresses: { type: 'string', default: '25' },
      'per-address': { type: 'string', default: '20' },
      concurrency: { type: 'string', default: '16' },
      'no-doc': { type: 'boolean', default: false },
    },
  });
  const int = (s: string, d: number, max: number): number => {
    const n = Number(s);
    return Number.isInteger(n) && n > 0 && n <= max ? n : d;
  };
  console.log(
    await benchScanBulk({
      addresses: int(values.addresses, 25, 250),
      perAddress: int(values['per-address'], 20, BULK_MIX.length),
      concurrency: int(values.concurrency, 16, 256),
      doc: !values['no-doc'],
    }),
  );
}
