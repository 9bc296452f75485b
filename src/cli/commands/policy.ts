import { pino } from 'pino';
import { loadEmbeddedConfig } from '../../config/defaults.ts';
import { loadConfig } from '../../config/load.ts';
import { policyCheck } from '../../delivery/deliver.ts';
import { deliveryDeps } from '../../gateway/gateway.ts';

export interface PolicyCliOptions {
  config?: string;
  stateDir: string;
  json?: boolean;
}

/** `postern policy check DOMAIN`: what would happen to mail for DOMAIN now (MX, TLS per host, deciding rule). */
export async function policyCheckCommand(domain: string, opts: PolicyCliOptions): Promise<number> {
  const config = opts.config ? await loadConfig(opts.config) : await loadEmbeddedConfig(opts.stateDir);
  const deps = deliveryDeps(config, { log: pino({ level: 'silent' }) });
  const result = await policyCheck(domain, deps);
  if (opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(`${formatPolicyCheck(result)}\n`);
  return result.verdict.outcome === 'deliver' ? 0 : 1;
}

function formatPolicyCheck(r: Awaited<ReturnType<typeof policyCheck>>): string {
  const lines = [
    `${r.domain}: policy ${r.policy.level}${r.policy.profile ? ` + ${r.policy.profile}` : ''} (${r.policy.matched})`,
  ];
  if (r.mxSecure) lines.push('  MX records DNSSEC-validated (the hosts below are from that answer)');
  for (const m of r.mx) {
    lines.push(
      `  ${m.outcome === 'ok' ? 'ok  ' : 'FAIL'} ${m.host} ${m.address}:${m.port}  ${m.tls ? `${m.tls.protocol} ${m.tls.cipher}` : 'no TLS'}`,
    );
    lines.push(`       rule: ${m.rule}`);
    if (m.outcome !== 'ok') lines.push(`       reason: ${m.reason}`);
  }
  lines.push(
    `verdict: ${r.verdict.outcome}${r.verdict.host ? ` via ${r.verdict.host}` : ''} — ${r.verdict.rule}${r.verdict.outcome === 'deliver' ? '' : `\n  ${r.verdict.reason}`}`,
  );
  return lines.join('\n');
}
