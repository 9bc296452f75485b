import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { PosternError } from '../../../../src/core/errors.ts';
import { DnsError } from '../../../../src/dns/resolver.ts';
import { TlsRptAggregator, type TlsRptPolicy, type TlsRptReport } from '../../../../src/report/tlsrpt/aggregate.ts';
import { gzipReport, reportFilename } from '../../../../src/report/tlsrpt/encode.ts';
import {
  buildReportMail,
  isNonPublicAddress,
  mailtoAddress,
  postReport,
  sendDueReports,
  type TlsRptMail,
  type TlsRptPostResult,
} from '../../../../src/report/tlsrpt/send.ts';
import { TlsRptStore } from '../../../../src/report/tlsrpt/store.ts';
import { makePki } from '../../../helpers/certs.ts';
import { validateTlsRptJson } from './validate.ts';
import { tracked, turns, until } from '../../../helpers/timers.ts';

const OPTS = { organizationName: 'Postern Test', contactInfo: 'tlsrpt@sender.example', reportIdPrefix: 'pt-' };
const STS: TlsRptPolicy = {
  type: 'sts',
  strings: ['version: STSv1', 'mode: enforce', 'mx: *.mail.example.net', 'max_age: 86400'],
  mxHost: '*.mail.example.net',
};

function sampleReport(org = OPTS.organizationName): TlsRptReport {
  const agg = new TlsRptAggregator({ now: () => new Date('2024-03-10T12:00:00Z') });
  for (let i = 0; i < 3; i++) agg.recordSuccess({ policyDomain: 'example.net', policy: STS });
  agg.recordFailure({
    policyDomain: 'example.net',
    policy: STS,
    resultType: 'certificate-expired',
    sendingMtaIp: '192.0.2.1',
    receivingMxHostname: 'mx1.mail.example.net',
  });
  const [r] = agg.reports(new Date('2024-03-10T00:00:00Z'), { ...OPTS, organizationName: org });
  assert.ok(r);
  return r;
}

interface Part {
  headers: Map<string, string>;
  body: string;
}

/** Minimal RFC 5322 / MIME reader for these tests: unfolds headers, splits on the boundary. */
function parseEntity(text: string): Part {
  const sep = text.indexOf('\r\n\r\n');
  assert.ok(sep > 0, 'header/body separator');
  const headers = new Map<string, string>();
  for (const line of text
    .slice(0, sep)
    .replace(/\r\n[ \t]+/g, ' ')
    .split('\r\n')) {
    const m = /^([!-9;-~]+):[ \t]*(.*)$/.exec(line);
    assert.ok(m, `header line: ${JSON.stringify(line)}`);
    const name = (m[1] ?? '').toLowerCase();
    assert.equal(headers.has(name), false, `duplicate ${name}`);
    headers.set(name, m[2] ?? '');
  }
  return { headers, body: text.slice(sep + 4) };
}

function param(value: string, name: string): string | undefined {
  const m = new RegExp(`;\\s*${name}="([^"]*)"`, 'i').exec(value);
  return m?.[1];
}

function splitMultipart(body: string, boundary: string): Part[] {
  const delim = `\r\n--${boundary}`;
  const text = `\r\n${body}`;
  const close = text.indexOf(`${delim}--`);
  assert.ok(close >= 0, 'closing boundary');
  const chunks = text.slice(0, close).split(delim).slice(1); // [0] is the preamble
  return chunks.map((c) => {
    assert.ok(c.startsWith('\r\n'), 'boundary line ends with CRLF');
    return parseEntity(c.slice(2));
  });
}

describe('buildReportMail (RFC 8460 §5.3)', () => {
  it('builds a multipart/report; report-type="tlsrpt" message whose attachment gunzips to the report', () => {
    const report = sampleReport();
    const mail = buildReportMail(report, {
      from: 'tlsrpt@sender.example',
      to: ['tls@example.net', 'tls2@reports.example.org'],
      submitter: 'mail.sender.example',
      messageId: 'abc.1@mail.sender.example',
      date: new Date('2024-03-11T01:02:03Z'),
    });
    assert.equal(mail.mailFrom, 'tlsrpt@sender.example');
    assert.deepEqual(mail.recipients, ['tls@example.net', 'tls2@reports.example.org']);
    const text = mail.raw.toString('utf8');
    // Line discipline: CRLF only, no line over 998 (RFC 5322 §2.1.1), ASCII only.
    assert.equal(/(^|[^\r])\n/.test(text), false, 'no bare LF');
    assert.equal(/\r(?!\n)/.test(text), false, 'no bare CR');
    for (const line of text.split('\r\n')) assert.ok(line.length <= 998);
    assert.equal(/[^\t\r\n -~]/.test(text), false, 'printable ASCII only');

    const msg = parseEntity(text);
    const h = msg.headers;
    assert.equal(h.get('from'), 'tlsrpt@sender.example');
    assert.equal(h.get('to'), 'tls@example.net, tls2@reports.example.org');
    assert.equal(h.get('date'), 'Mon, 11 Mar 2024 01:02:03 +0000');
    assert.equal(h.get('message-id'), '<abc.1@mail.sender.example>');
    assert.equal(
      h.get('subject'),
      'Report Domain: example.net Submitter: mail.sender.example Report-ID: <pt-2024-03-10_example.net@mail.sender.example>',
    );
    assert.equal(h.get('tls-report-domain'), 'example.net');
    assert.equal(h.get('tls-report-submitter'), 'mail.sender.example');
    assert.equal(h.get('mime-version'), '1.0');
    assert.equal(h.get('tls-required'), 'No');
    const ct = h.get('content-type') ?? '';
    assert.match(ct, /^multipart\/report;/);
    assert.equal(param(ct, 'report-type'), 'tlsrpt');
    const boundary = param(ct, 'boundary');
    assert.ok(boundary);

    const parts = splitMultipart(msg.body, boundary);
    assert.equal(parts.length, 2);
    const [textPart, gzPart] = parts;
    assert.ok(textPart && gzPart);
    assert.match(textPart.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(textPart.body, /aggregate TLS report .* from mail\.sender\.example about example\.net/);

    assert.match(gzPart.headers.get('content-type') ?? '', /^application\/tlsrpt\+gzip/);
    assert.equal(gzPart.headers.get('content-transfer-encoding'), 'base64');
    const disp = gzPart.headers.get('content-disposition') ?? '';
    assert.match(disp, /^attachment;/);
    assert.equal(param(disp, 'filename'), reportFilename(report, 'mail.sender.example'));
    assert.equal(param(disp, 'filename'), `mail.sender.example!example.net!1710028800!1710115199.json.gz`);
    const b64Lines = gzPart.body.replace(/\r\n$/, '').split('\r\n');
    for (const l of b64Lines) {
      assert.ok(l.length <= 76, 'base64 wrapped at 76');
      assert.match(l, /^[A-Za-z0-9+/=]*$/);
    }
    const json: unknown = JSON.parse(gunzipSync(Buffer.from(b64Lines.join(''), 'base64')).toString('utf8'));
    assert.deepEqual(json, report.toJSON());
    assert.deepEqual(validateTlsRptJson(json), []);
  });

  it('folds a long Subject and To without changing their unfolded value', () => {
    const to = Array.from({ length: 6 }, (_, i) => `tls-reports-${i}@some-long-reporting-domain.example.org`);
    const mail = buildReportMail(sampleReport(), {
      from: 'tlsrpt@sender.example',
      to,
      submitter: 'a-rather-long-submitter-hostname.mail.sender.example',
    });
    const text = mail.raw.toString('utf8');
    const head = text.slice(0, text.indexOf('\r\n\r\n'));
    for (const line of head.split('\r\n')) {
      // Only a lone unbreakable token (a long msg-id) may pass 78 characters.
      if (/^\s\S+$/.test(line)) assert.ok(line.length <= 998);
      else assert.ok(line.length <= 78, `header line ≤ 78: ${line}`);
    }
    const h = parseEntity(text).headers;
    assert.equal(h.get('to'), to.join(', '));
    assert.match(h.get('subject') ?? '', /^Report Domain: example\.net Submitter: a-rather-long-submitter-hostname/);
    assert.match(
      h.get('message-id') ?? '',
      /^<[0-9a-f]{24}\.tlsrpt@a-rather-long-submitter-hostname\.mail\.sender\.example>$/,
    );
  });

  it('encodes a non-ASCII organisation name safely (base64 UTF-8 text part, no raw CR/LF)', () => {
    const mail = buildReportMail(sampleReport('Bücher & Co\r\nBcc: victim@x.example'), {
      from: 'tlsrpt@sender.example',
      to: ['tls@example.net'],
      submitter: 'sender.example',
    });
    const text = mail.raw.toString('utf8');
    assert.equal(/[^\t\r\n -~]/.test(text), false, 'printable ASCII only');
    assert.equal(/^Bcc:/im.test(text), false);
    const msg = parseEntity(text);
    const [textPart] = splitMultipart(msg.body, param(msg.headers.get('content-type') ?? '', 'boundary') ?? '');
    assert.ok(textPart);
    assert.match(textPart.headers.get('content-type') ?? '', /charset="utf-8"/);
    assert.equal(textPart.headers.get('content-transfer-encoding'), 'base64');
    assert.match(Buffer.from(textPart.body, 'base64').toString('utf8'), /Organization: Bücher & Co {2}Bcc/);
  });

  it('refuses addresses and ids that could inject header syntax', () => {
    const r = sampleReport();
    const base = { from: 'tlsrpt@sender.example', to: ['tls@example.net'], submitter: 'sender.example' };
    assert.throws(() => buildReportMail(r, { ...base, to: ['a@b.example\r\nBcc: c@d.example'] }), PosternError);
    assert.throws(() => buildReportMail(r, { ...base, to: ['"a b"@example.net'] }), PosternError);
    assert.throws(() => buildReportMail(r, { ...base, to: [] }), PosternError);
    assert.throws(() => buildReportMail(r, { ...base, from: 'x' }), PosternError);
    assert.throws(() => buildReportMail(r, { ...base, submitter: 'not a domain' }), PosternError);
    assert.throws(() => buildReportMail(r, { ...base, messageId: '<a@b>' }), PosternError);
  });

  it('mailtoAddress takes the decoded path of a mailto: URI and nothing unsafe', () => {
    assert.equal(mailtoAddress('mailto:tls@example.net'), 'tls@example.net');
    assert.equal(mailtoAddress('mailto:tls@example.net?subject=x'), 'tls@example.net');
    assert.equal(mailtoAddress('mailto:tls%2Brpt@example.net'), 'tls+rpt@example.net');
    assert.equal(mailtoAddress('mailto:a%0D%0ABcc:b@example.net'), undefined);
    assert.equal(mailtoAddress('mailto:a@x.example%2Cb@y.example'), undefined);
    assert.equal(mailtoAddress('mailto:a@b.example!10m'), undefined);
    assert.equal(mailtoAddress('https://example.net/'), undefined);
    assert.equal(mailtoAddress('mailto:%E0%A4%A'), undefined);
  });
});

// ---- HTTPS POST against a loopback server ----------------------------------------------------

interface Seen {
  method: string;
  url: string;
  contentType: string;
  host: string;
  body: Buffer;
}

describe('postReport (RFC 8460 §5.4)', () => {
  let server: Server;
  let port = 0;
  let ca = '';
  const seen: Seen[] = [];
  let respond: (url: string) => { status: number; headers?: Record<string, string> } | 'hang' = () => ({
    status: 200,
  });
  // Every name resolves to loopback, through the injected DNS client (never getaddrinfo).
  const resolved: string[] = [];
  const toLoopback = {
    addresses: async (host: string): Promise<string[]> => {
      resolved.push(host);
      return ['127.0.0.1'];
    },
  };

  before(async () => {
    const pki = await makePki({ dnsNames: ['rpt.example.test'], subject: 'CN=rpt.example.test' });
    ca = pki.root.pem;
    server = createServer({ key: pki.leaf.keyPem, cert: pki.leaf.pem + pki.intermediate.pem }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          contentType: req.headers['content-type'] ?? '',
          host: req.headers.host ?? '',
          body: Buffer.concat(chunks),
        });
        const r = respond(req.url ?? '');
        if (r === 'hang') return;
        res.writeHead(r.status, r.headers).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const post = (url: string, gz: Buffer, extra: Parameters<typeof postReport>[2] = {}): Promise<TlsRptPostResult> =>
    postReport(url, gz, { ca: [ca], dns: toLoopback, port, allowPrivateAddresses: true, timeoutMs: 5000, ...extra });

  it('POSTs application/tlsrpt+gzip and treats 2xx as success', async () => {
    seen.length = 0;
    respond = () => ({ status: 201 });
    const report = sampleReport();
    const r = await post('https://rpt.example.test/v1/tlsrpt?x=1', gzipReport(report));
    assert.deepEqual(r, { ok: true, status: 201 });
    assert.equal(seen.length, 1);
    assert.ok(resolved.includes('rpt.example.test'), 'the host was resolved by the injected DNS client');
    const s = seen[0];
    assert.ok(s);
    assert.equal(s.method, 'POST');
    assert.equal(s.url, '/v1/tlsrpt?x=1');
    assert.equal(s.contentType, 'application/tlsrpt+gzip');
    assert.equal(s.host, 'rpt.example.test');
    const json: unknown = JSON.parse(gunzipSync(s.body).toString('utf8'));
    assert.deepEqual(json, report.toJSON());
    assert.deepEqual(validateTlsRptJson(json), []);
  });

  it('does not follow a redirect: a 3xx is a failure and the target is never requested', async () => {
    seen.length = 0;
    respond = (url) => (url === '/moved' ? { status: 302, headers: { location: '/there' } } : { status: 200 });
    const r = await post('https://rpt.example.test/moved', gzipReport(sampleReport()));
    assert.equal(r.ok, false);
    assert.equal(r.ok ? 0 : r.status, 302);
    assert.deepEqual(
      seen.map((s) => s.url),
      ['/moved'],
    );
  });

  it('fails on 4xx/5xx, on an untrusted certificate, and after the deadline', async (t) => {
    respond = () => ({ status: 503 });
    const r1 = await post('https://rpt.example.test/', gzipReport(sampleReport()));
    assert.deepEqual(r1.ok ? null : r1.status, 503);
    respond = () => ({ status: 200 });
    const r2 = await postReport('https://rpt.example.test/', Buffer.from('x'), {
      dns: toLoopback,
      port,
      allowPrivateAddresses: true,
      timeoutMs: 5000,
    }); // default trust store: the test CA is not in it
    assert.equal(r2.ok, false);
    const r3 = await post('https://wrong-name.example.test/', Buffer.from('x')); // certificate is for rpt.example.test
    assert.equal(r3.ok, false);
    respond = () => 'hang';
    // Mocked timers: the deadline is proven by ticking to 1 ms before it and to it, not measured.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const before = seen.length;
    const q = tracked(post('https://rpt.example.test/', Buffer.from('x'), { timeoutMs: 300 }));
    await until(() => seen.length === before + 1 || q.settled, 'the report reaches the server');
    assert.equal(q.settled, false, 'ended before the deadline');
    t.mock.timers.tick(299);
    await turns(50);
    assert.equal(q.settled, false, 'ended 1 ms before the deadline');
    t.mock.timers.tick(1);
    await until(() => q.settled, 'the post ends at the deadline', 100_000);
    const r4 = await q.promise;
    assert.equal(r4.ok, false);
    assert.match(r4.ok ? '' : r4.reason, /timed out/);
    server.closeAllConnections();
  });

  it('refuses non-https URLs, credentials, and (by default) non-public addresses without connecting', async () => {
    seen.length = 0;
    respond = () => ({ status: 200 });
    const gz = Buffer.from('x');
    const opts = { ca: [ca], dns: toLoopback, port, timeoutMs: 2000 };
    assert.equal((await postReport('http://rpt.example.test/', gz, opts)).ok, false);
    assert.equal((await postReport('https://u:p@rpt.example.test/', gz, opts)).ok, false);
    const r = await postReport('https://rpt.example.test/', gz, opts); // resolves to 127.0.0.1
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.reason, /non-public/);
    assert.equal((await postReport('https://127.0.0.1/', gz, opts)).ok, false);
    assert.equal((await postReport('https://[::1]/', gz, opts)).ok, false);
    assert.equal(seen.length, 0);
    assert.equal(isNonPublicAddress('10.1.2.3'), true);
    assert.equal(isNonPublicAddress('::ffff:192.168.1.1'), true);
    assert.equal(isNonPublicAddress('fe80::1'), true);
    assert.equal(isNonPublicAddress('8.8.8.8'), false);
    assert.equal(isNonPublicAddress('2001:4860::8888'), false);
  });
});

// ---- the daily job ---------------------------------------------------------------------------

describe('sendDueReports', () => {
  const DAY1 = new Date('2024-03-10T12:00:00Z');
  const DAY2 = new Date('2024-03-11T12:00:00Z');

  function setup(records: Record<string, string[][] | Error>) {
    let now = new Date('2024-03-12T00:10:00Z');
    const store = TlsRptStore.open(':memory:', { now: () => now });
    const mails: TlsRptMail[] = [];
    const posts: Array<{ url: string; json: unknown }> = [];
    let postStatus: (url: string) => TlsRptPostResult = () => ({ ok: true, status: 200 });
    const lookups: string[] = [];
    const deps = {
      store,
      dns: {
        txt: async (name: string): Promise<string[][]> => {
          lookups.push(name);
          const r = records[name];
          if (r === undefined) throw new DnsError('dns-nxdomain', name, 'TXT', 'no such domain');
          if (r instanceof Error) throw r;
          return r;
        },
      },
      enqueue: async (m: TlsRptMail): Promise<void> => {
        mails.push(m);
      },
      post: async (url: string, gz: Buffer): Promise<TlsRptPostResult> => {
        posts.push({ url, json: JSON.parse(gunzipSync(gz).toString('utf8')) });
        return postStatus(url);
      },
      report: OPTS,
      from: 'tlsrpt@sender.example',
      submitter: 'sender.example',
      now: () => now,
    };
    return {
      store,
      deps,
      mails,
      posts,
      lookups,
      setNow: (d: Date) => (now = d),
      setPost: (f: (url: string) => TlsRptPostResult) => (postStatus = f),
    };
  }

  it('sends finished days to every rua, skips domains without a usable record, and never resends', async () => {
    const t = setup({
      '_smtp._tls.example.net': [['v=TLSRPTv1; rua=mailto:tls@example.net,https://rpt.example.net/v1']],
      '_smtp._tls.bad.example': [['v=TLSRPTv1; rua=ftp://x.example/']],
    });
    for (const d of [DAY1, DAY2]) {
      t.store.recordSuccess({ policyDomain: 'example.net', policy: STS, day: d });
      t.store.recordSuccess({ policyDomain: 'none.example', policy: STS, day: d });
    }
    t.store.recordSuccess({ policyDomain: 'bad.example', policy: STS, day: DAY1 });
    t.store.recordSuccess({ policyDomain: 'example.net', policy: STS, day: new Date('2024-03-12T00:05:00Z') }); // today

    const r1 = await sendDueReports(t.deps);
    assert.deepEqual(r1, { sent: 2, failed: 0, skipped: 3 });
    assert.equal(t.mails.length, 2);
    assert.deepEqual(t.mails[0]?.recipients, ['tls@example.net']);
    assert.match(t.mails[0]?.raw.toString('utf8') ?? '', /^TLS-Report-Domain: example\.net\r$/m);
    assert.deepEqual(
      t.posts.map((p) => [p.url, (p.json as { 'report-id': string })['report-id']]),
      [
        ['https://rpt.example.net/v1', 'pt-2024-03-10_example.net'],
        ['https://rpt.example.net/v1', 'pt-2024-03-11_example.net'],
      ],
    );
    for (const p of t.posts) assert.deepEqual(validateTlsRptJson(p.json), []);
    assert.equal(t.store.status('none.example', '2024-03-10')?.state, 'skipped');
    assert.match(t.store.status('bad.example', '2024-03-10')?.reason ?? '', /no mailto: or https: URI/);
    assert.deepEqual(t.store.status('example.net', '2024-03-10')?.delivered, [
      'mailto:tls@example.net',
      'https://rpt.example.net/v1',
    ]);

    // A second run the same day has nothing to do: sent and skipped are final.
    t.lookups.length = 0;
    assert.deepEqual(await sendDueReports(t.deps), { sent: 0, failed: 0, skipped: 0 });
    assert.deepEqual(t.lookups, []);
    // The next day, today's data goes out.
    t.setNow(new Date('2024-03-13T00:10:00Z'));
    assert.deepEqual(await sendDueReports(t.deps), { sent: 1, failed: 0, skipped: 0 });
    t.store.close();
  });

  it('retries only the failed rua with backoff, and gives up after 24 hours (RFC 8460 §5.5)', async () => {
    const t = setup({
      '_smtp._tls.example.net': [['v=TLSRPTv1; rua=mailto:tls@example.net,https://rpt.example.net/v1']],
    });
    t.store.recordSuccess({ policyDomain: 'example.net', policy: STS, day: DAY1 });
    t.setPost(() => ({ ok: false, status: 503, reason: 'HTTP 503' }));
    assert.deepEqual(await sendDueReports(t.deps), { sent: 0, failed: 1, skipped: 0 });
    assert.equal(t.mails.length, 1);
    const st = t.store.status('example.net', '2024-03-10');
    assert.equal(st?.state, 'retry');
    assert.equal(st?.retryAt?.toISOString(), '2024-03-12T00:40:00.000Z'); // first retry after 30 minutes
    assert.deepEqual(st?.delivered, ['mailto:tls@example.net']);

    // Not yet due: nothing happens.
    t.setNow(new Date('2024-03-12T00:39:00Z'));
    assert.deepEqual(await sendDueReports(t.deps), { sent: 0, failed: 0, skipped: 0 });
    // Due: only the https rua is tried again; the mail is not sent twice.
    t.setNow(new Date('2024-03-12T00:40:00Z'));
    assert.deepEqual(await sendDueReports(t.deps), { sent: 0, failed: 1, skipped: 0 });
    assert.equal(t.mails.length, 1);
    assert.equal(t.posts.length, 2);
    assert.equal(t.store.status('example.net', '2024-03-10')?.retryAt?.toISOString(), '2024-03-12T01:40:00.000Z');

    // Keep failing until the 24-hour window from the first attempt is used up.
    for (let i = 0; i < 20 && t.store.status('example.net', '2024-03-10')?.state === 'retry'; i++) {
      t.setNow(t.store.status('example.net', '2024-03-10')?.retryAt ?? new Date());
      await sendDueReports(t.deps);
    }
    const final = t.store.status('example.net', '2024-03-10');
    assert.equal(final?.state, 'failed');
    assert.ok((final?.updatedAt.getTime() ?? 0) - Date.parse('2024-03-12T00:10:00Z') <= 24 * 3_600_000);
    assert.equal(t.mails.length, 1);
    t.store.close();
  });

  it('a temporary DNS failure is retried, a success on retry marks the report sent', async () => {
    const records: Record<string, string[][] | Error> = {
      '_smtp._tls.example.net': new DnsError('dns-servfail', '_smtp._tls.example.net', 'TXT', 'SERVFAIL'),
    };
    const t = setup(records);
    t.store.recordSuccess({ policyDomain: 'example.net', policy: STS, day: DAY1 });
    assert.deepEqual(await sendDueReports(t.deps), { sent: 0, failed: 1, skipped: 0 });
    assert.equal(t.store.status('example.net', '2024-03-10')?.state, 'retry');
    records['_smtp._tls.example.net'] = [['v=TLSRPTv1; rua=https://rpt.example.net/v1']];
    t.setNow(new Date('2024-03-12T01:00:00Z'));
    assert.deepEqual(await sendDueReports(t.deps), { sent: 1, failed: 0, skipped: 0 });
    assert.equal(t.store.status('example.net', '2024-03-10')?.state, 'sent');
    assert.equal(t.store.status('example.net', '2024-03-10')?.attempts, 2);
    t.store.close();
  });

  it('a failing enqueue is a retry; concurrent calls share one run', async () => {
    const t = setup({ '_smtp._tls.example.net': [['v=TLSRPTv1; rua=mailto:tls@example.net']] });
    t.store.recordSuccess({ policyDomain: 'example.net', policy: STS, day: DAY1 });
    let calls = 0;
    const deps = {
      ...t.deps,
      enqueue: async (): Promise<void> => {
        calls += 1;
        await new Promise((r) => setTimeout(r, 20));
        throw new Error('queue full');
      },
    };
    const [a, b] = await Promise.all([sendDueReports(deps), sendDueReports(deps)]);
    assert.deepEqual(a, { sent: 0, failed: 1, skipped: 0 });
    assert.equal(a, b);
    assert.equal(calls, 1);
    assert.match(t.store.status('example.net', '2024-03-10')?.reason ?? '', /queue full/);
    t.store.close();
  });
});
