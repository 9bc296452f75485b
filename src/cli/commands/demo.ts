import { colourWanted, makeStyle, renderEndpoint } from '../../scan/render-text.ts';
import { scanEndpoint } from '../../scan/scan.ts';
import type { EndpointReport } from '../../scan/scan.ts';
import { parseTarget } from '../../scan/target.ts';
import { startTestbed } from '../../testbed/index.ts';

export interface DemoCliOptions {
  only?: string;
  json?: boolean;
}

/** Ids the demo compares with the manifest: everything but informational/diagnostic findings. */
export function weaknessIds(r: EndpointReport): string[] {
  return [
    ...new Set(r.findings.filter((f) => f.severity !== 'info' && f.id !== 'tls-anomaly').map((f) => f.id)),
  ].sort();
}

/**
 * `postern demo`: the embedded default. Starts the testbed on ephemeral loopback ports, scans every
 * server with the testbed CA trusted and the server's name checked, and shows for each whether
 * postern found exactly the weaknesses the server was built with.
 */
export async function demoCommand(opts: DemoCliOptions): Promise<number> {
  const only = opts.only
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const testbed = await startTestbed({ basePort: 0, ...(only ? { only } : {}) });
  const st = makeStyle(colourWanted(process.stdout));
  let mismatches = 0;
  const reports: EndpointReport[] = [];
  try {
    process.stderr.write(
      `testbed: ${testbed.manifest.servers.length} servers on ${testbed.manifest.servers[0]?.address ?? 'loopback'}\n`,
    );
    let next = 0;
    const servers = testbed.manifest.servers;
    const results = new Array<{ report: EndpointReport; expected: string[] }>(servers.length);
    const worker = async (): Promise<void> => {
      while (next < servers.length) {
        const i = next++;
        const s = servers[i];
        if (!s) continue;
        const t = parseTarget(s.url);
        const report = await scanEndpoint(
          { ...t, address: s.address },
          { name: s.hostname, ca: [testbed.manifest.caPem], timeoutMs: 5000 },
        );
        results[i] = { report, expected: [...s.weaknesses].sort() };
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    for (const [i, r] of results.entries()) {
      const s = servers[i];
      if (!r || !s) continue;
      reports.push(r.report);
      const found = weaknessIds(r.report);
      const ok = found.join(',') === r.expected.join(',');
      if (!ok) mismatches++;
      if (!opts.json) {
        process.stdout.write(`${st.bold(`── ${s.id}`)}  ${st.dim(s.description)}\n`);
        process.stdout.write(`${renderEndpoint(r.report, st)}\n`);
        process.stdout.write(
          `  Manifest     ${r.expected.join(', ') || '(no weaknesses)'}  ${ok ? st.green('✓ postern found exactly these') : st.red(`✗ postern found: ${found.join(', ') || '(none)'}`)}\n\n`,
        );
      }
    }
    if (opts.json)
      process.stdout.write(
        `${JSON.stringify({ schemaVersion: 1, profile: 'bsi', generatedAt: new Date().toISOString(), targets: reports }, null, 2)}\n`,
      );
    const n = results.length;
    const conns = reports.reduce((a, r) => a + r.stats.connections, 0);
    process.stderr.write(
      `${n - mismatches}/${n} testbed servers: findings match the manifest (${conns} connections in all)\n`,
    );
  } finally {
    await testbed.stop();
  }
  return mismatches === 0 ? 0 : 1;
}
