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
// Cache compiled code between runs (Node 22.1+): start-up is a large share of a single scan.
const { enableCompileCache } = await import('node:module');
enableCompileCache?.();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
