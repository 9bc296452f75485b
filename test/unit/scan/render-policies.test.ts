/** The DANE / MTA-STS / TLS-RPT sections of the text and HTML reports: shown, and hostile DNS/HTTP text made inert. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DomainSummary } from '../../../src/scan/domain.ts';
import { renderHtml } from '../../../src/scan/render-html.ts';
import { makeStyle, renderDomain } from '../../../src/scan/render-text.ts';

const EVIL = '<script>alert(1)</script>\x1b[2J"\'&';

function summary(): DomainSummary {
  return {
    domain: 'example.test',
    mx: ['mx.example.test'],
    compliant: false,
    weakest: null,
    weakestAddress: null,
    findings: [
      { id: 'tlsrpt-invalid', severity: 'low', message: `the TLS-RPT record is invalid (${EVIL})`, evidence: [EVIL] },
    ],
    dane: {
      mxStatus: 'secure',
      validatingResolver: true,
      hosts: [
        {
          mxHost: 'mx.example.test',
          port: 25,
          tlsaName: '_25._tcp.mx.example.test',
          addressStatus: 'secure',
          tlsaStatus: 'secure',
          state: 'dane',
          records: [{ record: `3 1 1 ${'ab'.repeat(32)}`, usable: true, unusableReason: null, matchesServed: false }],
          addresses: [{ address: '192.0.2.1', match: false, matched: null, reason: EVIL }],
          rollover: { ready: false, basis: null, reason: 'no usable TLSA record matches the certificate served now' },
          detail: null,
        },
      ],
    },
    mtaSts: {
      record: { name: '_mta-sts.example.test', found: true, valid: false, id: null, reason: EVIL },
      policy: {
        url: 'https://mta-sts.example.test/.well-known/mta-sts.txt',
        fetched: true,
        valid: false,
        mode: null,
        maxAge: null,
        mx: [],
        resultType: 'sts-policy-invalid',
        reason: EVIL,
      },
      mx: [{ host: 'mx.example.test', covered: null, addresses: [] }],
    },
    tlsRpt: { name: '_smtp._tls.example.test', found: true, valid: false, rua: [], reason: EVIL },
  };
}

describe('mail-policy sections', () => {
  it('text: each section is shown; control bytes from DNS/HTTP never reach the terminal raw', () => {
    const text = renderDomain(summary(), makeStyle(false));
    assert.match(text, /^ {2}DANE {9}MX RRset secure$/m);
    assert.match(text, /192\.0\.2\.1 {2}MISMATCH/);
    assert.match(text, /rollover not ready/);
    assert.match(text, /^ {2}MTA-STS {6}record invalid: /m);
    assert.match(text, /policy {5}sts-policy-invalid: /);
    assert.match(text, /^ {2}TLS-RPT {6}invalid: /m);
    assert.ok(!text.includes('\x1b'), 'raw ESC in text output');
    assert.ok(text.includes('\\x1b[2J'));
  });

  it('HTML: cards for DANE, MTA-STS and TLS-RPT; no markup from DNS/HTTP survives', () => {
    const html = renderHtml({
      schemaVersion: 1,
      profile: 'bsi',
      generatedAt: '2026-01-01T00:00:00.000Z',
      targets: [],
      domains: [summary()],
    });
    for (const h of ['DANE (RFC 7672)', 'MTA-STS (RFC 8461)', 'TLS-RPT (RFC 8460)'])
      assert.ok(html.includes(`<h3>${h}</h3>`), h);
    assert.ok(!html.includes('<script>'), 'unescaped script tag');
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    assert.ok(!html.includes('\x1b'));
    assert.match(html, /<span class="bad">mismatch<\/span>/);
    assert.match(html, /sts-policy-invalid/);
  });
});
