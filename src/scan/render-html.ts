/**
 * `postern scan --html FILE`: one self-contained HTML page (inline CSS, no script, no external
 * request; a CSP meta forbids everything but inline styles). Every string that came from a server
 * (certificate names, banners, injected bytes, error text) goes through escapeHtml(): a hostile
 * server must not be able to put markup into an auditor's report. Output depends only on the
 * report and the options (no clock, no locale), so the same report renders byte-identically.
 */
import { VERSIONS } from '../tls/wire/constants.ts';
import type { VersionName } from '../tls/wire/constants.ts';
import { suiteByCode } from '../tls/wire/suites.ts';
import type { Finding, Severity } from './findings.ts';
import type { CertificateSummary, DomainSummary, ScanReport } from './report.ts';

/** A finding as rendered: profile grading may add the rule it comes from. */
/** What renderHtml renders: the scan report as `postern scan --json` prints it. */
export type HtmlScanReport = ScanReport;
type HtmlFinding = Finding;
type HtmlDomainReport = DomainSummary;

export interface RenderHtmlOptions {
  /** Page title (default "postern TLS scan report"). */
  title?: string;
  /** Footer credit, e.g. "postern 0.3.0". */
  generatedBy?: string;
}

type Endpoint = HtmlScanReport['targets'][number];

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * Escapes text for HTML element content and quoted attribute values. C0 controls and DEL (which a
 * server can put in a banner) become visible `\xNN` text instead of raw bytes.
 */
export function escapeHtml(s: string): string {
  // eslint-disable-next-line no-control-regex -- finding control bytes is the point here
  return s.replace(/[&<>"']|[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]/g, (c) =>
    c in ESCAPES ? (ESCAPES[c] as string) : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

const e = escapeHtml;

/** Numbers from a report read back from JSON are not guaranteed to be numbers: escape them too. */
function n(x: number): string {
  return escapeHtml(String(x));
}

const SEVERITIES: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'info'];

/** Class-safe severity: the report may come from a JSON file, so never trust it inside class="". */
function sev(s: string): Severity | 'unknown' {
  return (SEVERITIES as readonly string[]).includes(s) ? (s as Severity) : 'unknown';
}

function sevRank(s: string): number {
  const i = (SEVERITIES as readonly string[]).indexOf(s);
  return i < 0 ? SEVERITIES.length : i;
}

const LEGACY: ReadonlySet<VersionName> = new Set(['SSLv2', 'SSLv3', 'TLSv1.0', 'TLSv1.1']);

const DAY_MS = 24 * 3600 * 1000;

/** "2026-11-22 05:00 UTC" from an ISO string; the raw text if it does not parse. */
function fmtTime(iso: string): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function fmtDate(iso: string): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : new Date(t).toISOString().slice(0, 10);
}

/**
 * Time from `now` to `then` in whole days, rounded towards zero on both sides (35.5 days past is
 * "35 days ago", not 36); null if either date is unparsable.
 */
function dayDistance(now: string, then: string): { past: boolean; days: number } | null {
  const a = Date.parse(now);
  const b = Date.parse(then);
  if (Number.isNaN(a) || Number.isNaN(b)) return null;
  return { past: b < a, days: Math.floor(Math.abs(b - a) / DAY_MS) };
}

function agoText(days: number, unit: string): string {
  return days === 0 ? 'expired today' : `expired ${days}${unit} ago`;
}

function countBySeverity(findings: readonly HtmlFinding[]): Map<Severity | 'unknown', number> {
  const m = new Map<Severity | 'unknown', number>();
  for (const f of findings) m.set(sev(f.severity), (m.get(sev(f.severity)) ?? 0) + 1);
  return m;
}

function severityCounts(findings: readonly HtmlFinding[]): string {
  if (findings.length === 0) return '<span class="muted">none</span>';
  const m = countBySeverity(findings);
  return [...SEVERITIES, 'unknown' as const]
    .filter((s) => m.has(s))
    .map((s) => `<span class="sev sev-${s}" title="${s}">${m.get(s) ?? 0} ${s}</span>`)
    .join(' ');
}

function verdictBadge(ok: boolean, label?: string): string {
  return `<span class="badge ${ok ? 'badge-ok' : 'badge-fail'}">${e(label ?? (ok ? 'compliant' : 'not compliant'))}</span>`;
}

function starttlsState(r: Endpoint): { text: string; cls: 'good' | 'bad' | 'neutral' } {
  const s = r.starttls;
  if (!s) return { text: 'implicit TLS', cls: 'neutral' };
  if (s.refusedReply !== null) return { text: 'refused', cls: 'bad' };
  if (s.stripped) return { text: 'stripped', cls: 'bad' };
  if (!s.advertised) return { text: 'not offered', cls: 'bad' };
  if (s.injectedBytes !== null) return { text: 'offered (injection)', cls: 'bad' };
  return { text: 'offered', cls: 'good' };
}

function protocolRange(r: Endpoint): { best: VersionName | null; worst: VersionName | null } {
  const on = VERSIONS.filter((v) => r.protocols[v]);
  return { best: on[on.length - 1] ?? null, worst: on[0] ?? null };
}

function protoLabel(v: VersionName | null): string {
  if (v === null) return '<span class="muted">—</span>';
  return `<span class="proto ${LEGACY.has(v) ? 'proto-bad' : 'proto-good'}">${v}</span>`;
}

function expiryCell(c: CertificateSummary | null, now: string): string {
  if (!c) return '<span class="muted">no certificate</span>';
  const d = dayDistance(now, c.notAfter);
  const cls = d === null ? '' : d.past ? 'bad' : d.days < 30 ? 'warn' : 'good';
  const rel = d === null ? '' : d.past ? agoText(d.days, ' d') : `${d.days} d left`;
  return `<span class="nowrap ${cls}">${e(fmtDate(c.notAfter))}</span>${rel ? `<div class="small muted nowrap">${rel}</div>` : ''}`;
}

/** Registry facts about a suite, as tags; `weak` means broken regardless of profile. */
function suiteTags(code: string): { tags: Array<{ text: string; cls: 'bad' | 'warn' | 'good' }>; weak: boolean } {
  const n = /^0x[0-9a-f]+$/i.test(code) ? Number.parseInt(code.slice(2), 16) : NaN;
  const s = Number.isNaN(n) ? undefined : suiteByCode(n);
  const tags: Array<{ text: string; cls: 'bad' | 'warn' | 'good' }> = [];
  if (!s) return { tags: [{ text: 'unknown', cls: 'warn' }], weak: false };
  if (s.export) tags.push({ text: 'EXPORT', cls: 'bad' });
  if (s.nullCipher) tags.push({ text: 'NULL', cls: 'bad' });
  if (s.anon) tags.push({ text: 'anonymous', cls: 'bad' });
  if (s.cipherFamily === 'RC4') tags.push({ text: 'RC4', cls: 'bad' });
  if (s.cipherFamily === 'DES' || s.cipherFamily === '3DES') tags.push({ text: s.cipherFamily, cls: 'bad' });
  if (s.mac === 'MD5') tags.push({ text: 'MD5', cls: 'bad' });
  const weak = tags.length > 0;
  if (!s.pfs && !s.anon && !s.nullCipher && s.family !== 'tls13') tags.push({ text: 'no PFS', cls: 'warn' });
  if (s.cbc) tags.push({ text: 'CBC', cls: 'warn' });
  if (s.pfs) tags.push({ text: 'PFS', cls: 'good' });
  if (s.aead) tags.push({ text: 'AEAD', cls: 'good' });
  return { tags, weak };
}

function tag(text: string, cls: string): string {
  return `<span class="tag tag-${cls}">${e(text)}</span>`;
}

function verdictRow(r: Endpoint, i: number, now: string): string {
  const st = starttlsState(r);
  const { best, worst } = protocolRange(r);
  const ok = r.compliant;
  return [
    `<tr class="${ok ? 'row-ok' : 'row-fail'}">`,
    `<td><a href="#ep-${i + 1}">${e(r.url)}</a></td>`,
    `<td class="mono">${e(r.address)}</td>`,
    `<td><span class="${st.cls}">${st.text}</span></td>`,
    `<td class="nowrap">${protoLabel(best)} <span class="muted">/</span> ${protoLabel(worst)}</td>`,
    `<td class="num">${r.ciphers.length}</td>`,
    `<td>${expiryCell(r.certificate, now)}</td>`,
    `<td>${severityCounts(r.findings)}</td>`,
    `<td class="verdict ${ok ? 'verdict-ok' : 'verdict-fail'}">${verdictBadge(ok, ok ? 'compliant' : r.reachable ? 'not compliant' : 'unreachable')}</td>`,
    '</tr>',
  ].join('');
}

function findingsTable(findings: readonly HtmlFinding[]): string {
  if (findings.length === 0) return '<p class="none">No findings.</p>';
  // Most severe first; Array.prototype.sort is stable, so equal severities keep report order.
  const sorted = [...findings].sort((a, b) => sevRank(a.severity) - sevRank(b.severity));
  // The Rule column appears only once profile grading names rules.
  const withRule = findings.some((f) => f.rule);
  const rows = sorted.map((f) => {
    const s = sev(f.severity);
    const evidence =
      f.evidence && f.evidence.length > 0
        ? `<details><summary>Evidence (${f.evidence.length})</summary><pre>${f.evidence.map(e).join('\n')}</pre></details>`
        : '';
    return [
      '<tr>',
      `<td><span class="sev sev-${s}">${e(s === 'unknown' ? f.severity : s)}</span></td>`,
      `<td class="mono">${e(f.id)}</td>`,
      `<td>${e(f.message)}${evidence}</td>`,
      withRule ? `<td class="small">${f.rule ? e(f.rule) : '<span class="muted">—</span>'}</td>` : '',
      '</tr>',
    ].join('');
  });
  return `<table class="findings"><thead><tr><th>Severity</th><th>Finding</th><th>Details</th>${withRule ? '<th>Rule</th>' : ''}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function ciphersBlock(r: Endpoint): string {
  if (r.ciphers.length === 0) return '<p class="none">No cipher suite was accepted.</p>';
  // Suites named in a finding's evidence ("TLSv1.2 0xC013 TLS_…") are flagged by that finding.
  const flagged = new Map<string, string[]>();
  for (const f of r.findings)
    for (const ev of f.evidence ?? []) {
      const m = /^(\S+) (0x[0-9A-Fa-f]+)\b/.exec(ev);
      if (!m) continue;
      const key = `${m[1]} ${(m[2] ?? '').toUpperCase()}`;
      const ids = flagged.get(key) ?? [];
      if (!ids.includes(f.id)) ids.push(f.id);
      flagged.set(key, ids);
    }
  const out: string[] = [];
  for (const v of [...VERSIONS].reverse()) {
    const list = r.ciphers.filter((c) => c.protocol === v);
    if (list.length === 0) continue;
    const pref = r.serverPreference[v];
    const prefText = pref === true ? 'server order' : pref === false ? 'client order' : 'order unknown';
    const rows = list.map((c) => {
      const { tags, weak } = suiteTags(c.code);
      const ids = flagged.get(`${c.protocol} ${c.code.toUpperCase()}`) ?? [];
      const marks = [...tags.map((t) => tag(t.text, t.cls)), ...ids.map((id) => tag(id, 'flag'))].join(' ');
      return `<tr class="${weak ? 'suite-weak' : ids.length ? 'suite-flagged' : ''}"><td class="mono">${e(c.code)}</td><td class="mono">${e(c.name)}</td><td>${marks}</td></tr>`;
    });
    out.push(
      `<h4>${v} <span class="muted small">${list.length} suite${list.length === 1 ? '' : 's'}, ${prefText}</span></h4>`,
      `<table class="suites"><thead><tr><th>Code</th><th>IANA name</th><th>Notes</th></tr></thead><tbody>${rows.join('')}</tbody></table>`,
    );
  }
  return out.join('');
}

function dl(rows: Array<[string, string]>): string {
  return `<dl class="kv">${rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

function yesNo(ok: boolean | null, yes: string, no: string, unknown = 'not checked'): string {
  if (ok === null) return `<span class="muted">${unknown}</span>`;
  return ok ? `<span class="good">${yes}</span>` : `<span class="bad">${no}</span>`;
}

function certificateBlock(c: CertificateSummary | null, chains: number, now: string): string {
  if (!c) return '<p class="none">No certificate was received.</p>';
  const d = dayDistance(now, c.notAfter);
  const notYet = dayDistance(now, c.notBefore)?.past === false;
  const left =
    d === null
      ? ''
      : d.past
        ? ` <span class="bad">${agoText(d.days, ' days')}</span>`
        : notYet
          ? ' <span class="bad">not yet valid</span>'
          : ` <span class="${d.days < 30 ? 'warn' : 'good'}">${d.days} days left</span>`;
  const sans = c.dnsNames.length
    ? `<ul class="names">${c.dnsNames.map((n) => `<li class="mono">${e(n)}</li>`).join('')}</ul>`
    : '<span class="muted">none</span>';
  return dl([
    ['Subject', `<span class="mono">${e(c.subject)}</span>`],
    ['Issuer', `<span class="mono">${e(c.issuer)}</span>`],
    ['Names (SAN)', sans],
    ['Validity', `${e(fmtDate(c.notBefore))} → ${e(fmtDate(c.notAfter))}${left}`],
    ['Key', `${e(c.keyType)} ${n(c.keyBits)} bits`],
    ['Signature', e(c.signatureAlgorithm)],
    [
      'Trust',
      [
        yesNo(c.trusted, 'trusted', 'untrusted'),
        c.selfSigned ? '<span class="bad">self-signed</span>' : '',
        yesNo(c.hostnameMatches, 'name matches', 'name mismatch'),
      ]
        .filter(Boolean)
        .join(' · '),
    ],
    ['SHA-256', `<span class="mono fp">${e(c.sha256)}</span>`],
    ...(chains > 1 ? ([['Chains', `${chains} distinct chains seen`]] as Array<[string, string]>) : []),
  ]);
}

function tlsBlock(r: Endpoint): string {
  const pills = VERSIONS.map((v) => {
    const on = r.protocols[v];
    const cls = !on ? 'pill-off' : LEGACY.has(v) ? 'pill-bad' : 'pill-good';
    return `<span class="pill ${cls}" title="${v} ${on ? 'accepted' : 'not accepted'}">${v}</span>`;
  }).join('');
  const rows: Array<[string, string]> = [];
  const s = r.starttls;
  if (s) {
    const st = starttlsState(r);
    let text = `<span class="${st.cls}">${st.text}</span>`;
    if (s.refusedReply !== null) text += ` <span class="mono">${e(s.refusedReply)}</span>`;
    if (s.injectedBytes !== null)
      text += `<div class="small">plaintext after the go-ahead (discarded): <code>${e(s.injectedBytes)}</code></div>`;
    rows.push(['STARTTLS', text]);
  } else rows.push(['TLS', 'implicit (TLS from the first byte)']);
  rows.push(['Protocols', `<div class="pills">${pills}</div>`]);
  const pref = VERSIONS.filter((v) => r.serverPreference[v] !== undefined && r.serverPreference[v] !== null).map(
    (v) => `${v}: ${r.serverPreference[v] ? 'server order' : 'client order'}`,
  );
  if (pref.length) rows.push(['Suite order', pref.join(', ')]);
  const groups = (list: string[]): string => list.map((g) => `<span class="tag tag-plain">${e(g)}</span>`).join(' ');
  if (r.groups.tls13.length) rows.push(['Groups (1.3)', groups(r.groups.tls13)]);
  if (r.groups.tls12.length) rows.push(['Groups (1.2)', groups(r.groups.tls12)]);
  if (r.dhBits.length) rows.push(['DH parameters', r.dhBits.map((b) => `${n(b)} bits`).join(', ')]);
  rows.push([
    'Negotiated',
    r.negotiated
      ? `<span class="mono">${e(r.negotiated.protocol)} ${e(r.negotiated.cipher)}${r.negotiated.group ? ` · ${e(r.negotiated.group)}` : ''}</span>`
      : '<span class="muted">no TLS session</span>',
  ]);
  return dl(rows);
}

function errorsBlock(r: Endpoint): string {
  if (r.errors.length === 0) return '';
  const rows = r.errors
    .map(
      (x) => `<tr><td class="mono">${e(x.phase)}</td><td class="mono">${e(x.code)}</td><td>${e(x.message)}</td></tr>`,
    )
    .join('');
  return `<h3>Errors <span class="count">${r.errors.length}</span></h3><table class="errors"><thead><tr><th>Phase</th><th>Code</th><th>Message</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function endpointSection(r: Endpoint, i: number, now: string): string {
  const ok = r.compliant;
  return [
    `<section class="endpoint ${ok ? 'ep-ok' : 'ep-fail'}" id="ep-${i + 1}">`,
    '<div class="ep-head">',
    `<h2><span class="ep-num">${i + 1}</span> ${e(r.url)}</h2>`,
    verdictBadge(ok, ok ? 'compliant' : r.reachable ? 'not compliant' : 'unreachable'),
    '</div>',
    `<p class="ep-sub mono">${e(r.service)} · ${e(r.host)} · ${e(r.address)} port ${n(r.port)}</p>`,
    '<div class="cards">',
    `<div class="card"><h3>Transport</h3>${tlsBlock(r)}</div>`,
    `<div class="card"><h3>Certificate</h3>${certificateBlock(r.certificate, r.chains, now)}</div>`,
    '</div>',
    `<h3>Findings <span class="count">${r.findings.length}</span></h3>`,
    findingsTable(r.findings),
    `<h3>Accepted cipher suites <span class="count">${r.ciphers.length}</span></h3>`,
    ciphersBlock(r),
    errorsBlock(r),
    `<p class="stats">${n(r.stats.connections)} connection${r.stats.connections === 1 ? '' : 's'} · ${n(r.stats.durationMs)} ms · <a href="#verdicts">back to summary</a></p>`,
    '</section>',
  ].join('\n');
}

function domainVerdict(d: HtmlDomainReport): { ok: boolean; label: string } {
  return { ok: d.compliant, label: d.compliant ? 'compliant' : 'not compliant' };
}

function domainsSection(domains: readonly HtmlDomainReport[], targets: readonly Endpoint[]): string {
  const rows = domains.map((d) => {
    const v = domainVerdict(d);
    const cls = v.ok ? 'verdict-ok' : 'verdict-fail';
    const badge = verdictBadge(v.ok, v.label);
    const mx = d.mx.length
      ? d.mx.map((m) => `<div class="mono">${e(m)}</div>`).join('')
      : '<span class="muted">none</span>';
    // The weakest MX links to its endpoint section when that endpoint is in this report.
    let weakest = '<span class="muted">—</span>';
    if (d.weakest) {
      const i = targets.findIndex(
        (t) => t.url === d.weakest && (d.weakestAddress == null || t.address === d.weakestAddress),
      );
      const text = `${e(d.weakest)}${d.weakestAddress ? ` <span class="muted">${e(d.weakestAddress)}</span>` : ''}`;
      weakest = i >= 0 ? `<a href="#ep-${i + 1}">${text}</a>` : text;
    }
    const details =
      d.findings.length > 0
        ? `<details><summary>${d.findings.length} finding${d.findings.length === 1 ? '' : 's'}</summary>${findingsTable(d.findings)}</details>`
        : '';
    return `<tr><td class="mono">${e(d.domain)}</td><td>${mx}</td><td class="small">${weakest}</td><td>${severityCounts(d.findings)}${details}</td><td class="verdict ${cls}">${badge}</td></tr>`;
  });
  return [
    '<section class="block">',
    `<h2>Domains <span class="count">${domains.length}</span></h2>`,
    `<div class="scroll"><table id="domains"><thead><tr><th>Domain</th><th>MX</th><th>Weakest MX</th><th>Findings</th><th>Verdict</th></tr></thead><tbody>${rows.join('')}</tbody></table></div>`,
    '</section>',
  ].join('\n');
}

function dnssecBadge(status: string | null): string {
  if (status === null) return '<span class="muted">not looked up</span>';
  const cls = status === 'secure' ? 'good' : status === 'insecure' ? 'muted' : 'bad';
  return `<span class="${cls}">${e(status)}</span>`;
}

const DANE_STATE: Record<string, { text: string; cls: string }> = {
  dane: { text: 'DANE: authenticated TLS required', cls: 'good' },
  'encrypt-only': { text: 'TLS required, no usable record', cls: 'warn' },
  none: { text: 'no DANE', cls: 'muted' },
  failed: { text: 'lookup failed: senders skip or defer', cls: 'bad' },
};

function daneCard(d: NonNullable<HtmlDomainReport['dane']>): string {
  const hosts = d.hosts.map((h) => {
    const st = DANE_STATE[h.state] ?? { text: h.state, cls: 'muted' };
    const records = h.records.length
      ? `<table class="tlsa"><thead><tr><th>TLSA</th><th>Usable</th><th>Matches served</th></tr></thead><tbody>${h.records
          .map(
            (r) =>
              `<tr><td class="mono fp">${e(r.record)}</td><td>${r.usable ? '<span class="good">usable</span>' : `<span class="warn" title="${e(r.unusableReason ?? '')}">unusable</span><div class="small muted">${e(r.unusableReason ?? '')}</div>`}</td><td>${r.matchesServed ? '<span title="matches a certificate the server sent">yes</span>' : '<span class="muted" title="matches no certificate the server sent">no</span>'}</td></tr>`,
          )
          .join('')}</tbody></table>`
      : '<span class="muted">no TLSA records</span>';
    const addrs = h.addresses
      .filter((a) => a.match !== null)
      .map(
        (a) =>
          `<div><span class="mono">${e(a.address)}</span> ${a.match ? `<span class="good">matches</span> <span class="mono small">${e(a.matched ?? '')}</span>` : '<span class="bad">mismatch</span>'}${a.reason ? `<div class="small muted">${e(a.reason)}</div>` : ''}</div>`,
      )
      .join('');
    const rows: Array<[string, string]> = [
      ['TLSA name', `<span class="mono">${e(h.tlsaName)}</span>`],
      ['DNSSEC', `addresses ${dnssecBadge(h.addressStatus)} · TLSA ${dnssecBadge(h.tlsaStatus)}`],
      [
        'Sender',
        `<span class="${st.cls}">${e(st.text)}</span>${h.detail ? `<div class="small">${e(h.detail)}</div>` : ''}`,
      ],
      ['Records', records],
      ...(addrs ? ([['Served chain', addrs]] as Array<[string, string]>) : []),
      ...(h.rollover
        ? ([
            [
              'Rollover',
              `${h.rollover.ready ? `<span class="good">ready (${e(h.rollover.basis ?? '')})</span>` : '<span class="warn">not ready</span>'}<div class="small muted">${e(h.rollover.reason)}</div>`,
            ],
          ] as Array<[string, string]>)
        : []),
    ];
    return `<h4 class="mono">${e(h.mxHost)} <span class="muted small">port ${n(h.port)}</span></h4>${dl(rows)}`;
  });
  const head = `<p class="small">MX RRset ${dnssecBadge(d.mxStatus)}${d.validatingResolver ? '' : ' · <span class="warn">resolver not trusted to validate DNSSEC</span>'}</p>`;
  return `<div class="card"><h3>DANE (RFC 7672)</h3>${head}${hosts.join('')}</div>`;
}

function mtaStsCard(m: NonNullable<HtmlDomainReport['mtaSts']>): string {
  const r = m.record;
  const recText =
    r.found === null
      ? `<span class="bad">lookup failed</span> ${e(r.reason ?? '')}`
      : !r.found
        ? '<span class="muted">no record</span>'
        : r.valid
          ? `<span class="good">valid</span> id <span class="mono">${e(r.id ?? '')}</span>`
          : `<span class="bad">invalid</span>: ${e(r.reason ?? '')}`;
  const rows: Array<[string, string]> = [['Record', `<span class="mono">${e(r.name)}</span> ${recText}`]];
  const p = m.policy;
  if (p) {
    rows.push(['Policy URL', `<span class="mono fp">${e(p.url)}</span>`]);
    if (p.valid) {
      rows.push([
        'Mode',
        `<span class="${p.mode === 'enforce' ? 'good' : 'warn'}">${e(p.mode ?? '')}</span> · max_age ${e(String(p.maxAge ?? ''))} s`,
      ]);
      rows.push([
        'mx patterns',
        p.mx.map((x) => `<div class="mono">${e(x)}</div>`).join('') || '<span class="muted">none</span>',
      ]);
    } else
      rows.push([
        'Policy',
        `<span class="bad">${e(p.resultType ?? 'invalid')}</span><div class="small">${e(p.reason ?? '')}</div>`,
      ]);
  }
  if (p?.valid)
    rows.push([
      'MX hosts',
      m.mx
        .map(
          (h) =>
            `<div><span class="mono">${e(h.host)}</span> ${h.covered ? '<span class="good">covered</span>' : '<span class="bad">not covered</span>'}${h.addresses
              .map(
                (a) =>
                  ` · <span class="mono small">${e(a.address)}</span> ${a.certValid === null ? '<span class="muted">not checked</span>' : a.certValid ? '<span class="good">certificate valid</span>' : `<span class="bad">${e(a.failure ?? 'invalid')}</span>`}`,
              )
              .join('')}</div>`,
        )
        .join(''),
    ]);
  return `<div class="card"><h3>MTA-STS (RFC 8461)</h3>${dl(rows)}</div>`;
}

function tlsRptCard(t: NonNullable<HtmlDomainReport['tlsRpt']>): string {
  const text =
    t.found === null
      ? `<span class="bad">lookup failed</span> ${e(t.reason ?? '')}`
      : !t.found
        ? '<span class="muted">no record</span>'
        : t.valid
          ? `<span class="good">valid</span>${t.rua.map((u) => `<div class="mono fp">${e(u)}</div>`).join('')}`
          : `<span class="bad">invalid</span>: ${e(t.reason ?? '')}`;
  return `<div class="card"><h3>TLS-RPT (RFC 8460)</h3>${dl([['Record', `<span class="mono">${e(t.name)}</span> ${text}`]])}</div>`;
}

/** DANE, MTA-STS and TLS-RPT of one domain, when they were checked. */
function domainPolicySection(d: HtmlDomainReport, i: number): string {
  if (!d.dane && !d.mtaSts && !d.tlsRpt) return '';
  return [
    `<section class="block" id="domain-${i + 1}">`,
    `<h2>Mail policies of <span class="mono">${e(d.domain)}</span></h2>`,
    '<div class="cards">',
    d.dane ? daneCard(d.dane) : '',
    d.mtaSts ? mtaStsCard(d.mtaSts) : '',
    d.tlsRpt ? tlsRptCard(d.tlsRpt) : '',
    '</div>',
    '</section>',
  ].join('\n');
}

const CSS = `
:root{color-scheme:light dark;--bg:#f6f7f9;--fg:#1c2128;--muted:#636c76;--card:#fff;--line:#d8dee4;--head:#eef1f4;
--ok:#1a7f37;--ok-bg:#dafbe1;--fail:#cf222e;--fail-bg:#ffebe9;--warn:#9a6700;--warn-bg:#fff8c5;--accent:#0969da;
--crit:#8b0820;--high:#cf222e;--med:#bc4c00;--low:#9a6700;--info:#57606a;--mono:ui-monospace,"SFMono-Regular","DejaVu Sans Mono",Menlo,Consolas,monospace}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#8d96a0;--card:#161b22;--line:#30363d;--head:#1c2129;
--ok:#3fb950;--fail:#f85149;--ok-bg:#12261e;--fail-bg:#2d1214;--warn:#d29922;--warn-bg:#272115;--accent:#4493f8;--crit:#da3633;--high:#f85149;--med:#f0883e;--low:#d29922;--info:#8d96a0}
}
*{box-sizing:border-box}
html{background:var(--bg)}
body{margin:0 auto;max-width:1200px;padding:28px 32px 48px;color:var(--fg);background:var(--bg);
font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans","Helvetica Neue",Arial,sans-serif}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0}h3{font-size:14px;margin:22px 0 8px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
h4{font-size:13px;margin:14px 0 6px}
.mono,code,pre{font-family:var(--mono);font-size:12.5px}
.muted{color:var(--muted)}.small{font-size:12px}.nowrap{white-space:nowrap}.num{text-align:right;font-variant-numeric:tabular-nums}
.good{color:var(--ok);font-weight:600}.bad{color:var(--fail);font-weight:600}.warn{color:var(--warn);font-weight:600}.neutral{color:var(--fg)}
header.top{display:flex;gap:24px;align-items:flex-start;justify-content:space-between;padding:22px 24px;background:var(--card);
border:1px solid var(--line);border-radius:10px;margin-bottom:20px}
.brand{font-size:12px;letter-spacing:.12em;text-transform:uppercase;color:var(--muted);margin-bottom:2px}
.meta{display:flex;flex-wrap:wrap;gap:4px 22px;margin:10px 0 0;padding:0}
.meta div{display:flex;gap:6px}.meta dt{color:var(--muted)}.meta dd{margin:0;font-weight:600}
.overall{min-width:260px;text-align:center;padding:14px 18px;border-radius:8px;border:1px solid}
.overall.verdict-ok{background:var(--ok-bg);border-color:var(--ok)}.overall.verdict-fail{background:var(--fail-bg);border-color:var(--fail)}
.overall .big{font-size:20px;font-weight:700}.overall.verdict-ok .big{color:var(--ok)}.overall.verdict-fail .big{color:var(--fail)}
.overall .sub{font-size:12.5px;color:var(--muted)}
.block,.endpoint{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 22px;margin-bottom:20px}
.block h2{margin-bottom:12px}
table{border-collapse:collapse;width:100%}.scroll{overflow-x:auto}
th,td{padding:7px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{background:var(--head);font-size:12px;font-weight:600;color:var(--muted);text-transform:uppercase;letter-spacing:.03em;border-bottom:1px solid var(--line)}
tbody tr:last-child td{border-bottom:0}
#verdicts td{vertical-align:middle}#verdicts tbody tr:hover,#domains tbody tr:hover{background:var(--head)}
td.verdict{text-align:center;width:1%;white-space:nowrap}
.badge{display:inline-block;padding:3px 12px;border-radius:999px;font-weight:700;font-size:12.5px;color:#fff;white-space:nowrap}
.badge-ok{background:#1a7f37}.badge-fail{background:#cf222e}.badge-unknown{background:#6e7781}
.sev{display:inline-block;padding:1px 8px;border-radius:4px;font-size:11.5px;font-weight:700;text-transform:uppercase;letter-spacing:.03em;border:1px solid;white-space:nowrap;margin:1px 0}
.sev-critical{color:#fff;background:var(--crit);border-color:var(--crit)}.sev-high{color:var(--high);border-color:var(--high)}
.sev-medium{color:var(--med);border-color:var(--med)}.sev-low{color:var(--low);border-color:var(--low)}
.sev-info,.sev-unknown{color:var(--info);border-color:var(--line)}
.proto{font-family:var(--mono);font-size:12.5px;font-weight:600}.proto-good{color:var(--ok)}.proto-bad{color:var(--fail)}
.ep-head{display:flex;align-items:center;justify-content:space-between;gap:12px}
.ep-num{display:inline-block;min-width:24px;padding:0 6px;margin-right:6px;border-radius:6px;background:var(--head);color:var(--muted);text-align:center;font-size:13px}
.endpoint{border-left:5px solid var(--line)}.ep-ok{border-left-color:#1a7f37}.ep-fail{border-left-color:#cf222e}
.ep-sub{margin:4px 0 0;color:var(--muted)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px;margin-top:16px}
.card{border:1px solid var(--line);border-radius:8px;padding:4px 16px 12px}.card h3{margin-top:12px}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:6px 16px;margin:0}.kv dt{color:var(--muted)}.kv dd{margin:0;min-width:0;overflow-wrap:anywhere}
.names{margin:0;padding:0;list-style:none}.fp{font-size:11.5px;word-break:break-all}
.pills{display:flex;flex-wrap:wrap;gap:4px}
.pill{font-family:var(--mono);font-size:11.5px;padding:0 7px;border-radius:999px;border:1px solid var(--line)}
.pill-good{background:var(--ok-bg);color:var(--ok);border-color:var(--ok);font-weight:700}
.pill-bad{background:var(--fail-bg);color:var(--fail);border-color:var(--fail);font-weight:700}
.pill-off{color:var(--muted);text-decoration:line-through;opacity:.7}
.tag{display:inline-block;font-size:11px;padding:0 6px;border-radius:4px;border:1px solid var(--line);margin:1px 0;white-space:nowrap}
.tag-bad{color:#fff;background:#cf222e;border-color:#cf222e;font-weight:700}.tag-warn{color:var(--warn);background:var(--warn-bg);border-color:var(--warn)}
.tag-good{color:var(--ok);border-color:var(--ok)}.tag-flag{color:var(--fail);border-color:var(--fail);font-family:var(--mono)}.tag-plain{font-family:var(--mono)}
.tlsa td{font-size:12px}.suites{table-layout:fixed}.suites th:first-child{width:90px}.suites th:last-child{width:34%}
.suites tr.suite-weak td{background:var(--fail-bg)}.suites tr.suite-flagged td:first-child{box-shadow:inset 3px 0 var(--fail)}
.count{display:inline-block;min-width:20px;padding:0 7px;border-radius:999px;background:var(--head);color:var(--muted);font-size:12px;text-align:center;letter-spacing:0}
.none{color:var(--muted);margin:4px 0}
details{margin-top:4px}summary{cursor:pointer;color:var(--accent);font-size:12px}
pre{margin:6px 0 0;padding:8px 10px;background:var(--head);border-radius:6px;white-space:pre-wrap;overflow-wrap:anywhere}
.stats{margin:18px 0 0;font-size:12px;color:var(--muted)}
footer{margin-top:28px;font-size:12px;color:var(--muted);text-align:center}
@media print{
:root{--bg:#fff;--card:#fff}
body{max-width:none;padding:0;font-size:11px}
header.top,.block,.endpoint,.card{border-color:#999;box-shadow:none}
.endpoint{break-before:page}.card,tr{break-inside:avoid}
a{color:inherit}.stats a{display:none}
details>summary{display:none}details::details-content{content-visibility:visible;display:contents}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}`;

/** Renders a scan report as one self-contained HTML page (no script, no external resources). */
export function renderHtml(report: ScanReport, opts: RenderHtmlOptions = {}): string {
  const r = report;
  const title = opts.title ?? 'postern TLS scan report';
  const now = r.generatedAt;
  const total = r.targets.length;
  const passing = r.targets.filter((t) => t.compliant).length;
  const failing = total - passing;
  const domains = r.domains ?? [];
  const domainFail = domains.filter((d) => domainVerdict(d).ok === false).length;
  const allOk = failing === 0 && domainFail === 0 && (total > 0 || domains.length > 0);
  const allFindings = [...r.targets.flatMap((t) => t.findings), ...domains.flatMap((d) => d.findings)];
  const overallSub =
    total === 0
      ? 'no endpoints scanned'
      : failing === 0
        ? `all ${total} endpoint${total === 1 ? '' : 's'} pass`
        : `${failing} of ${total} endpoint${total === 1 ? '' : 's'} fail${failing === 1 ? 's' : ''}`;

  const head = [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    '<meta name="referrer" content="no-referrer">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="color-scheme" content="light dark">',
    `<title>${e(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
  ];
  const header = [
    '<header class="top">',
    '<div>',
    '<div class="brand">postern · mail transport security</div>',
    `<h1>${e(title)}</h1>`,
    '<dl class="meta">',
    `<div><dt>Profile</dt><dd>${e(r.profile)}</dd></div>`,
    `<div><dt>Generated</dt><dd>${e(fmtTime(r.generatedAt))}</dd></div>`,
    `<div><dt>Endpoints</dt><dd>${total}</dd></div>`,
    ...(domains.length ? [`<div><dt>Domains</dt><dd>${domains.length}</dd></div>`] : []),
    `<div><dt>Findings</dt><dd>${severityCounts(allFindings)}</dd></div>`,
    '</dl>',
    '</div>',
    `<div class="overall ${allOk ? 'verdict-ok' : 'verdict-fail'}" id="overall">`,
    `<div class="big">${allOk ? 'Compliant' : 'Not compliant'}</div>`,
    `<div class="sub">${overallSub}</div>`,
    ...(domains.length
      ? [`<div class="sub">${domains.length - domainFail} of ${domains.length} domains pass</div>`]
      : []),
    `<div class="sub">under profile ${e(r.profile)}</div>`,
    '</div>',
    '</header>',
  ];
  const summary = [
    '<section class="block">',
    `<h2>Verdicts <span class="count">${total}</span></h2>`,
    '<div class="scroll"><table id="verdicts">',
    '<thead><tr><th>Endpoint</th><th>Address</th><th>STARTTLS</th><th>Best / worst</th><th class="num">Suites</th><th>Cert. expiry</th><th>Findings</th><th>Verdict</th></tr></thead>',
    `<tbody>${r.targets.map((t, i) => verdictRow(t, i, now)).join('\n')}</tbody>`,
    '</table></div>',
    '</section>',
  ];
  const body = [
    ...(domains.length ? [domainsSection(domains, r.targets)] : []),
    ...domains.map((d, i) => domainPolicySection(d, i)).filter(Boolean),
    ...r.targets.map((t, i) => endpointSection(t, i, now)),
  ];
  const footer = [
    `<footer>Generated by ${e(opts.generatedBy ?? 'postern')} · ${e(fmtTime(r.generatedAt))} · JSON schema version ${e(String(r.schemaVersion))}</footer>`,
    '</body>',
    '</html>',
    '',
  ];
  return [...head, ...header, '<main>', ...summary, ...body, '</main>', ...footer].join('\n');
}
