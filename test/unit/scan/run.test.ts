/**
 * runScan: the whole `postern scan` run behind the thin CLI — usage errors, exit codes, and the
 * report for a real (closed) loopback endpoint.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { UsageError } from '../../../src/core/errors.ts';
import { PRODUCT, VERSION } from '../../../src/core/version.ts';
import { runScan, SCAN_EXIT, scanExitCode } from '../../../src/scan/run.ts';
import type { EndpointReport, ScanReport } from '../../../src/scan/scan.ts';
import { getProfile } from '../../../src/tls/profiles/index.ts';

const base = {
  profile: getProfile('bsi'),
  services: 'mx',
  maxConnPerIp: 2,
  timeoutMs: 2000,
  injectionTest: false,
};

function report(targets: Array<Pick<EndpointReport, 'reachable' | 'compliant'>>, domainsOk?: boolean[]): ScanReport {
  return {
    schemaVersion: 1,
    profile: 'bsi',
    generatedAt: '2026-01-01T00:00:00.000Z',
    targets: targets as EndpointReport[],
    ...(domainsOk ? { domains: domainsOk.map((compliant) => ({ compliant })) as ScanReport['domains'] } : {}),
  };
}

describe('runScan', () => {
  it('refuses an empty target list with a usage error and a hint', async () => {
    await assert.rejects(runScan({ ...base, targets: [] }), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.equal(e.message, 'no targets given');
      assert.match(e.hint ?? '', /postern scan example\.org/);
      return true;
    });
  });

  it('exit codes: unreachable beats findings beats ok; a non-compliant domain counts', () => {
    assert.equal(scanExitCode(report([{ reachable: true, compliant: true }])), SCAN_EXIT.ok);
    assert.equal(scanExitCode(report([{ reachable: true, compliant: false }])), SCAN_EXIT.findings);
    assert.equal(
      scanExitCode(
        report([
          { reachable: true, compliant: false },
          { reachable: false, compliant: false },
        ]),
      ),
      SCAN_EXIT.unreachable,
    );
    assert.equal(scanExitCode(report([{ reachable: true, compliant: true }], [false])), SCAN_EXIT.findings);
    assert.equal(scanExitCode(report([{ reachable: true, compliant: true }], [true])), SCAN_EXIT.ok);
  });

  it('scans a closed loopback port: one unreachable endpoint, exit 3, the injected clock dates the report', async () => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = (srv.address() as AddressInfo).port;
    srv.close();
    await once(srv, 'close');
    const lines: string[] = [];
    const { report: r, exitCode } = await runScan({
      ...base,
      targets: [`smtp://127.0.0.1:${port}`],
      progress: (l) => lines.push(l),
      now: () => new Date('2026-03-04T05:06:07.000Z'),
    });
    assert.equal(exitCode, SCAN_EXIT.unreachable);
    assert.equal(r.generatedAt, '2026-03-04T05:06:07.000Z');
    assert.equal(r.targets.length, 1);
    assert.equal(r.targets[0]?.reachable, false);
    assert.equal(r.targets[0]?.findings[0]?.id, 'unreachable');
    assert.equal(r.domains, undefined);
    assert.deepEqual(lines, [], 'no progress lines for a single endpoint');
  });
});

describe('core/version', () => {
  it('comes from package.json, and names the product', async () => {
    const { readFile } = await import('node:fs/promises');
    const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    assert.equal(VERSION, pkg.version);
    assert.match(VERSION, /^\d+\.\d+\.\d+/);
    assert.equal(PRODUCT, `postern ${pkg.version}`);
  });
});

const BIN = new URL('../../../bin/postern.js', import.meta.url).pathname;

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr }),
    );
  });
}

describe('postern scan CLI (thin: parse, runScan, print)', () => {
  it('--version prints the package.json version', async () => {
    const r = await cli(['--version']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), VERSION);
  });

  it('--endpoint-timeout is checked like the other numeric options (usage error, exit 2)', async () => {
    const r = await cli(['scan', '--endpoint-timeout', '5', '127.0.0.1:1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--endpoint-timeout must be an integer from 1000 to 3600000, got "5"/);
  });

  it('prints the JSON report of a run and exits with its code', async () => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = (srv.address() as AddressInfo).port;
    srv.close();
    await once(srv, 'close');
    const r = await cli([
      'scan',
      `smtp://127.0.0.1:${port}`,
      '--json',
      '--no-injection-test',
      '--endpoint-timeout',
      '30000',
    ]);
    assert.equal(r.code, SCAN_EXIT.unreachable, r.stderr);
    const report = JSON.parse(r.stdout) as ScanReport;
    assert.equal(report.schemaVersion, 1);
    assert.equal(report.targets[0]?.port, port);
    assert.equal(report.targets[0]?.reachable, false);
  });
});
