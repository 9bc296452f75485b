/**
 * Benchmark: wall time of startTestbed() for the whole catalog, cold (no state dir, so every key
 * and certificate is generated), over 5 runs. Target: median < 3 s. Timing lives here, not in tests.
 *
 *   node bench/testbed-start.ts [runs]
 */
import { fileURLToPath } from 'node:url';
import { startTestbed } from '../src/testbed/index.ts';

export interface TestbedStartResult {
  runs: number[];
  medianMs: number;
  servers: number;
}

/** Starts and stops the full testbed `runs` times; returns per-run start times in ms. */
export async function benchTestbedStart(runs = 5): Promise<TestbedStartResult> {
  const times: number[] = [];
  let servers = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const tb = await startTestbed({ basePort: 0 });
    times.push(performance.now() - t0);
    servers = tb.manifest.servers.length;
    await tb.stop();
  }
  const sorted = [...times].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const medianMs = sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
  return { runs: times, medianMs, servers };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const runs = Number(process.argv[2] ?? 5);
  const r = await benchTestbedStart(Number.isInteger(runs) && runs > 0 ? runs : 5);
  const fmt = (ms: number): string => `${ms.toFixed(0)} ms`;
  console.log(`testbed start (${r.servers} servers, cold): ${r.runs.map(fmt).join(', ')}`);
  console.log(`median ${fmt(r.medianMs)} (target < 3000 ms)${r.medianMs < 3000 ? '' : '  ** OVER TARGET **'}`);
}
