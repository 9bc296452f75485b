/**
 * The CLI as a user meets it: a real child process through bin/postern.js. Errors must be one
 * line plus a hint with the right exit code — never a stack trace.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const BIN = new URL('../../../bin/postern.js', import.meta.url).pathname;

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertNoStack(s: string): void {
  assert.doesNotMatch(s, /\n\s+at .+:\d+:\d+/, `stack trace leaked:\n${s}`);
}

describe('postern CLI', () => {
  it('prints help listing the commands', () => {
    const r = run(['--help']);
    assert.equal(r.code, 0);
    for (const c of ['scan', 'testbed', 'demo']) assert.match(r.stdout, new RegExp(`\\b${c}\\b`));
  });
  it('scan with a bad target exits 2 with the target named and a hint', () => {
    const r = run(['scan', 'gopher://x']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^postern: invalid target "gopher:\/\/x": unknown scheme "gopher"/m);
    assert.match(r.stderr, /^hint: /m);
    assertNoStack(r.stderr);
  });
  it('scan with no target exits 2', () => {
    const r = run(['scan']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no targets given/);
  });
  it('rejects an out-of-range option value with exit 2', () => {
    const r = run(['scan', '--max-conn-per-ip', '0', 'smtp://127.0.0.1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--max-conn-per-ip must be an integer from 1 to 16/);
    assertNoStack(r.stderr);
  });
  it('an unreadable --ca-file is a usage error naming the file', () => {
    const r = run(['scan', '--ca-file', '/nonexistent/ca.pem', 'smtp://127.0.0.1:1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--ca-file \/nonexistent\/ca.pem/);
  });
  it('an endpoint that refuses connections exits 3 (unreachable) with a report', () => {
    // Port 1 on loopback: nothing listens there in a test environment.
    const r = run(['scan', '--json', '--timeout', '2000', 'smtp://127.0.0.1:1']);
    assert.equal(r.code, 3, r.stderr);
    const report = JSON.parse(r.stdout) as { targets: Array<{ reachable: boolean; findings: Array<{ id: string }> }> };
    assert.equal(report.targets[0]?.reachable, false);
    assert.ok(report.targets[0]?.findings.some((f) => f.id === 'unreachable'));
  });
  it('an unknown --profile is a usage error listing the built-in ones', () => {
    const r = run(['scan', '--profile', 'nope', 'smtp://127.0.0.1:1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown profile "nope"/);
    assert.match(r.stderr, /^hint: .*bsi, ncsc-nl, mozilla-intermediate, mozilla-modern/m);
  });
  it('a broken YAML profile is a config error naming file, line and key', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'postern-cli-'));
    const file = join(dir, 'p.yaml');
    await writeFile(file, 'id: mine\nextends: bsi\nminRsaBits: lots\n');
    const r = run(['scan', '--profile', file, 'smtp://127.0.0.1:1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:\\d+: minRsaBits`));
    assertNoStack(r.stderr);
  });
  it('unknown testbed server ids are a usage error listing the known ones', () => {
    const r = run(['demo', '--only', 'no-such-server']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no-such-server/);
    assert.match(r.stderr, /^hint: .*smtp-good/m);
    assertNoStack(r.stderr);
  });
});

describe('postern tlsrpt show (process level)', () => {
  it('prints the pending report from the state dir, as text and as RFC 8460 JSON', async () => {
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { TlsRptStore } = await import('../../../src/report/tlsrpt/store.ts');
    const dir = await mkdtemp(join(tmpdir(), 'postern-cli-tlsrpt-'));
    const store = TlsRptStore.open(join(dir, 'tlsrpt.sqlite'));
    const policy = { type: 'sts' as const, strings: ['version: STSv1', 'mode: enforce'], mxHost: '*.example.org' };
    store.recordSuccess({ policyDomain: 'example.org', policy });
    store.recordFailure({
      policyDomain: 'example.org',
      policy,
      resultType: 'certificate-host-mismatch',
      sendingMtaIp: '192.0.2.1',
      receivingMxHostname: 'mx1.example.org',
    });
    store.close();
    const text = run(['tlsrpt', 'show', '--state-dir', dir]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /example\.org/);
    assert.match(text.stdout, /certificate-host-mismatch/);
    const json = run(['tlsrpt', 'show', '--state-dir', dir, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const reports = JSON.parse(json.stdout) as Array<{
      policies: Array<{ summary: Record<string, number>; 'failure-details': Array<Record<string, unknown>> }>;
    }>;
    assert.equal(reports.length, 1);
    assert.deepEqual(reports[0]?.policies[0]?.summary, {
      'total-successful-session-count': 1,
      'total-failure-session-count': 1,
    });
    assert.equal(reports[0]?.policies[0]?.['failure-details'][0]?.['result-type'], 'certificate-host-mismatch');
    const bad = run(['tlsrpt', 'show', '--state-dir', dir, '--day', 'yesterday']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^hint: /m);
    assertNoStack(bad.stderr);
  });
});
