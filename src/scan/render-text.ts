/** Human report: an sslscan-like table per endpoint; colour only on a TTY and never with NO_COLOR. */
import { VERSIONS } from '../tls/wire/constants.ts';
import type { DomainSummary } from './domain.ts';
import type { EndpointReport } from './scan.ts';

export interface Style {
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  bold(s: string): string;
  dim(s: string): string;
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
    }
  }
  const verdict = r.compliant
    ? st.green(r.findings.length ? `compliant (${r.findings.length} low/info finding(s))` : 'compliant, no findings')
    : st.red(`not compliant: ${r.findings.length} finding(s)`);
  lines.push(`  Result       ${verdict} ${st.dim(`(${r.stats.connections} connections, ${r.stats.durationMs} ms)`)}`);
  return lines.join('\n');
}

/** Per-domain summary: the weakest MX decides; inconsistent MX hosts are called out. */
export function renderDomain(d: DomainSummary, st: Style): string {
  const lines = [st.bold(`domain ${d.domain}`) + st.dim(`  MX: ${d.mx.join(', ') || '(none)'}`)];
  for (const f of d.findings) {
    const col =
      f.severity === 'critical' || f.severity === 'high' ? st.red : f.severity === 'info' ? st.dim : st.yellow;
    lines.push(`    ${col(f.severity.toUpperCase().padEnd(8))} ${f.id.padEnd(28)} ${f.message}`);
    for (const e of f.evidence ?? []) lines.push(`             ${st.dim(e)}`);
  }
  const verdict = d.compliant
    ? st.green('compliant')
    : st.red(`not compliant${d.weakest ? ` (weakest: ${d.weakest})` : ''}`);
  lines.push(`  Verdict      ${verdict}`);
  return lines.join('\n');
}
