/**
 * The fuzz targets beyond the TLS and DNS wire codecs: every parser that reads bytes a stranger
 * chose (SMTP commands and their parameters, the DATA stream, addresses, the STARTTLS reply
 * reader, DER certificates, MTA-STS records and policies, TLS-RPT records). Each target states
 * what may come out — a result, or the parser's own typed error — and checks invariants that hold
 * for every input; anything else is a defect. Used by test/security/fuzz-*.test.ts and
 * scripts/fuzz.ts.
 */
import { PassThrough } from 'node:stream';
import { WireError } from '../../src/core/errors.ts';
import { comparableAddress, comparableDomain, isPathError, parsePath } from '../../src/gateway/address.ts';
import { MAX_MAX_AGE, STS_MODES, parseStsPolicy } from '../../src/policy/mta-sts/policy.ts';
import { parseStsRecord } from '../../src/policy/mta-sts/record.ts';
import { parseTlsRptRecord } from '../../src/report/tlsrpt/record.ts';
import { parseCommand, splitPathAndParams } from '../../src/smtp/protocol/command.ts';
import { decodeXtext, encodeXtext, parseMailParams, parseRcptParams } from '../../src/smtp/protocol/params.ts';
import { formatError } from '../../src/smtp/protocol/reply.ts';
import type { ReplyError } from '../../src/smtp/protocol/reply.ts';
import { DataReader } from '../../src/smtp/server/data.ts';
import { LineReader, StartTlsError } from '../../src/tls/starttls/reader.ts';
import type { TranscriptLine } from '../../src/tls/starttls/reader.ts';
import {
  children,
  commonNames,
  decodeOid,
  decodeString,
  parseCertificate,
  parseSan,
  readNode,
} from '../../src/tls/cert/der.ts';
import type { DerNode } from '../../src/tls/cert/der.ts';
import { makeCert, makePki } from './certs.ts';
import type { FuzzTarget } from './fuzz.ts';
import { invariant } from './fuzz.ts';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');
const int = (rand: () => number, n: number): number => Math.floor(rand() * n);

/** Random split points: the same bytes as one chunk, single bytes, or anything between. */
function chunks(rand: () => number, input: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const mode = rand();
  for (let off = 0; off < input.length;) {
    const n = mode < 0.2 ? input.length : mode < 0.4 ? 1 : 1 + int(rand, 64);
    out.push(input.subarray(off, off + n));
    off += n;
  }
  return out;
}

/** A reply an SMTP server may send: a code of its class, an RFC 3463 enhanced code, ASCII text. */
function checkReplyError(e: ReplyError, where: string): void {
  invariant(Number.isInteger(e.code) && e.code >= 400 && e.code <= 599, `${where}: reply code ${e.code}`);
  invariant(/^[45]\.\d{1,3}\.\d{1,3}$/.test(e.enhanced), `${where}: enhanced code ${e.enhanced}`);
  // RFC 3463 §2: the enhanced code's class matches the reply's.
  invariant(e.enhanced[0] === String(e.code)[0], `${where}: ${e.code} with ${e.enhanced}`);
  // RFC 5321 §4.2: the reply as sent is one line of printable US-ASCII (textstring), so no echoed
  // client text can start another reply line or smuggle non-ASCII.
  const wire = formatError(e);
  invariant(/^\d{3} [45]\.\d{1,3}\.\d{1,3} [\x20-\x7e]*\r\n$/.test(wire), `${where}: reply ${JSON.stringify(wire)}`);
}

// -- SMTP command line, MAIL/RCPT path split and ESMTP parameters (RFC 5321 §4.1, RFC 1870/3461/6152/6531/8689)

const SMTP_CORPUS = [
  'EHLO client.example',
  'HELO [192.0.2.1]',
  'MAIL FROM:<alice@example.org> SIZE=1000 BODY=8BITMIME SMTPUTF8',
  'MAIL FROM:<> RET=HDRS ENVID=QQ+2B1',
  'MAIL FROM:<"quoted > local"@example.org> REQUIRETLS',
  'RCPT TO:<bob@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+40example.net',
  'RCPT TO:<Postmaster>',
  'RCPT TO:<@relay.example:carol@example.com>',
  'AUTH PLAIN AGFsaWNlAHNlY3JldA==',
  'DATA',
  'BDAT 100 LAST',
  'STARTTLS',
  'VRFY postmaster',
  'NOOP hello',
  'QUIT',
];
const SMTP_DICT = [
  'MAIL FROM:',
  'RCPT TO:',
  '<',
  '>',
  '@',
  '"',
  '\\',
  ' SIZE=',
  ' BODY=BINARYMIME',
  ' NOTIFY=NEVER',
  ' ORCPT=rfc822;',
  ' RET=FULL',
  ' ENVID=',
  '+0D+0A',
  '+00',
  '=',
  '\t',
  ' ',
  'é',
  '\u202e',
];

export const smtpCommand: FuzzTarget = {
  name: 'smtp-command',
  description: 'SMTP command lines → parseCommand, splitPathAndParams, parseMailParams/parseRcptParams, xtext',
  corpus: () => SMTP_CORPUS.map(b),
  dictionary: SMTP_DICT,
  maxInput: 13_000,
  run(input) {
    const parsed = parseCommand(input);
    if ('error' in parsed) {
      checkReplyError(parsed.error, 'parseCommand');
      return 'command-error';
    }
    invariant(/^[A-Z][A-Z0-9-]*$/.test(parsed.verb), `verb ${JSON.stringify(parsed.verb)}`);
    // eslint-disable-next-line no-control-regex -- the check is for control characters
    invariant(!/[\x00-\x08\x0a-\x1f\x7f]/.test(parsed.args), 'control character in args');
    invariant(!/^[ \t]|[ \t]$/.test(parsed.args), 'args not trimmed of spaces and tabs');
    if (parsed.verb !== 'MAIL' && parsed.verb !== 'RCPT') return 'command';
    const split = splitPathAndParams(parsed.args, parsed.verb === 'MAIL' ? 'FROM' : 'TO');
    if ('error' in split) {
      checkReplyError(split.error, 'splitPathAndParams');
      return 'path-syntax-error';
    }
    for (const p of split.params) invariant(p !== '' && !/[ \t]/.test(p), `param ${JSON.stringify(p)}`);
    const params = parsed.verb === 'MAIL' ? parseMailParams(split.params) : parseRcptParams(split.params);
    if ('error' in params) {
      checkReplyError(params.error, 'params');
      return 'param-error';
    }
    if ('orcpt' in params.ok && typeof params.ok.orcpt === 'string') {
      // An ORCPT whose xtext decodes to CR/LF must not be stored (it would reach a DSN's header).
      invariant(!/[\r\n]/.test(params.ok.orcpt), 'ORCPT with CR/LF accepted');
    }
    // xtext round trip (RFC 3461 §4) for the ASCII text of the arguments.
    // eslint-disable-next-line no-control-regex -- ASCII only
    const ascii = parsed.args.replace(/[^\x00-\x7f]/g, '');
    invariant(decodeXtext(encodeXtext(ascii)) === ascii, 'xtext round trip');
    return `${parsed.verb.toLowerCase()}-ok`;
  },
};

// -- The DATA stream (RFC 5321 §4.1.1.4, §4.5.2), checked against a reference reader

/**
 * The reference: the message ends at the first CRLF "." CRLF, counting the start of DATA as a
 * line start; lines are split at CRLF only, and a leading dot is removed from each line.
 */
function referenceData(input: Buffer): {
  done: boolean;
  consumed: number;
  lines: Buffer[];
} {
  const data = Buffer.concat([b('\r\n'), input]);
  const end = data.indexOf('\r\n.\r\n');
  if (end === -1) return { done: false, consumed: input.length, lines: [] };
  const content = data.subarray(2, end + 2);
  const lines: Buffer[] = [];
  for (let at = 0; at < content.length;) {
    const nl = content.indexOf('\r\n', at);
    const line = content.subarray(at, nl);
    lines.push(line[0] === 0x2e ? line.subarray(1) : line);
    at = nl + 2;
  }
  return { done: true, consumed: end + 3, lines };
}

const DATA_CORPUS = [
  'Subject: hi\r\n\r\nbody\r\n.\r\n',
  '.\r\n',
  '..leading dot\r\n.\r\nMAIL FROM:<x@y>\r\n',
  'a\nb\r\n.\n.\r\n.\r\n',
  'line\r\r\n\r.\r\n.\r\n',
  '\x00\r\n.\r\n',
  `${'x'.repeat(1200)}\r\n.\r\n`,
  'no end of data\r\n',
  '\r\n.\r\r\n.\r\n',
];

export const smtpData: FuzzTarget = {
  name: 'smtp-data',
  description: 'the DATA phase byte stream → DataReader, differentially against a reference reader',
  corpus: () => DATA_CORPUS.map((s) => Buffer.from(s, 'latin1')),
  dictionary: ['\r\n', '\r\n.\r\n', '\n.\n', '\r.\r', '\n.\r\n', '.', '..', '\r', '\n', '\x00', '\xff'],
  maxInput: 8192,
  run(input, rand) {
    const limits = { maxSize: 1 + int(rand, 2048), maxLineLength: 1 + int(rand, 1000) };
    const reader = new DataReader(limits);
    let consumed = 0;
    let done = false;
    for (const c of chunks(rand, input)) {
      const r = reader.feed(c);
      invariant(r.consumed >= 0 && r.consumed <= c.length, `consumed ${r.consumed} of ${c.length}`);
      invariant(r.done || r.consumed === c.length, 'not done but did not consume the chunk');
      consumed += r.consumed;
      if (r.done) {
        done = true;
        break;
      }
    }
    const ref = referenceData(input);
    invariant(done === ref.done, `end of data seen: ${done}, reference ${ref.done}`);
    if (!done) return 'incomplete';
    invariant(consumed === ref.consumed, `consumed ${consumed}, reference ${ref.consumed}`);
    const res = reader.result();
    const message = Buffer.concat(ref.lines.flatMap((l) => [l, b('\r\n')]));
    invariant(res.size === message.length, `size ${res.size}, reference ${message.length}`);
    invariant(res.tooBig === message.length > limits.maxSize, 'tooBig');
    // Memory is bounded: nothing beyond the limit is kept.
    if (res.tooBig) invariant(res.message === null, 'a message over the limit was kept');
    else invariant(res.message !== null && res.message.equals(message), 'message bytes differ from the reference');
    invariant(res.lineTooLong === ref.lines.some((l) => l.length > limits.maxLineLength), 'lineTooLong');
    invariant(res.bareLf === ref.lines.some((l) => l.includes(0x0a)), 'bareLf');
    invariant(res.bareCr === ref.lines.some((l) => l.includes(0x0d)), 'bareCr');
    invariant(res.eightBit === ref.lines.some((l) => l.some((x) => x >= 0x80)), 'eightBit');
    return res.tooBig ? 'too-big' : res.bareLf || res.bareCr ? 'bare-cr-lf' : 'message';
  },
};

// -- Addresses (RFC 5321 §4.1.2, RFC 6531 §3.3)

export const address: FuzzTarget = {
  name: 'address',
  description: 'MAIL FROM / RCPT TO paths → parsePath (both kinds, with and without SMTPUTF8), comparable forms',
  corpus: () =>
    [
      '<alice@example.org>',
      '<>',
      '<Postmaster>',
      '<postmaster@example.org>',
      '<"a b\\"c"@example.org>',
      '<@r1.example,@r2.example:u@example.com>',
      '<u@[192.0.2.1]>',
      '<u@[IPv6:2001:db8::1]>',
      '<jörg@bücher.example>',
      '<a.b.c@sub-1.example.co>',
      'alice@example.org',
    ].map(b),
  dictionary: [
    '<',
    '>',
    '@',
    '"',
    '\\',
    '.',
    '..',
    '[',
    ']',
    'IPv6:',
    ':',
    ',',
    '@x.y:',
    'Postmaster',
    'ü',
    '\u202e',
    '\ufeff',
  ],
  maxInput: 600,
  run(input, rand) {
    const text = input.toString(rand() < 0.5 ? 'utf8' : 'latin1');
    const smtputf8 = rand() < 0.5;
    const kind = rand() < 0.5 ? 'reverse' : 'forward';
    const p = parsePath(text, { smtputf8, kind });
    if (isPathError(p)) {
      checkReplyError(p.error, 'parsePath');
      return 'refused';
    }
    invariant(smtputf8 || !p.utf8, 'non-ASCII path accepted without SMTPUTF8');
    // eslint-disable-next-line no-control-regex -- control characters never belong in an address
    invariant(!/[\x00-\x1f\x7f]/.test(p.address), 'control character in an accepted address');
    invariant(Buffer.byteLength(p.address, 'utf8') <= 256, 'address over the RFC 5321 §4.5.3.1.3 limit');
    // The canonical form parses again to itself: the gateway re-parses stored addresses, and a
    // failure there became a 451 with a stack trace ("path did not re-parse").
    const again = parsePath(`<${p.address}>`, { smtputf8: true, kind });
    invariant(!isPathError(again), `canonical ${JSON.stringify(p.address)} does not re-parse`);
    invariant(!isPathError(again) && again.address === p.address, 'canonical form is not stable');
    comparableAddress(p.address);
    comparableDomain(p.domain);
    return p.address === '' ? 'null-path' : p.literal ? 'literal' : p.quoted ? 'quoted' : 'accepted';
  },
};

// -- The STARTTLS dialogue reader (client side: the server's bytes are hostile)

export const starttlsReader: FuzzTarget = {
  name: 'starttls-reader',
  description: 'server bytes in random chunks → LineReader (line and total caps, escaping)',
  corpus: () =>
    [
      '220 mx.example ESMTP\r\n',
      '250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n',
      '* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n',
      '+OK POP3\r\n',
      '220 bare lf\n250 x\n',
      '\x16\x03\x01\x00\x05hello',
      `250 ${'x'.repeat(300)}\r\n`,
    ].map((s) => Buffer.from(s, 'latin1')),
  dictionary: ['\r\n', '\n', '\r', '250-', '250 ', '220 ', '\x00', '\x1b[31m', '\xff'],
  maxInput: 8192,
  async run(input, rand) {
    const socket = new PassThrough();
    const transcript: TranscriptLine[] = [];
    const limits = { maxLine: 64 + int(rand, 256), maxTotal: 256 + int(rand, 4096) };
    const reader = new LineReader(socket, transcript, limits);
    let lines = 0;
    let outcome = 'lines';
    try {
      for (const c of chunks(rand, input)) {
        // 'data' straight to the reader's listener, synchronously: no stream buffering between.
        socket.emit('data', c);
        for (const l of await reader.linesWithin(0)) {
          lines++;
          // Escaped for the transcript and reports: no raw control characters survive.
          // eslint-disable-next-line no-control-regex -- the check is for control characters
          invariant(!/[\x00-\x1f\x7f]/.test(l), `unescaped control character in ${JSON.stringify(l)}`);
        }
      }
    } catch (e) {
      if (!(e instanceof StartTlsError)) throw e;
      invariant(e.code === 'reply-too-long', `unexpected StartTlsError ${e.code}`);
      outcome = 'too-long';
    } finally {
      reader.detach();
      socket.destroy();
    }
    // Every line returned was transcribed (a line cap hit drops the lines of that call, not the
    // transcript's record of them).
    invariant(transcript.length >= lines, 'a returned line is missing from the transcript');
    invariant(outcome === 'too-long' || input.length <= limits.maxTotal, 'more than maxTotal accepted');
    return outcome;
  },
};

// -- DER (X.690) as postern reads certificates itself

function walk(node: DerNode, depth: number, visit: (n: DerNode) => void): void {
  visit(node);
  // Constructed (bit 6) elements only; depth-capped so a pathological nest stays bounded.
  if ((node.tag & 0x20) !== 0 && depth < 64) for (const c of children(node)) walk(c, depth + 1, visit);
}

export const der: FuzzTarget = {
  name: 'der',
  description: 'certificate DER → readNode/children/decodeOid/decodeString/parseCertificate/parseSan/commonNames',
  async corpus() {
    const pki = await makePki({ subject: 'CN=mx.example.test', dnsNames: ['mx.example.test', '*.example.test'] });
    const ip = await makeCert({ subject: 'CN=ip, O=Org', ipAddresses: ['192.0.2.1', '2001:db8::1'], key: 'rsa-2048' });
    return [pki.leaf.der, pki.intermediate.der, pki.root.der, ip.der];
  },
  dictionary: ['\x30\x82', '\x30\x80', '\x06\x03\x55\x04\x03', '\x84\xff\xff\xff\xff', '\x1f', '\x1e\x00', '\xa3'],
  maxInput: 4096,
  run(input) {
    let outcome = 'certificate';
    try {
      const root = readNode(input, 0);
      invariant(root.end <= input.length, 'element end beyond the buffer');
      let nodes = 0;
      walk(root, 0, (n) => {
        nodes++;
        if (n.tag === 0x06 && n.value.length > 0) decodeOid(n.value);
        if ([0x0c, 0x13, 0x14, 0x16, 0x1c, 0x1e].includes(n.tag)) decodeString(n);
      });
      invariant(nodes <= input.length, 'more elements than bytes');
      const cert = parseCertificate(input);
      commonNames(cert.subject);
      const san = cert.extensions.get('2.5.29.17');
      if (san !== undefined) {
        const names = parseSan(san);
        for (const a of names.ipAddresses) invariant(/^[0-9a-f.:]+$/.test(a), `IP ${a}`);
      }
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      invariant(e.code.startsWith('der-'), `WireError ${e.code} from the DER reader`);
      outcome = e.code;
    }
    return outcome;
  },
};

// -- DNS TXT records: one record per line, character-strings separated by NUL

function txtRecords(input: Buffer, rand: () => number): string[][] {
  const text = input.toString(rand() < 0.7 ? 'utf8' : 'latin1');
  return text.split('\n').map((r) => r.split('\x00'));
}

export const stsRecord: FuzzTarget = {
  name: 'mta-sts-record',
  description: '_mta-sts TXT RRsets → parseStsRecord (RFC 8461 §3.1)',
  corpus: () =>
    [
      'v=STSv1; id=20240101T000000;',
      'v=STSv1;id=abc',
      'v=STSv1; id=1\nv=STSv1; id=2',
      'v=spf1 -all\nv=STSv1; id=x\x00yz;',
      'v=STSv1; id=; ext=1',
    ].map(b),
  dictionary: ['v=STSv1', ';', ' ', 'id=', '=', '\t', '\x00', '\n'],
  maxInput: 2048,
  run(input, rand) {
    const r = parseStsRecord(txtRecords(input, rand));
    if (!r.ok) {
      invariant(typeof r.reason === 'string' && r.reason !== '', 'a refusal names its reason');
      return r.absent === true ? 'absent' : 'invalid';
    }
    // RFC 8461 §3.1: sts-id = 1*32(ALPHA / DIGIT).
    invariant(/^[A-Za-z0-9]{1,32}$/.test(r.id), `id ${JSON.stringify(r.id)}`);
    return 'ok';
  },
};

export const stsPolicy: FuzzTarget = {
  name: 'mta-sts-policy',
  description: 'policy file bodies → parseStsPolicy (RFC 8461 §3.2)',
  corpus: () =>
    [
      'version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n',
      'version: STSv1\nmode: testing\nmx: mx.example.org\nmax_age: 86400\n',
      'version: STSv1\nmode: none\nmax_age: 0\n',
      'version: STSv1\nmode: enforce\nmx: a\nmax_age: 31557601\n',
      'mode: enforce\nversion: STSv1\nmx: *.*.example\nmax_age: 1\nextension: x\n',
    ].map(b),
  dictionary: [
    'version: STSv1',
    'mode: ',
    'enforce',
    'testing',
    'none',
    'mx: ',
    '*.',
    'max_age: ',
    '\r\n',
    '\n',
    ':',
    ' ',
  ],
  maxInput: 70_000,
  run(input) {
    const r = parseStsPolicy(input.toString('utf8'));
    if (!r.ok) {
      invariant(typeof r.reason === 'string' && r.reason !== '', 'a refusal names its reason');
      return 'invalid';
    }
    const p = r.policy;
    invariant((STS_MODES as readonly string[]).includes(p.mode), `mode ${p.mode}`);
    invariant(Number.isSafeInteger(p.maxAge) && p.maxAge >= 0 && p.maxAge <= MAX_MAX_AGE, `max_age ${p.maxAge}`);
    invariant(p.mode === 'none' || p.mx.length > 0, 'enforce/testing without any mx');
    for (const mx of p.mx) invariant(mx !== '' && !/[\s:]/.test(mx), `mx ${JSON.stringify(mx)}`);
    return `ok-${p.mode}`;
  },
};

export const tlsrptRecord: FuzzTarget = {
  name: 'tlsrpt-record',
  description: '_smtp._tls TXT RRsets → parseTlsRptRecord (RFC 8460 §3)',
  corpus: () =>
    [
      'v=TLSRPTv1; rua=mailto:tlsrpt@example.com',
      'v=TLSRPTv1;rua=https://rpt.example.com/v1,mailto:a@b.example',
      'v=TLSRPTv1; rua=mailto:a@b\x00.example; ext=1',
      'v=TLSRPTv1; rua=ftp://x\nv=TLSRPTv1; rua=mailto:a@b',
    ].map(b),
  dictionary: ['v=TLSRPTv1', ';', 'rua=', 'mailto:', 'https://', ',', '%2C', '!', '\x00', '\n'],
  maxInput: 2048,
  run(input, rand) {
    const r = parseTlsRptRecord(txtRecords(input, rand));
    if (!r.ok) {
      invariant(typeof r.reason === 'string' && r.reason !== '', 'a refusal names its reason');
      return 'invalid';
    }
    invariant(r.rua.length > 0, 'ok without any rua');
    return 'ok';
  },
};

/** Every target, by name (scripts/fuzz.ts). */
export const FUZZ_TARGETS: readonly FuzzTarget[] = [
  smtpCommand,
  smtpData,
  address,
  starttlsReader,
  der,
  stsRecord,
  stsPolicy,
  tlsrptRecord,
];
