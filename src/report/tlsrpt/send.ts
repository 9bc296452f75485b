/**
 * Sending TLS-RPT reports (RFC 8460 §5): the mail form (§5.3, multipart/report; report-type=
 * "tlsrpt" with an application/tlsrpt+gzip part), the HTTPS POST form (§5.4), and the daily job
 * that sends every finished day's reports to the rua URIs of the policy domain's record (§3).
 *
 * Note on sizes: RFC 8460 has no DMARC-style "!size" suffix on rua URIs (its ABNF only says "!"
 * and "," MUST be percent-encoded), so there is no per-URI limit to respect; §5.2's "commonly
 * observed receiver limit is ten megabytes" is met by gzip for any realistic day.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { PosternError } from '../../core/errors.ts';
import { createDnsClient } from '../../dns/resolver.ts';
import type { DnsClient } from '../../dns/resolver.ts';
import { base64Lines, buildMultipart, foldList, mimeField, rfc5322Date } from '../../mime/index.ts';
import { httpsRequest } from '../../net/https.ts';
import { isPublicAddress } from '../../net/address.ts';
import type { TlsRptReport, TlsRptReportOptions } from './aggregate.ts';
import { gzipReport, reportFilename } from './encode.ts';
import { parseTlsRptRecord } from './record.ts';
import type { TlsRptDue, TlsRptStore } from './store.ts';

/** A message ready for the queue: envelope plus the complete RFC 5322 bytes. */
export interface TlsRptMail {
  mailFrom: string;
  recipients: string[];
  raw: Buffer;
}

export interface BuildReportMailOptions {
  /** Envelope sender and From: address. */
  from: string;
  /** Recipient addresses (from the record's mailto: URIs, see {@link mailtoAddress}). */
  to: string[];
  /** The reporting organisation's domain: TLS-Report-Submitter, the Subject and the filename (§5.1, §5.3). */
  submitter: string;
  /** Without angle brackets; default: random `<hex>.tlsrpt@<submitter>`. */
  messageId?: string;
  date?: Date;
  /** Optional §5.1 unique-id for the attachment's filename. */
  uniqueId?: string;
}

// RFC 5322 §3.2.3 atext, and a conservative domain (LDH labels): addresses taken from DNS are
// untrusted, and anything looser could smuggle header syntax (CR, LF, ",", "<") into To:.
const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
const DOT_ATOM_RE = new RegExp(`^${ATEXT}(?:\\.${ATEXT})*$`);
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const DOMAIN_RE = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`);

/** True for `local@domain` with a dot-atom local part and an LDH domain (no quoting, no IP literals). */
export function isPlainAddress(addr: string): boolean {
  if (addr.length > 254) return false;
  const at = addr.lastIndexOf('@');
  if (at <= 0) return false;
  const local = addr.slice(0, at);
  return local.length <= 64 && DOT_ATOM_RE.test(local) && DOMAIN_RE.test(addr.slice(at + 1));
}

/**
 * The address of a `mailto:` rua URI (RFC 6068: percent-decoded path; `?hfields` ignored), or
 * undefined when it is not a single plain address.
 */
export function mailtoAddress(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'mailto:') return undefined;
  let addr: string;
  try {
    addr = decodeURIComponent(url.pathname);
  } catch {
    return undefined;
  }
  return isPlainAddress(addr) ? addr : undefined;
}

/** Control characters (C0, DEL) replaced by spaces, so text cannot break a MIME structure. */
function dropControls(s: string): string {
  return [...s].map((c) => (c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f ? ' ' : c)).join('');
}

/** The §5.3 Report-ID msg-id: stable per report (so receivers can drop duplicates, §5.3). */
function reportMsgId(reportId: string, submitter: string): string {
  const left = DOT_ATOM_RE.test(reportId) ? reportId : createHash('sha256').update(reportId).digest('hex').slice(0, 32);
  return `<${left}@${submitter}>`;
}

/**
 * The report as a complete RFC 5322 message in the RFC 8460 §5.3 form: multipart/report;
 * report-type="tlsrpt", a text/plain part and the gzip report as application/tlsrpt+gzip
 * (base64, filename per §5.1), with the TLS-Report-Domain/-Submitter header fields.
 */
export function buildReportMail(report: TlsRptReport, opts: BuildReportMailOptions): TlsRptMail {
  const submitter = opts.submitter.toLowerCase().replace(/\.$/, '');
  if (!DOMAIN_RE.test(submitter)) {
    throw new PosternError('tlsrpt-mail', `submitter "${opts.submitter}" is not a domain name`);
  }
  if (!isPlainAddress(opts.from)) throw new PosternError('tlsrpt-mail', `from address "${opts.from}" is not usable`);
  if (opts.to.length === 0) throw new PosternError('tlsrpt-mail', 'no recipients');
  for (const a of opts.to) {
    if (!isPlainAddress(a)) throw new PosternError('tlsrpt-mail', `recipient "${a}" is not a plain address`);
  }
  const messageId = opts.messageId ?? `${randomBytes(12).toString('hex')}.tlsrpt@${submitter}`;
  if (!/^[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+$/.test(messageId)) {
    throw new PosternError('tlsrpt-mail', 'messageId must look like id-left@id-right, without angle brackets');
  }
  const filename = reportFilename(report, submitter, opts.uniqueId);
  const gz = gzipReport(report);
  const json = report.toJSON();
  const day = json['date-range']['start-datetime'].slice(0, 10);
  // The human-readable part: only our own ASCII text plus the organisation name, which may be any
  // Unicode; control characters are dropped so it cannot break the part's structure.
  const org = dropControls(json['organization-name']);
  const text =
    `This is an aggregate TLS report (RFC 8460) from ${submitter} about ${report.policyDomain}\r\n` +
    `for the UTC day ${day}.\r\n\r\nOrganization: ${org}\r\nReport-ID: ${dropControls(json['report-id'])}\r\n`;
  const ascii = /^[\x20-\x7e\r\n]*$/.test(text);

  const headers = [
    `From: ${opts.from}`,
    foldList('To', opts.to, ','),
    `Date: ${rfc5322Date(opts.date ?? new Date())}`,
    foldList('Message-ID', [`<${messageId}>`], ''),
    // RFC 8460 §5.3 Subject ABNF: Report Domain: <d> Submitter: <s> Report-ID: <msg-id>.
    foldList(
      'Subject',
      [
        `Report Domain: ${report.policyDomain}`,
        `Submitter: ${submitter}`,
        'Report-ID:',
        reportMsgId(json['report-id'], submitter),
      ],
      '',
    ),
    `TLS-Report-Domain: ${report.policyDomain}`,
    `TLS-Report-Submitter: ${submitter}`,
    // RFC 3834 §5: machine-generated, so no auto-replies.
    'Auto-Submitted: auto-generated',
    // RFC 8460 §3: reports MUST be delivered despite TLS failures; RFC 8689 §5 says so to relays.
    'TLS-Required: No',
    'MIME-Version: 1.0',
  ];
  // "=_" cannot occur in base64 or in our text part, so the boundary never collides (RFC 2046 §5.1.1).
  const mime = buildMultipart(
    [
      {
        headers: ascii
          ? ['Content-Type: text/plain; charset="us-ascii"', 'Content-Transfer-Encoding: 7bit']
          : ['Content-Type: text/plain; charset="utf-8"', 'Content-Transfer-Encoding: base64'],
        body: `${ascii ? text.replace(/\r\n$/, '') : base64Lines(Buffer.from(text, 'utf8'))}\r\n`,
      },
      {
        headers: [
          mimeField('Content-Type', 'application/tlsrpt+gzip', [['name', filename, 'quoted']]),
          'Content-Transfer-Encoding: base64',
          mimeField('Content-Disposition', 'attachment', [['filename', filename, 'quoted']]),
        ],
        body: `${base64Lines(gz)}\r\n`,
      },
    ],
    { preamble: 'This is a multipart message in MIME format.', tag: 'tlsrpt' },
  );
  headers.push(
    mimeField('Content-Type', 'multipart/report', [
      ['report-type', 'tlsrpt', 'quoted'],
      ['boundary', mime.boundary],
    ]),
  );
  const raw = Buffer.concat([Buffer.from(`${headers.join('\r\n')}\r\n\r\n`, 'utf8'), mime.body]);
  return { mailFrom: opts.from, recipients: [...opts.to], raw };
}

// ---- HTTPS POST (RFC 8460 §5.4) --------------------------------------------------------------

export interface PostReportOptions {
  /** Trust anchors (PEM) replacing the default CA bundle (tests, private PKI). */
  ca?: string[];
  /** Whole request deadline, DNS included (default 30000 ms). */
  timeoutMs?: number;
  /**
   * Resolves the rua host; only the addresses it returns (and that pass the check below) are
   * connected to. Default: the system resolver.
   */
  dns?: Pick<DnsClient, 'addresses'>;
  /** Connect to this port instead of the URL's (tests). */
  port?: number;
  /**
   * INSECURE: rua URIs come from the policy domain's DNS, so by default a URI resolving to a
   * loopback, private, link-local or otherwise non-public address is refused (a hostile record
   * must not make the gateway POST into its own network). Tests on loopback set this.
   */
  allowPrivateAddresses?: boolean;
}

export type TlsRptPostResult = { ok: true; status: number } | { ok: false; status?: number; reason: string };

/** True for addresses a report must never be POSTed to by default (see allowPrivateAddresses; net/address.ts). */
export function isNonPublicAddress(address: string): boolean {
  return !isPublicAddress(address);
}

let systemDns: Pick<DnsClient, 'addresses'> | undefined;

/**
 * POST a gzip report to an https rua (RFC 8460 §5.4, media type application/tlsrpt+gzip per
 * §6.4) through net/https.ts. Success is a 2xx answer; redirects are not followed and count as
 * failure, like every other status; the answer's body is not read (only the status matters).
 * Never throws: failures come back as `{ ok: false, reason }`.
 */
export async function postReport(url: string, gz: Buffer, opts: PostReportOptions = {}): Promise<TlsRptPostResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const r = await httpsRequest(url, {
    method: 'POST',
    dns: opts.dns ?? (systemDns ??= createDnsClient({})),
    body: gz,
    headers: { 'content-type': 'application/tlsrpt+gzip', 'user-agent': 'postern-tlsrpt' },
    ...(opts.ca ? { ca: opts.ca } : {}),
    timeoutMs,
    maxBodyBytes: 65_536,
    ...(opts.port === undefined ? {} : { port: opts.port }),
    ...(opts.allowPrivateAddresses === true ? { allowPrivateAddresses: true } : {}),
    readBody: () => false,
  });
  if (!r.ok) return { ok: false, reason: r.kind === 'timeout' ? `timed out after ${timeoutMs} ms` : r.reason };
  const status = r.status;
  if (status >= 200 && status < 300) return { ok: true, status };
  if (status >= 300 && status < 400) return { ok: false, status, reason: `HTTP ${status} redirect (not followed)` };
  return { ok: false, status, reason: `HTTP ${status}` };
}

// ---- the daily job -----------------------------------------------------------------------------

export interface SendDueReportsDeps {
  store: TlsRptStore;
  /** TXT for the record; `addresses`, when present, also resolves https rua hosts (see PostReportOptions.dns). */
  dns: Pick<DnsClient, 'txt'> & Partial<Pick<DnsClient, 'addresses'>>;
  /** Hand a report mail to the gateway's queue (mailto: rua). */
  enqueue(mail: TlsRptMail): Promise<void>;
  /** Defaults to {@link postReport}. */
  post?: typeof postReport;
  postOptions?: PostReportOptions;
  report: TlsRptReportOptions;
  /** Envelope sender / From: of report mail. */
  from: string;
  /** The reporting organisation's domain (§5.3 TLS-Report-Submitter, §5.1 filename). */
  submitter: string;
  now(): Date;
  log?: Logger;
}

export interface SendDueReportsResult {
  /** Reports that reached every usable rua. */
  sent: number;
  /** Reports that failed at least one rua (scheduled for retry, or given up after 24 h). */
  failed: number;
  /** Reports not sent because the domain has no usable TLS-RPT record (final). */
  skipped: number;
}

/** RFC 8460 §5.5: retry for up to 24 hours after the first attempt, with exponential backoff. */
const RETRY_WINDOW_MS = 24 * 3_600_000;
const RETRY_FIRST_MS = 30 * 60_000;
const RETRY_MAX_MS = 6 * 3_600_000;

const running = new WeakMap<TlsRptStore, Promise<SendDueReportsResult>>();

/**
 * Send every due report (finished UTC days not yet sent, and retries whose time has come): look up
 * `_smtp._tls.<policy domain>` (RFC 8460 §3); no record or an invalid one marks the report skipped
 * for good; otherwise mailto: rua get one queued message and https: rua a POST, and the outcome is
 * recorded per URI so a retry only goes to the ones that failed. Finally prunes old days.
 * Concurrent calls for the same store share one run.
 */
export function sendDueReports(deps: SendDueReportsDeps): Promise<SendDueReportsResult> {
  const inFlight = running.get(deps.store);
  if (inFlight) return inFlight;
  const p = runDue(deps).finally(() => running.delete(deps.store));
  running.set(deps.store, p);
  return p;
}

async function runDue(deps: SendDueReportsDeps): Promise<SendDueReportsResult> {
  const result: SendDueReportsResult = { sent: 0, failed: 0, skipped: 0 };
  for (const due of deps.store.pending({ now: deps.now() })) {
    const outcome = await sendOne(deps, due);
    if (outcome === 'sent') result.sent += 1;
    else if (outcome === 'skipped') result.skipped += 1;
    else result.failed += 1;
  }
  const pruned = deps.store.prune();
  if (pruned > 0) deps.log?.info({ event: 'tlsrpt-pruned', days: pruned }, 'pruned old TLS-RPT days');
  return result;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function sendOne(deps: SendDueReportsDeps, due: TlsRptDue): Promise<'sent' | 'skipped' | 'failed'> {
  const { store, log } = deps;
  const ctx = { event: 'tlsrpt-report', policyDomain: due.policyDomain, day: due.day };
  const skip = (reason: string): 'skipped' => {
    store.markSent(due.policyDomain, due.day, { state: 'skipped', reason });
    log?.info({ ...ctx, outcome: 'skipped', reason }, 'TLS-RPT report not sent');
    return 'skipped';
  };
  const delivered = new Set(due.status?.delivered ?? []);
  const fail = (reason: string): 'failed' => {
    const now = deps.now();
    const first = due.status?.firstAttemptAt.getTime() ?? now.getTime();
    const attempts = (due.status?.attempts ?? 0) + 1;
    const delay = Math.min(RETRY_FIRST_MS * 2 ** (attempts - 1), RETRY_MAX_MS);
    const retryAt = new Date(now.getTime() + delay);
    if (retryAt.getTime() - first > RETRY_WINDOW_MS) {
      store.markSent(due.policyDomain, due.day, { state: 'failed', reason, delivered: [...delivered] });
      log?.warn({ ...ctx, outcome: 'failed', reason, attempts }, 'TLS-RPT report given up after 24 hours');
    } else {
      store.markSent(due.policyDomain, due.day, { state: 'retry', reason, retryAt, delivered: [...delivered] });
      log?.warn({ ...ctx, outcome: 'retry', reason, retryAt: retryAt.toISOString() }, 'TLS-RPT report will be retried');
    }
    return 'failed';
  };

  let report: TlsRptReport | undefined;
  try {
    [report] = store.reports({ day: due.day, policyDomain: due.policyDomain, report: deps.report });
  } catch (e) {
    return skip(`cannot build the report: ${errText(e)}`);
  }
  if (!report) return skip('no data');

  let txt: string[][];
  try {
    txt = await deps.dns.txt(`_smtp._tls.${due.policyDomain}`);
  } catch (e) {
    // NXDOMAIN / NODATA are answers: the domain wants no reports. Anything else may pass.
    const temporary = (e as { temporary?: unknown }).temporary;
    if (temporary === false) return skip('no TLS-RPT record');
    return fail(`TLS-RPT record lookup failed: ${errText(e)}`);
  }
  const record = parseTlsRptRecord(txt);
  if (!record.ok) return skip(`TLS-RPT record unusable: ${record.reason}`);

  const mailto: Array<{ uri: string; addr: string }> = [];
  const https: string[] = [];
  const bad: string[] = [];
  for (const rua of record.rua) {
    if (delivered.has(rua.uri) || mailto.some((m) => m.uri === rua.uri) || https.includes(rua.uri)) continue;
    if (rua.kind === 'https') https.push(rua.uri);
    else {
      const addr = mailtoAddress(rua.uri);
      if (addr === undefined) bad.push(rua.uri);
      else mailto.push({ uri: rua.uri, addr });
    }
  }
  if (mailto.length === 0 && https.length === 0 && delivered.size === 0) {
    return skip(`no usable rua (${bad.join(', ')})`);
  }
  for (const uri of bad) log?.info({ ...ctx, rua: uri }, 'TLS-RPT rua ignored: not a plain mail address');

  const errors: string[] = [];
  if (mailto.length > 0) {
    try {
      const mail = buildReportMail(report, {
        from: deps.from,
        to: [...new Set(mailto.map((m) => m.addr))],
        submitter: deps.submitter,
        date: deps.now(),
      });
      await deps.enqueue(mail);
      for (const m of mailto) delivered.add(m.uri);
    } catch (e) {
      errors.push(`mail: ${errText(e)}`);
    }
  }
  if (https.length > 0) {
    const gz = gzipReport(report);
    const post = deps.post ?? postReport;
    // The rua host is resolved by the same DNS client as the record, unless the options say otherwise.
    const addresses = deps.dns.addresses?.bind(deps.dns);
    const postOptions: PostReportOptions = {
      ...(addresses === undefined ? {} : { dns: { addresses } }),
      ...(deps.postOptions ?? {}),
    };
    for (const uri of https) {
      let r: TlsRptPostResult;
      try {
        r = await post(uri, gz, postOptions);
      } catch (e) {
        r = { ok: false, reason: errText(e) };
      }
      if (r.ok) delivered.add(uri);
      else errors.push(`${uri}: ${r.reason}`);
    }
  }
  if (errors.length > 0) return fail(errors.join('; '));
  store.markSent(due.policyDomain, due.day, { state: 'sent', delivered: [...delivered] });
  log?.info({ ...ctx, outcome: 'sent', rua: [...delivered] }, 'TLS-RPT report sent');
  return 'sent';
}
