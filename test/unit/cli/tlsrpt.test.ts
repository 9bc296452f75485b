import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { UsageError } from '../../../src/core/errors.ts';
import type { TlsRptPolicy } from '../../../src/report/tlsrpt/aggregate.ts';
import { TlsRptStore, tlsRptStorePath } from '../../../src/report/tlsrpt/store.ts';
import { tlsRptReportOptionsFromConfig, tlsrptShowCommand } from '../../../src/cli/commands/tlsrpt.ts';
import { embeddedDefaults } from '../../../src/config/defaults.ts';
import { validateTlsRptJson } from '../report/tlsrpt/validate.ts';

const OPTS = { organizationName: 'Postern Test', contactInfo: 'tlsrpt@sender.example', reportIdPrefix: 'pt-' };
const STS: TlsRptPolicy = { type: 'sts', strings: ['version: STSv1', 'mode: enforce'], mxHost: '*.example.net' };
const NOW = new Date('2024-03-11T09:00:00Z');

function capture(): { write(s: string): boolean; text: () => string } {
  let buf = '';
  return {
    write(s: string) {
      buf += s;
      return true;
    },
    text: () => buf,
  };
}

describe('postern tlsrpt show', () => {
  let stateDir: string;
  let writer: TlsRptStore;

  before(() => {
    stateDir = mkdtempSync(path.join(tmpdir(), 'postern-tlsrpt-cli-'));
    // The gateway keeps its store open while the CLI reads it.
    writer = TlsRptStore.open(tlsRptStorePath(stateDir), { now: () => NOW });
    const day1 = new Date('2024-03-10T10:00:00Z');
    for (let i = 0; i < 4; i++) writer.recordSuccess({ policyDomain: 'example.net', policy: STS, day: day1 });
    for (let i = 0; i < 2; i++)
      writer.recordFailure({
        policyDomain: 'example.net',
        policy: STS,
        day: day1,
        resultType: 'certificate-expired',
        sendingMtaIp: '192.0.2.1',
        receivingMxHostname: 'mx1.example.net',
        receivingIp: '198.51.100.7',
      });
    writer.recordSuccess({ policyDomain: 'sent.example', policy: STS, day: day1 });
    writer.markSent('sent.example', '2024-03-10', { state: 'sent' });
    writer.recordSuccess({ policyDomain: 'example.net', policy: STS }); // today, still running
  });
  after(() => {
    writer.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('--json prints exactly the RFC 8460 reports the store would send, minus sent ones', async () => {
    const out = capture();
    assert.equal(await tlsrptShowCommand({ stateDir, json: true }, { stdout: out, now: () => NOW, report: OPTS }), 0);
    const printed = JSON.parse(out.text()) as unknown[];
    const expected = writer.reports({ report: OPTS, unsentOnly: true });
    assert.deepEqual(printed, JSON.parse(JSON.stringify(expected)));
    assert.deepEqual(
      printed.map((r) => (r as { 'report-id': string })['report-id']),
      ['pt-2024-03-10_example.net', 'pt-2024-03-11_example.net'],
    );
    for (const r of printed) assert.deepEqual(validateTlsRptJson(r), []);
  });

  it('text output: per domain and day, successes, failures with result types, and state', async () => {
    const out = capture();
    await tlsrptShowCommand({ stateDir }, { stdout: out, now: () => NOW, report: OPTS });
    const text = out.text();
    assert.match(text, /^2024-03-10 {2}example\.net {2}\[due\]/m);
    assert.match(text, /successful sessions: 4, failed sessions: 2/);
    assert.match(text, /2 x certificate-expired {2}mx1\.example\.net \[198\.51\.100\.7\] {2}from 192\.0\.2\.1/);
    assert.match(text, /^2024-03-11 {2}example\.net {2}\[in progress/m);
    assert.doesNotMatch(text, /sent\.example/);
  });

  it('--day shows that day whatever its state; --domain narrows it', async () => {
    const out = capture();
    await tlsrptShowCommand(
      { stateDir, day: '2024-03-10', domain: 'sent.example' },
      { stdout: out, now: () => NOW, report: OPTS },
    );
    assert.match(out.text(), /^2024-03-10 {2}sent\.example {2}\[sent 2024-03-11T09:00:00\.000Z\]/m);
    assert.doesNotMatch(out.text(), /^\S+ {2}example\.net/m);
    const none = capture();
    await tlsrptShowCommand({ stateDir, day: '2024-01-01' }, { stdout: none, report: OPTS });
    assert.equal(none.text(), 'no TLS-RPT data for 2024-01-01\n');
  });

  it('rejects a malformed --day with a usage error and a hint', async () => {
    await assert.rejects(
      tlsrptShowCommand({ stateDir, day: '2024-3-10' }, { stdout: capture(), report: OPTS }),
      (e: unknown) => e instanceof UsageError && e.code === 'usage' && /--day 2024-03-10/.test(e.hint ?? ''),
    );
    await assert.rejects(tlsrptShowCommand({ stateDir, day: '2024-02-30' }, { stdout: capture() }), UsageError);
  });

  it('a state dir without a store is not an error: nothing to show', async () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'postern-tlsrpt-empty-'));
    try {
      const j = capture();
      assert.equal(await tlsrptShowCommand({ stateDir: empty, json: true }, { stdout: j }), 0);
      assert.equal(j.text(), '[]\n');
      const t = capture();
      assert.equal(await tlsrptShowCommand({ stateDir: empty }, { stdout: t }), 0);
      assert.match(t.text(), /^no TLS-RPT data yet \(.*tlsrpt\.sqlite\)\n$/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('without overrides, uses the embedded config: its store and the metadata the gateway sends with', async () => {
    const config = embeddedDefaults(stateDir);
    assert.equal(config.tlsrpt.store, tlsRptStorePath(stateDir));
    const out = capture();
    await tlsrptShowCommand({ stateDir, json: true, day: '2024-03-10', domain: 'example.net' }, { stdout: out });
    const [r] = JSON.parse(out.text()) as Array<Record<string, unknown>>;
    assert.equal(r?.['organization-name'], config.tlsrpt.organization);
    assert.equal(r?.['contact-info'], config.tlsrpt.contact);
    assert.equal(r?.['report-id'], `${config.hostname}_2024-03-10_example.net`);
    assert.deepEqual(tlsRptReportOptionsFromConfig(config), {
      organizationName: config.tlsrpt.organization,
      contactInfo: config.tlsrpt.contact,
      reportIdPrefix: `${config.hostname}_`,
    });
  });

  it('--config: reads tlsrpt.store and the organisation/contact from the YAML config', async () => {
    const cdir = mkdtempSync(path.join(tmpdir(), 'postern-tlsrpt-conf-'));
    try {
      mkdirSync(path.join(cdir, 'tls'));
      writeFileSync(path.join(cdir, 'tls', 'cert.pem'), 'not read\n');
      writeFileSync(path.join(cdir, 'tls', 'key.pem'), 'not read\n');
      const store = TlsRptStore.open(path.join(cdir, 'reports', 'r.sqlite'), { now: () => NOW });
      store.recordSuccess({ policyDomain: 'conf.example', policy: STS, day: new Date('2024-03-10T10:00:00Z') });
      store.close();
      const file = path.join(cdir, 'postern.yaml');
      writeFileSync(
        file,
        [
          'hostname: mail.example.org',
          'tls: { cert: tls/cert.pem, key: tls/key.pem }',
          'listen:',
          '  - { name: mx, address: 127.0.0.1, port: 2525, mode: starttls, role: mx }',
          'tlsrpt: { store: reports/r.sqlite, organization: Example Org, contact: tls@example.org }',
          '',
        ].join('\n'),
      );
      const out = capture();
      await tlsrptShowCommand({ stateDir: '/nonexistent', config: file, json: true }, { stdout: out });
      const [r] = JSON.parse(out.text()) as Array<Record<string, unknown>>;
      assert.equal(r?.['organization-name'], 'Example Org');
      assert.equal(r?.['contact-info'], 'tls@example.org');
      assert.equal(r?.['report-id'], 'mail.example.org_2024-03-10_conf.example');
    } finally {
      rmSync(cdir, { recursive: true, force: true });
    }
  });
});
