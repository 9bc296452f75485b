/**
 * A preload for memory breakdowns (`BENCH_NODE_ARGS="--import ./bench/memtrace.ts"`): samples
 * process.memoryUsage() and V8's heap spaces every 50 ms and writes the peak of each figure to
 * $MEMTRACE_FILE (JSON) every second and at exit, with the CPU time used so far (CPU per message
 * compares GC settings on a shared machine, where wall-clock throughput scatters with the load).
 * Measurement only; postern never loads it.
 */
import { writeFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

const file = process.env['MEMTRACE_FILE'];
if (file !== undefined) {
  const peak: Record<string, number> = {};
  const atPeakRss: Record<string, number> = {};
  const bump = (k: string, v: number): void => {
    if (v > (peak[k] ?? 0)) peak[k] = v;
  };
  const sample = (): void => {
    const m = process.memoryUsage();
    for (const k of ['rss', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers'] as const) bump(k, m[k]);
    const spaces: Record<string, number> = {};
    for (const s of getHeapSpaceStatistics()) {
      spaces[`space:${s.space_name}`] = s.space_size;
      bump(`space:${s.space_name}`, s.space_size);
    }
    if (m.rss >= (peak['rss'] ?? 0)) Object.assign(atPeakRss, m, spaces);
  };
  const flush = (): void => {
    const mib = (o: Record<string, number>): Record<string, string> =>
      Object.fromEntries(Object.entries(o).map(([k, v]) => [k, (v / 1048576).toFixed(1)]));
    const cpu = process.cpuUsage();
    const cpuMs = { user: cpu.user / 1000, system: cpu.system / 1000 };
    writeFileSync(file, JSON.stringify({ peakMiB: mib(peak), atPeakRssMiB: mib(atPeakRss), cpuMs }, null, 1));
  };
  setInterval(sample, 50).unref();
  setInterval(flush, 1000).unref();
  process.on('exit', () => {
    sample();
    flush();
  });
}

// With $MEMTRACE_ALLOC set: a sampling allocation profile that keeps collected objects too (so it
// shows the allocation rate by function, what drives young-generation growth), written at exit.
const allocFile = process.env['MEMTRACE_ALLOC'];
if (allocFile !== undefined) {
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.startSampling', {
    samplingInterval: 32768,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  const stop = (): void => {
    session.post('HeapProfiler.stopSampling', (err, r) => {
      if (err === null) writeFileSync(allocFile, JSON.stringify(r.profile));
    });
  };
  process.on('SIGUSR2', stop);
}
