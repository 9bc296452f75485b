/** Human report: an sslscan-like table per endpoint; colour only on a TTY and never with NO_COLOR. */
import { VERSIONS } from '../tls/wire/constants.ts';
import type { DomainSummary, EndpointReport } from './report.ts';

/** Plain functions (not methods): the renderers pick one and call it unbound. */
export interface Style {
  red: (s: string) => string;
  green: (s: string) => string;
  yellow: (s: string) => string;
  bold: (s: string) => string;
  dim: (s: string) => string;
}

export function makeStyle(enabled: boolean): Style {
  const wrap = (code: string) => (s: string) => (enabled ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { red: wrap('31'), green: wrap('32'), yellow: wrap('33'), bold: wrap('1'), dim: wrap('2') };
}

/** Colour is on when stdout is a TTY and NO_COLOR (https://no-color.org) is unset or empty. */
export function colourWanted(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(stream.isTTY) && !env['NO_COLOR'];
}

export function renderEndpoint(r: EndpointReport, st: Style): string {
  const lines: string[] = [];
  lines.push(st.bold(`${r.url}`) + st.dim(` (${r.address})`));
  if (!r.reachable && r.starttls === null) {
    lines.push(`  Status       ${st.red('unreachable')}`);
  } else if (r.starttls) {
    const s = r.starttls;
    const how = s.refusedReply
      ? st.red(`refused: ${s.refusedReply}`)
      : s.stripped
        ? st.red('works but not advertised (stripped)')
        : s.advertised
          ? st.green('offered')
          : st.red('not offered');
    lines.push(`  STARTTLS     ${how}`);
  } else {
    lines.push('  TLS          implicit');
  }
  const protos = VERSIONS.map((v) => {
    const on = r.protocols[v];
    const bad = v === 'SSLv2' || v === 'SSLv3' || v === 'TLSv1.0' || v === 'TLSv1.1';
    return on ? (bad ? st.red(`${v} yes`) : st.green(`${v} yes`)) : st.dim(`${v} no`);
  });
  lines.push(`  Protocols    ${protos.join('  ')}`);
  for (const c of r.ciphers) lines.push(`  Accepted     ${c.protocol.padEnd(8)} ${c.code}  ${c.name}`);
  const pref = Object.entries(r.serverPreference)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `${k} ${v ? 'server' : 'client'}`);
  if (pref.length) lines.push(`  Preference   ${pref.join(', ')}`);
  if (r.groups.tls13.length) lines.push(`  Groups 1.3   ${r.groups.tls13.join(', ')}`);
  if (r.groups.tls12.length) lines.push(`  Groups 1.2   ${r.groups.tls12.join(', ')}`);
  if (r.dhBits.length) lines.push(`  DH params    ${r.dhBits.map((b) => `${b} bits`).join(', ')}`);
  if (r.certificate) {
    const c = r.certificate;
    lines.push(`  Certificate  ${c.subject}`);
    lines.push(`               issuer ${c.issuer}; ${c.keyType}-${c.keyBits}; ${c.signatureAlgorithm}`);
    lines.push(`               valid ${c.notBefore} .. ${c.notAfter}; names: ${c.dnsNames.join(', ') || '(none)'}`);
    lines.push(`               sha256 ${c.sha256}`);
  }
  if (r.negotiated)
    lines.push(
      `  Negotiated   ${r.negotiated.protocol} ${r.negotiated.cipher}${r.negotiated.group ? ` ${r.negotiated.group}` : ''}`,
    );
  if (r.findings.length) {
    lines.push('  Findings');
    for (const f of r.findings) {
      const sev = f.severity.toUpperCase().padEnd(8);
      const col =
        f.severity === 'critical' || f.severity === 'high' ? st.red : f.severity === 'info' ? st.dim : st.yellow;
      lines.push(`    ${col(sev)} ${f.id.padEnd(28)} ${f.message}`);
      const indent = ' '.repeat(42);
      if (f.rule) lines.push(`${indent}${st.dim(`rule: ${f.rule}`)}`);
      if (f.context) lines.push(`${indent}${st.dim(`note: ${f.context}`)}`);
      // A few lines of evidence (all of it is in --json and --html): what was seen, e.g. how slow.
      const ev = f.evidence ?? [];
      for (const x of ev.slice(0, 3)) lines.push(`${indent}${st.dim(safeText(x))}`);
      if (ev.length > 3) lines.push(`${indent}${st.dim(`… ${ev.length - 3} more (see --json)`)}`);
    }
  }
  const verdict = r.compliant
    ? st.green(r.findings.length ? `compliant (${r.findings.length} low/info finding(s))` : 'compliant, no findings')
    : st.red(`not compliant: ${r.findings.length} finding(s)`);
  lines.push(`  Result       ${verdict} ${st.dim(`(${r.stats.connections} connections, ${r.stats.durationMs} ms)`)}`);
  return lines.join('\n');
}

/** Terminal-safe text: control bytes from DNS or HTTP (TXT records, reasons) become visible `\xNN`. */
export function safeText(s: string): string {
  // eslint-disable-next-line no-control-regex -- finding control bytes is the point here
  return s.replace(/[\x00-\x1F\x7F-\x9F]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function cut(s: string, n = 72): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function statusText(status: string | null, st: Style): string {
  if (status === null) return st.dim('not looked up');
  if (status === 'secure') return st.green('secure');
  if (status === 'insecure') return st.dim('insecure');
  return st.red(status);
}

function daneLines(d: NonNullable<DomainSummary['dane']>, st: Style): string[] {
  const lines = [
    `  DANE         MX RRset ${statusText(d.mxStatus, st)}${d.validatingResolver ? '' : st.yellow(' (resolver not trusted to validate: nothing can be secure)')}`,
  ];
  for (const h of d.hosts) {
    const state =
      h.state === 'dane'
        ? st.green('DANE')
        : h.state === 'failed'
          ? st.red('lookup failed: senders skip or defer')
          : h.state === 'encrypt-only'
            ? st.yellow('TLS required, no usable record')
            : st.dim('no DANE');
    lines.push(
      `    ${safeText(h.mxHost)}  ${st.dim(safeText(h.tlsaName))}  addresses ${statusText(h.addressStatus, st)}, TLSA ${statusText(h.tlsaStatus, st)}: ${state}`,
    );
    for (const r of h.records) {
      const tags = [
        r.usable ? 'usable' : st.yellow('unusable'),
        r.matchesServed ? 'matches served chain' : 'matches nothing served',
      ];
      lines.push(`      TLSA ${safeText(cut(r.record))}  ${st.dim(tags.join(', '))}`);
    }
    for (const a of h.addresses) {
      if (a.match === null) continue;
      lines.push(
        `      ${safeText(a.address)}  ${a.match ? st.green(`matches ${safeText(cut(a.matched ?? '', 40))}`) : st.red('MISMATCH')}`,
      );
    }
    if (h.rollover)
      lines.push(
        `      rollover ${h.rollover.ready ? st.green(`ready (${h.rollover.basis ?? ''})`) : st.yellow('not ready')}`,
      );
  }
  return lines;
}

function mtaStsLines(m: NonNullable<DomainSummary['mtaSts']>, st: Style): string[] {
  const rec = m.record;
  const recText =
    rec.found === null
      ? st.red(`lookup failed: ${safeText(rec.reason ?? '')}`)
      : !rec.found
        ? st.dim('no record')
        : rec.valid
          ? `record id=${safeText(rec.id ?? '')}`
          : st.red(`record invalid: ${safeText(rec.reason ?? '')}`);
  const lines = [`  MTA-STS      ${recText}`];
  const p = m.policy;
  if (p) {
    if (p.valid)
      lines.push(
        `    policy     mode ${p.mode === 'enforce' ? st.green('enforce') : st.yellow(p.mode ?? '')}, max_age ${p.maxAge ?? ''}, mx ${safeText(p.mx.join(' ')) || '(none)'}`,
      );
    else lines.push(`    policy     ${st.red(`${p.resultType ?? 'invalid'}: ${safeText(p.reason ?? '')}`)}`);
  }
  if (p?.valid)
    for (const h of m.mx) {
      const cov = h.covered ? st.green('covered') : st.red('not covered');
      const certs = h.addresses.map((a) =>
        a.certValid === null
          ? st.dim(`${a.address} not checked`)
          : a.certValid
            ? `${a.address} ${st.green('certificate valid')}`
            : `${a.address} ${st.red(a.failure ?? 'invalid')}`,
      );
      lines.push(`    ${safeText(h.host)}  ${cov}${certs.length ? `; ${certs.join(', ')}` : ''}`);
    }
  return lines;
}

function tlsRptLines(t: NonNullable<DomainSummary['tlsRpt']>, st: Style): string[] {
  const text =
    t.found === null
      ? st.red(`lookup failed: ${safeText(t.reason ?? '')}`)
      : !t.found
        ? st.dim('no record')
        : t.valid
          ? `reports to ${safeText(t.rua.join(', '))}`
          : st.red(`invalid: ${safeText(t.reason ?? '')}`);
  return [`  TLS-RPT      ${text}`];
}

/** Per-domain summary: the weakest MX decides; inconsistent MX hosts are called out. */
export function renderDomain(d: DomainSummary, st: Style): string {
  const lines = [st.bold(`domain ${d.domain}`) + st.dim(`  MX: ${d.mx.join(', ') || '(none)'}`)];
  if (d.dane) lines.push(...daneLines(d.dane, st));
  if (d.mtaSts) lines.push(...mtaStsLines(d.mtaSts, st));
  if (d.tlsRpt) lines.push(...tlsRptLines(d.tlsRpt, st));
  if (d.findings.length) lines.push('  Findings');
  for (const f of d.findings) {
    const col =
      f.severity === 'critical' || f.severity === 'high' ? st.red : f.severity === 'info' ? st.dim : st.yellow;
    lines.push(`    ${col(f.severity.toUpperCase().padEnd(8))} ${f.id.padEnd(28)} ${safeText(f.message)}`);
    for (const e of f.evidence ?? []) lines.push(`             ${st.dim(safeText(e))}`);
  }
  const verdict = d.compliant
    ? st.green('compliant')
    : st.red(`not compliant${d.weakest ? ` (weakest: ${d.weakest})` : ''}`);
  lines.push(`  Verdict      ${verdict}`);
  return lines.join('\n');
}
