/** Transport encoding of TLS-RPT reports: gzip body and attachment filename (RFC 8460 §5.3). */
import { gzipSync } from 'node:zlib';
import { PosternError } from '../../core/errors.ts';
import type { TlsRptReport } from './aggregate.ts';

/** The report as gzip-compressed UTF-8 JSON (media type application/tlsrpt+gzip, RFC 8460 §5.3). */
export function gzipReport(report: TlsRptReport): Buffer {
  return gzipSync(Buffer.from(JSON.stringify(report.toJSON()), 'utf8'));
}

// RFC 2045 token: any CHAR except SPACE, CTLs and tspecials. We also refuse "!" (the filename
// field separator), so the name can be split back apart unambiguously.
const TOKEN_RE = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/;
const DOMAIN_RE =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * RFC 8460 §5.3 filename: `receiver "!" policy-domain "!" begin-timestamp "!" end-timestamp
 * ["!" unique-id] ".json.gz"`, timestamps in seconds since the epoch. `receiver` is the domain of
 * the organisation generating the report.
 */
export function reportFilename(report: TlsRptReport, receiver: string, uniqueId?: string): string {
  const recv = receiver.toLowerCase().replace(/\.$/, '');
  if (!DOMAIN_RE.test(recv)) throw new PosternError('tlsrpt-filename', `receiver "${receiver}" is not a domain`);
  if (!DOMAIN_RE.test(report.policyDomain)) {
    throw new PosternError('tlsrpt-filename', `policy domain "${report.policyDomain}" is not a domain`);
  }
  if (uniqueId !== undefined && (!TOKEN_RE.test(uniqueId) || uniqueId.includes('!'))) {
    throw new PosternError('tlsrpt-filename', 'unique-id must be a MIME token without "!"');
  }
  const begin = Math.floor(report.start.getTime() / 1000);
  const end = Math.floor(report.end.getTime() / 1000);
  const parts = [recv, report.policyDomain, String(begin), String(end)];
  if (uniqueId !== undefined) parts.push(uniqueId);
  return `${parts.join('!')}.json.gz`;
}
