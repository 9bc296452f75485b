import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { escapeHtml, renderHtml } from '../../../src/scan/render-html.ts';
import type { HtmlScanReport } from '../../../src/scan/render-html.ts';
import type { EndpointReport, ScanReport } from '../../../src/scan/scan.ts';

const XSS = '<script>alert(1)</script>';
const ATTR = '"><img src=x onerror=alert(2)>';
const SQ = "' onmouseover='alert(3)";

function endpoint(over: Partial<EndpointReport> = {}): EndpointReport {
  return {
    url: 'smtp://mx.example.org:25',
    service: 'smtp',
    host: 'mx.example.org',
    address: '192.0.2.10',
    port: 25,
    starttls: { offered: true, advertised: true, stripped: false, refusedReply: null, injectedBytes: null },
    protocols: { SSLv2: false, SSLv3: false, 'TLSv1.0': false, 'TLSv1.1': false, 'TLSv1.2': true, 'TLSv1.3': true },
    ciphers: [
      { protocol: 'TLSv1.3', code: '0x1302', name: 'TLS_AES_256_GCM_SHA384' },
      { protocol: 'TLSv1.2', code: '0xC02C', name: 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384' },
    ],
    serverPreference: { 'TLSv1.2': true },
    groups: { tls13: ['x25519'], tls12: ['secp256r1'] },
    dhBits: [],
    certificate: {
      subject: 'CN=mx.example.org',
      issuer: 'CN=Example CA',
      notBefore: '2026-01-01T00:00:00.000Z',
      notAfter: '2026-03-02T00:00:00.000Z',
      keyType: 'EC',
      keyBits: 256,
      signatureAlgorithm: 'ecdsa-with-SHA256',
      sha256: 'AB'.repeat(32),
      dnsNames: ['mx.example.org'],
      selfSigned: false,
      trusted: true,
      hostnameMatches: true,
    },
    chains: 1,
    negotiated: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', group: 'x25519' },
    findings: [],
    compliant: true,
    reachable: true,
    errors: [],
    stats: { connections: 12, durationMs: 345 },
    ...over,
  };
}

/** A hostile server: every string it controls carries markup. */
function hostile(): EndpointReport {
  return endpoint({
    url: `smtp://evil.example:25`,
    host: 'evil.example',
    address: '192.0.2.66',
    starttls: {
      offered: true,
      advertised: true,
      stripped: false,
      refusedReply: `454 ${XSS}`,
      injectedBytes: `250 ${XSS}${ATTR}\x1b[31m`,
    },
    protocols: { SSLv2: false, SSLv3: false, 'TLSv1.0': true, 'TLSv1.1': false, 'TLSv1.2': true, 'TLSv1.3': false },
    ciphers: [
      { protocol: 'TLSv1.2', code: '0x0005', name: 'TLS_RSA_WITH_RC4_128_SHA' },
      { protocol: 'TLSv1.2', code: '0xC02F', name: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' },
      { protocol: 'TLSv1.0', code: `0x0005${ATTR}`, name: XSS },
    ],
    certificate: {
      subject: `CN=${XSS}${ATTR}`,
      issuer: `O=${SQ}`,
      notBefore: '2025-01-01T00:00:00.000Z',
      notAfter: '2025-12-27T00:00:00.000Z',
      keyType: 'RSA',
      keyBits: 1024,
      signatureAlgorithm: `sha1WithRSAEncryption${XSS}`,
      sha256: 'CD'.repeat(32),
      dnsNames: [`${XSS}.example`, ATTR],
      selfSigned: true,
      trusted: false,
      hostnameMatches: false,
    },
    negotiated: { protocol: 'TLSv1.2', cipher: XSS, group: ATTR },
    findings: [
      {
        id: 'cipher-rc4',
        severity: 'high',
        message: 'RC4 accepted',
        evidence: ['TLSv1.2 0x0005 TLS_RSA_WITH_RC4_128_SHA'],
      },
      { id: 'cert-self-signed', severity: 'high', message: `self-signed certificate (CN=${XSS}${ATTR})` },
      {
        id: 'starttls-response-injection',
        severity: 'high',
        message: 'plaintext after go-ahead',
        evidence: [`250 ${XSS}${ATTR}`],
      },
      { id: 'protocol-tls1.0', severity: 'medium', message: 'TLSv1.0 is accepted' },
    ],
    compliant: false,
    errors: [{ phase: 'full-handshake', code: 'tls-alert', message: `alert ${XSS}${ATTR}` }],
  });
}

function report(targets: EndpointReport[]): ScanReport {
  return { schemaVersion: 1, profile: 'bsi', generatedAt: '2026-01-31T12:00:00.000Z', targets };
}

/** The rows of the verdicts table's body. */
function verdictRows(html: string): string[] {
  const table = /<table id="verdicts">([\s\S]*?)<\/table>/.exec(html)?.[1] ?? '';
  const body = /<tbody>([\s\S]*?)<\/tbody>/.exec(table)?.[1] ?? '';
  return body.match(/<tr\b[^>]*>[\s\S]*?<\/tr>/g) ?? [];
}

const TAGS = new Set(
  'html head meta title style body header main section footer div span a h1 h2 h3 h4 p dl dt dd table thead tbody tr th td ul li details summary pre code br'.split(
    ' ',
  ),
);
const ATTRS = new Set(['class', 'id', 'href', 'title', 'lang', 'charset', 'http-equiv', 'content', 'name']);

/**
 * Every `<` in the output starts one of the renderer's own tags (server text has none left), and
 * each tag carries only known attributes with double-quoted values and fragment-only links.
 */
function assertOnlyOwnMarkup(html: string): void {
  const body = html.replace(/<style>[\s\S]*?<\/style>/, '<style></style>').replace(/^<!DOCTYPE html>/, '');
  for (const m of body.matchAll(/<([^>]*)>/g)) {
    const inner = m[1] ?? '';
    const tm = /^\/?([a-z0-9]+)([\s\S]*)$/.exec(inner);
    assert.ok(tm, `malformed tag <${inner}>`);
    const [, name = '', rest = ''] = tm;
    assert.ok(TAGS.has(name), `unexpected tag <${name}>`);
    const stripped = rest.replace(/\s([a-z-]+)="([^"]*)"/g, (_all, attr: string, value: string) => {
      assert.ok(ATTRS.has(attr), `unexpected attribute ${attr} on <${name}>`);
      if (attr === 'href') assert.match(value, /^#[a-z0-9-]+$/, 'only in-page links');
      return '';
    });
    assert.equal(stripped.trim(), '', `stray text inside <${name}${rest}>`);
  }
}

describe('escapeHtml', () => {
  it('escapes the five markup characters and shows control bytes', () => {
    assert.equal(
      escapeHtml(`<a href="x" title='y'>&</a>`),
      '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
    );
    assert.equal(escapeHtml('a\x1b[31m\x00b\x7f'), 'a\\x1b[31m\\x00b\\x7f');
    assert.equal(escapeHtml('tab\tnl\n'), 'tab\tnl\n');
  });
});

describe('renderHtml', () => {
  it('is one self-contained page with a strict CSP and no external references', () => {
    const html = renderHtml(report([endpoint(), hostile()]));
    assert.match(html, /^<!DOCTYPE html>\n<html lang="en">/);
    assert.ok(
      html.includes(
        `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
      ),
    );
    assert.doesNotMatch(html, /<link\b/i);
    assert.doesNotMatch(html, /<script\b/i);
    assert.doesNotMatch(html, /<(img|iframe|object|embed|svg|form|base)\b/i);
    assert.doesNotMatch(html, /\b(src|href|action)\s*=\s*"?https?:/i);
    assert.doesNotMatch(html, /https?:\/\//i);
    const css = /<style>([\s\S]*?)<\/style>/.exec(html)?.[1] ?? '';
    assert.doesNotMatch(css, /url\(|@import|@font-face/i);
    assert.match(css, /@media print/);
    assert.match(css, /@media \(prefers-color-scheme:dark\)/);
  });

  it('has one verdict row per endpoint with the right class, linking to its section', () => {
    const good = endpoint();
    const unreachable = endpoint({
      url: 'smtp://down.example:25',
      reachable: false,
      compliant: false,
      certificate: null,
      ciphers: [],
      negotiated: null,
      findings: [{ id: 'unreachable', severity: 'high', message: 'connect ECONNREFUSED' }],
    });
    const html = renderHtml(report([good, hostile(), unreachable]));
    const rows = verdictRows(html);
    assert.equal(rows.length, 3);
    assert.deepEqual(
      rows.map((r) => /<td class="verdict (verdict-ok|verdict-fail)">/.exec(r)?.[1]),
      ['verdict-ok', 'verdict-fail', 'verdict-fail'],
    );
    assert.match(rows[0] ?? '', />compliant</);
    assert.match(rows[1] ?? '', />not compliant</);
    assert.match(rows[2] ?? '', />unreachable</);
    rows.forEach((r, i) => {
      assert.match(r, new RegExp(`<a href="#ep-${i + 1}">`));
      assert.match(html, new RegExp(`<section class="endpoint [a-z-]+" id="ep-${i + 1}">`));
    });
    // Best / worst protocol and suite count of the hostile server (TLS 1.2 / TLS 1.0, 3 suites).
    assert.match(
      rows[1] ?? '',
      /proto-good">TLSv1\.2<\/span> <span class="muted">\/<\/span> <span class="proto proto-bad">TLSv1\.0/,
    );
    assert.match(rows[1] ?? '', /<td class="num">3<\/td>/);
    assert.match(rows[1] ?? '', /3 high<\/span> <span class="sev sev-medium" title="medium">1 medium/);
    // Overall verdict follows the endpoints.
    assert.match(html, /<div class="overall verdict-fail" id="overall">\n<div class="big">Not compliant/);
    assert.match(renderHtml(report([good])), /<div class="overall verdict-ok" id="overall">/);
  });

  it('renders hostile server strings as text, never as markup', () => {
    const html = renderHtml(report([hostile()]), { title: `T ${XSS}`, generatedBy: ATTR });
    assertOnlyOwnMarkup(html);
    assert.doesNotMatch(html, /<script/i);
    assert.doesNotMatch(html, /<img/i);
    // onerror= only appears inside escaped text, never in a tag.
    for (const m of html.matchAll(/onerror=/g)) {
      const before = html.slice(0, m.index);
      assert.ok(before.lastIndexOf('<') < before.lastIndexOf('>'), 'onerror= outside a tag');
    }
    // The text is still there for the reader, escaped.
    assert.ok(html.includes('CN=&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;'));
    assert.ok(html.includes('O=&#39; onmouseover=&#39;alert(3)'));
    assert.ok(
      html.includes('250 &lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;\\x1b[31m'),
    );
    assert.ok(html.includes('<title>T &lt;script&gt;'));
  });

  it('shows certificate details with days left counted from generatedAt', () => {
    const html = renderHtml(report([endpoint(), hostile()]));
    const [goodRow, badRow] = verdictRows(html);
    assert.match(goodRow ?? '', /nowrap warn">2026-03-02<\/span><div class="small muted nowrap">29 d left/);
    assert.match(badRow ?? '', /class="nowrap bad">2025-12-27<\/span><div class="small muted nowrap">expired 35 d ago/);
    assert.match(html, /2026-01-01 → 2026-03-02 <span class="warn">29 days left<\/span>/);
    assert.ok(html.includes('ABABABAB'), 'SHA-256 fingerprint');
    assert.match(html, /EC 256 bits/);
    assert.match(
      html,
      /<span class="bad">untrusted<\/span> · <span class="bad">self-signed<\/span> · <span class="bad">name mismatch/,
    );
  });

  it('marks weak suites and the suites a finding names', () => {
    const html = renderHtml(report([hostile()]));
    const rc4 = /<tr class="([^"]*)"><td class="mono">0x0005<\/td>[\s\S]*?<\/tr>/.exec(html);
    assert.ok(rc4, 'RC4 suite row');
    assert.equal(rc4[1], 'suite-weak');
    assert.match(rc4[0], /tag-bad">RC4</);
    assert.match(rc4[0], /tag-flag">cipher-rc4</);
    const gcm = /<tr class="([^"]*)"><td class="mono">0xC02F<\/td>[\s\S]*?<\/tr>/.exec(html);
    assert.equal(gcm?.[1], '');
    assert.match(gcm?.[0] ?? '', /tag-good">PFS</);
    // Protocol pills: TLS 1.0 accepted is bad, TLS 1.3 not accepted is off.
    assert.match(html, /<span class="pill pill-bad" title="TLSv1.0 accepted">TLSv1.0<\/span>/);
    assert.match(html, /<span class="pill pill-off" title="TLSv1.3 not accepted">TLSv1.3<\/span>/);
  });

  it('lists findings most severe first, with rule and evidence collapsed', () => {
    const r = hostile();
    r.findings = [
      { id: 'protocol-tls1.0', severity: 'medium', message: 'TLSv1.0 is accepted' },
      { id: 'cipher-rc4', severity: 'high', message: 'RC4', evidence: ['TLSv1.2 0x0005 X'] },
    ];
    const withRule: HtmlScanReport = report([r]);
    const f0 = withRule.targets[0]?.findings[0];
    if (f0) f0.rule = 'BSI TR-02102-2 §3.2';
    const html = renderHtml(withRule);
    const findings = /<table class="findings">([\s\S]*?)<\/table>/.exec(html)?.[1] ?? '';
    const ids = [...findings.matchAll(/<td class="mono">([^<]+)<\/td>/g)].map((m) => m[1]);
    assert.deepEqual(ids, ['cipher-rc4', 'protocol-tls1.0']);
    assert.match(findings, /<details><summary>Evidence \(1\)<\/summary><pre>TLSv1.2 0x0005 X<\/pre><\/details>/);
    assert.match(findings, /<td class="small">BSI TR-02102-2 §3.2<\/td>/);
    assert.match(findings, /<th>Rule<\/th>/);
    // Without any rule (ungraded findings) there is no empty Rule column.
    const ungraded = /<table class="findings">([\s\S]*?)<\/table>/.exec(renderHtml(report([hostile()])))?.[1] ?? '';
    assert.doesNotMatch(ungraded, /Rule|<td class="small">/);
    assert.match(html, /<table class="errors">[\s\S]*tls-alert/);
    assert.match(html, /12 connections · 345 ms/);
  });

  it('renders per-domain results when present', () => {
    const r: HtmlScanReport = {
      ...report([endpoint()]),
      domains: [
        {
          domain: 'example.org',
          mx: ['mx.example.org'],
          compliant: true,
          weakest: 'smtp://mx.example.org:25',
          weakestAddress: '192.0.2.10',
          findings: [],
        },
        {
          domain: `bad${XSS}.example`,
          mx: [`mx${ATTR}`],
          compliant: false,
          weakest: null,
          weakestAddress: null,
          findings: [{ id: 'mta-sts-missing', severity: 'medium', message: 'no policy', rule: 'RFC 8461' }],
        },
      ],
    };
    const html = renderHtml(r);
    assertOnlyOwnMarkup(html);
    const table = /<table id="domains">([\s\S]*?)<\/table><\/div>/.exec(html)?.[1] ?? '';
    const verdicts = [...table.matchAll(/<td class="verdict (verdict-[a-z]+)">/g)].map((m) => m[1]);
    assert.deepEqual(verdicts, ['verdict-ok', 'verdict-fail']);
    assert.match(table, /RFC 8461/);
    // The weakest MX links to the endpoint section it names.
    assert.match(table, /<a href="#ep-1">smtp:\/\/mx.example.org:25 <span class="muted">192.0.2.10<\/span><\/a>/);
    // A failing domain fails the overall verdict even when every endpoint passes.
    assert.match(html, /<div class="overall verdict-fail"/);
  });

  it('is deterministic: same report, same bytes, whatever the clock says', () => {
    const rep = report([endpoint(), hostile()]);
    mock.timers.enable({ apis: ['Date'], now: new Date('2030-06-01T00:00:00Z') });
    let a: string;
    try {
      a = renderHtml(rep, { title: 'x' });
    } finally {
      mock.timers.reset();
    }
    const b = renderHtml(rep, { title: 'x' });
    assert.equal(a, b);
    assert.doesNotMatch(a, /2030-06-01/);
  });
});
