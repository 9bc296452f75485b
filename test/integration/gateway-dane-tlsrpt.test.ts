/**
 * `postern serve` end to end with DANE and TLS-RPT: the gateway (YAML config, level `dane`, DNS =
 * a validating Unbound over an NSD-signed `peer.test` zone) relays to a real Postfix whose
 * certificate is issued by a private CA published as DANE-TA `2 1 1` — no CA is configured in
 * postern, so only the TLSA record can authenticate it. Then the clock moves to the next UTC day,
 * the gateway's maintenance run finds `_smtp._tls.peer.test` and mails the RFC 8460 report to its
 * `rua`, which lands in Postfix's Maildir (sent `TLS-Required: No`, RFC 8460 §3: opportunistic
 * TLS, not itself counted), where the test takes it apart.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { SmtpClient } from '../../src/smtp/client/session.ts';
import { makeCert } from '../helpers/certs.ts';
import { startTestGateway, waitFor } from '../helpers/gateway.ts';
import type { TestGateway } from '../helpers/gateway.ts';
import { dnssecLabAvailable, startDnssecLab } from './peers/dnssec.ts';
import type { DnssecLab } from './peers/dnssec.ts';
import { postfixAvailable, startPostfix } from './peers/postfix.ts';
import type { PostfixInstance } from './peers/postfix.ts';
import { peerSkipReason } from './peers/require.ts';

const skip = peerSkipReason(dnssecLabAvailable() && postfixAvailable(), 'nsd, ldnsutils, unbound and postfix');

let lab: DnssecLab;
let pf: PostfixInstance;
let g: TestGateway;
let clock = new Date();

const spkiSha256 = (pem: string): string =>
  createHash('sha256')
    .update(new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');

async function maildirFiles(): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ['new', 'cur']) {
    const dir = join(pf.maildir, sub);
    for (const f of await readdir(dir).catch(() => [] as string[])) out.push(join(dir, f));
  }
  return out;
}

async function findMail(needle: string): Promise<string | null> {
  for (const f of await maildirFiles()) {
    const text = await readFile(f, 'latin1');
    if (text.includes(needle)) return text;
  }
  return null;
}

before(async () => {
  if (skip) return;
  const ca = await makeCert({ subject: 'CN=postern DANE-TA test CA', isCA: true });
  const leaf = await makeCert({ subject: 'CN=mx.peer.test', dnsNames: ['mx.peer.test'], issuer: ca });
  pf = await startPostfix({ certPem: leaf.pem, keyPem: leaf.keyPem, chainPem: ca.pem, protocols: '>=TLSv1.2' });
  lab = await startDnssecLab({
    zone: 'peer.test',
    signed: [
      'peer.test. 300 IN MX 10 mx.peer.test.',
      'mx.peer.test. 300 IN A 127.0.0.1',
      `_25._tcp.mx.peer.test. 300 IN TLSA 2 1 1 ${spkiSha256(ca.pem)}`,
      '_smtp._tls.peer.test. 300 IN TXT "v=TLSRPTv1; rua=mailto:tls-reports@peer.test"',
    ],
  });
  const self = await makeCert({ subject: 'CN=gw.postern.test', dnsNames: ['gw.postern.test'] });
  g = await startTestGateway({
    certPem: self.pem,
    keyPem: self.keyPem,
    hostname: 'gw.postern.test',
    listeners: [{ name: 'mx', mode: 'starttls', role: 'mx', auth: 'none' }],
    relay: { domains: ['peer.test'], networks: [] },
    policy: { default: { level: 'dane' } },
    extraConfig: {
      dns: { servers: [lab.resolver] },
      tlsrpt: { organization: 'Postern Test Org', contact: 'mailto:postmaster@gw.postern.test' },
    },
    options: {
      // DNS (signed) says mx.peer.test is 127.0.0.1:25; Postfix listens on its own port.
      connectOverride: (host) => (host === 'mx.peer.test' ? { address: pf.host, port: pf.port } : null),
      now: () => clock,
      maintenanceMs: 3_600_000,
    },
  });
});

after(async () => {
  await g?.close();
  await pf?.stop();
  await lab?.stop();
});

describe('gateway: DANE-TA to Postfix and the TLS-RPT report by mail', { skip }, () => {
  it('relays through DANE-TA (2 1 1, private CA, no CA configured) into Postfix', async () => {
    const c = await SmtpClient.connect({
      host: '127.0.0.1',
      address: '127.0.0.1',
      port: g.port.mx ?? 0,
      heloName: 'sender.test',
    });
    await c.ehlo();
    const body = Buffer.from('From: <alice@sender.test>\r\nSubject: dane-ta e2e\r\nX-Case: dane-ta-1\r\n\r\nhello\r\n');
    const r = await c.send(
      {
        mailFrom: 'alice@sender.test',
        recipients: [{ address: 'bob@peer.test', dsn: { notify: null, orcpt: null } }],
        body: '7BIT',
        smtputf8: false,
        requireTls: false,
        dsnRet: null,
        dsnEnvid: null,
      },
      body,
      { nextHopAuthenticated: false },
    );
    await c.quit();
    assert.equal(r.recipients[0]?.ok, true);
    const got = await waitFor(() => findMail('X-Case: dane-ta-1'), 20_000, 'the message in Postfix');
    assert.match(got, /X-Case: dane-ta-1/);
    // Postfix's Received header records TLS: it came over TLS.
    assert.match(got, /with ESMTPS/);
    const attempt = g.logs.find((l) => l.event === 'delivery.attempt' && l.outcome === 'policy-ok');
    assert.ok(attempt, 'a logged attempt');
    assert.match(String(attempt.rule), /\(DANE\).*DANE: chain matches TLSA 2 1 1 .* at depth 1/);
  });

  it('records the session for TLS-RPT and mails the report after the day ends (RFC 8460 §5.3)', async () => {
    const store = g.gw.tlsrpt;
    assert.ok(store !== null);
    const day = clock.toISOString().slice(0, 10);
    const [today] = store.reports({ report: { organizationName: 'x', contactInfo: 'y', reportIdPrefix: 'z' } });
    assert.ok(today, 'a report for today is being aggregated');
    const j = today.toJSON();
    assert.equal(j.policies[0]?.policy['policy-type'], 'tlsa');
    assert.equal(j.policies[0]?.policy['policy-domain'], 'peer.test');
    assert.equal(j.policies[0]?.summary['total-successful-session-count'], 1);

    clock = new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000 + 3_600_000);
    await g.gw.maintenance();
    const raw = await waitFor(() => findMail('TLS-Report-Domain: peer.test'), 20_000, 'the TLS-RPT report in Postfix');
    // RFC 5322 §2.2.3: unfold header lines before matching them.
    const mail = raw.replace(/\r?\n[ \t]+/g, ' ');
    assert.match(mail, /^Subject: Report Domain: peer\.test Submitter: gw\.postern\.test Report-ID: /m);
    assert.match(mail, /^TLS-Report-Submitter: gw\.postern\.test/m);
    assert.match(mail, /Content-Type: multipart\/report;\s+report-type="?tlsrpt"?/i);
    // The gzip attachment, decoded: the RFC 8460 §4.4 JSON with the session counted.
    const m = /Content-Type: application\/tlsrpt\+gzip[\s\S]*?\r?\n\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n--/i.exec(raw);
    assert.ok(m?.[1], 'an application/tlsrpt+gzip part');
    const report = JSON.parse(gunzipSync(Buffer.from(m[1].replace(/\s+/g, ''), 'base64')).toString('utf8')) as {
      'organization-name': string;
      'date-range': { 'start-datetime': string; 'end-datetime': string };
      'contact-info': string;
      'report-id': string;
      policies: Array<{
        policy: { 'policy-type': string; 'policy-string': string[]; 'policy-domain': string; 'mx-host'?: string };
        summary: { 'total-successful-session-count': number; 'total-failure-session-count': number };
      }>;
    };
    assert.equal(report['organization-name'], 'Postern Test Org');
    assert.equal(report['contact-info'], 'mailto:postmaster@gw.postern.test');
    assert.equal(report['date-range']['start-datetime'], `${day}T00:00:00Z`);
    assert.equal(report.policies.length, 1);
    assert.equal(report.policies[0]?.policy['policy-type'], 'tlsa');
    assert.match(report.policies[0]?.policy['policy-string'][0] ?? '', /^2 1 1 [0-9a-f]{64}$/);
    assert.equal(report.policies[0]?.summary['total-successful-session-count'], 1);
    assert.equal(report.policies[0]?.summary['total-failure-session-count'], 0);
    assert.match(mail, /^TLS-Required: No/m);
    const reportAttempt = g.logs.find(
      (l) => l.event === 'delivery.attempt' && String(l.matched).startsWith('TLS-Required: No'),
    );
    assert.ok(reportAttempt, 'the report went out under TLS-Required: No');
    // ... and was not counted as a session of its own (RFC 8460 §3).
    const [next] = store.reports({
      report: { organizationName: 'x', contactInfo: 'y', reportIdPrefix: 'z' },
      day: clock.toISOString().slice(0, 10),
    });
    assert.equal(next, undefined);
    // Sent once: another maintenance run does not send it again.
    await g.gw.maintenance();
    const again = (await maildirFiles()).length;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await maildirFiles()).length, again);
  });
});
