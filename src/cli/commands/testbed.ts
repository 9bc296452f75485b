import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { startTestbed } from '../../testbed/index.ts';
import { formatManifest } from '../../testbed/manifest.ts';

export interface TestbedCliOptions {
  address: string;
  basePort: number;
  only?: string;
  stateDir: string;
  manifest?: string;
  json?: boolean;
}

/** `postern testbed`: start the servers, print and write the manifest, run until SIGINT/SIGTERM. */
export async function testbedCommand(opts: TestbedCliOptions): Promise<number> {
  const only = opts.only
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const testbed = await startTestbed({
    address: opts.address,
    basePort: opts.basePort,
    stateDir: opts.stateDir,
    ...(only ? { only } : {}),
  });
  const manifestPath = opts.manifest ?? join(opts.stateDir, 'manifest.json');
  await mkdir(dirname(manifestPath), { recursive: true });
  await writeFile(manifestPath, `${JSON.stringify(testbed.manifest, null, 2)}\n`);
  if (opts.json) process.stdout.write(`${JSON.stringify(testbed.manifest, null, 2)}\n`);
  else {
    process.stdout.write(`${formatManifest(testbed.manifest)}\n`);
    process.stdout.write(`\nmanifest: ${manifestPath}\ntestbed CA: ${testbed.manifest.caFile}\n`);
    const first = testbed.manifest.servers[0];
    if (first)
      process.stdout.write(
        `try: npx postern scan --ca-file ${testbed.manifest.caFile} --name ${first.hostname} ${first.url}\n`,
      );
    process.stdout.write('Ctrl-C (SIGINT) or SIGTERM stops the testbed.\n');
  }
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await testbed.stop();
  process.stderr.write('testbed stopped\n');
  return 0;
}
