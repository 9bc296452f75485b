#!/usr/bin/env node
// Entry point. npm puts node_modules/.bin first on PATH, so `node` here is the pinned Node 24,
// which runs the TypeScript sources directly (type stripping); no build step is needed.
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(
    `postern: Node.js ${process.versions.node} is too old; postern needs Node.js 24 LTS.\n` +
      `hint: run it through npm (npx postern …) so the pinned node@24 from devDependencies is used.\n`,
  );
  process.exit(2);
}
// `serve` is a long-running daemon with a live heap of ~30 MiB, but V8 sizes its heap for the
// 4 GiB default limit: the young generation grows to two 64 MiB semi-spaces (Node is built
// without pointer compression) and the old generation up to 4× its live size before a full GC.
// Measured with bench/mta-relay.ts (docs/benchmarks.md, 2026-12-04): 128 MiB of the 279 MiB
// peak RSS was new space, and dead socket buffers waiting for a scavenge grew malloc's heap by
// ~35 MiB more. A 4 MiB semi-space and a 1.5× growth factor bring the peak to ~150 MiB at the
// same CPU per message (1.5–1.9 ms either way, interleaved runs). V8 reads the semi-space size
// only when the isolate is created, so the process re-executes itself with it (execve: same pid
// for service managers, no second process); an operator's own choice (node flags or
// NODE_OPTIONS) wins. The growth factor is read at every full GC, so it can be set here.
if (process.argv[2] === 'serve') {
  const chosen = (flag) =>
    process.execArgv.some((a) => a.startsWith(flag)) || (process.env.NODE_OPTIONS ?? '').includes(flag);
  if (!chosen('--max-semi-space-size') && typeof process.execve === 'function') {
    const script = process.argv[1] ?? '';
    process.execve(process.execPath, [
      process.execPath,
      '--max-semi-space-size=4',
      ...process.execArgv,
      script,
      ...process.argv.slice(2),
    ]);
  }
  if (!chosen('--heap-growing-percent')) (await import('node:v8')).setFlagsFromString('--heap-growing-percent=50');
}
// Cache compiled code between runs (Node 22.1+): start-up is a large share of a single scan.
const { enableCompileCache } = await import('node:module');
enableCompileCache?.();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
