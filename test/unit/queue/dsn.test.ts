import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildDsn, planDsn, quotedPrintable, returnContent, wantsDsn, type DsnInput } from '../../../src/queue/dsn.ts';
import type { Envelope, RecipientDsn } from '../../../src/queue/types.ts';

// --- a small, strict MIME reader written for these tests (no mail parser dependency) ---------------

interface Part {
  headers: Map<string, string>; // lower-case name -> unfolded value (first occurrence)
  rawHeaders: string;
  body: string;
}

function parsePart(raw: string): Part {
  const end = raw.indexOf('\r\n\r\n');
  const rawHeaders = end < 0 ? raw : raw.slice(0, end);
  const body = end < 0 ? '' : raw.slice(end + 4);
  const headers = new Map<string, string>();
  for (const field of rawHeaders.split(/\r\n(?![ \t])/)) {
    const i = field.indexOf(':');
    assert.ok(i > 0, `malformed header line: ${JSON.stringify(field)}`);
    const name = field.slice(0, i).toLowerCase();
    if (!headers.has(name))
      headers.set(
        name,
        field
          .slice(i + 1)
          .replace(/\r\n[ \t]/g, ' ')
          .trim(),
      );
  }
  return { headers, rawHeaders, body };
}

function param(value: string, name: string): string | null {
  const m = new RegExp(`;\\s*${name}="?([^";]+)"?`, 'i').exec(value);
  return m ? m[1]! : null;
}

function parseDsn(msg: Buffer): { top: Part; parts: Part[]; boundary: string } {
  const s = msg.toString('utf8');
  const top = parsePart(s);
  const ct = top.headers.get('content-type') ?? '';
  assert.match(ct, /^multipart\/report;/);
  assert.equal(param(ct, 'report-type'), 'delivery-status');
  const boundary = param(ct, 'boundary');
  assert.ok(boundary);
  const delim = `\r\n--${boundary}`;
  const segments = ('\r\n' + top.body).split(delim);
  const last = segments.pop()!;
  assert.ok(last.startsWith('--'), 'close delimiter present');
  const parts = segments.slice(1).map((seg) => {
    assert.ok(seg.startsWith('\r\n'), 'a delimiter line ends with CRLF');
    return parsePart(seg.slice(2));
  });
  return { top, parts, boundary };
}

/** message/delivery-status body -> groups of fields (RFC 3464 §2.1: blank-line separated). */
function statusGroups(body: string): Array<Map<string, string>> {
  return body
    .replace(/\r\n$/, '')
    .split('\r\n\r\n')
    .map((g) => parsePart(g + '\r\n\r\n').headers);
}

function decodeQp(s: string): string {
  const bytes: number[] = [];
  const text = s.replace(/=\r\n/g, '');
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '=') {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(text.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

function assertWellFormed(msg: Buffer): void {
  const s = msg.toString('latin1');
  assert.doesNotMatch(s, /[^\r]\n/, 'no bare LF');
  assert.doesNotMatch(s, /\r[^\n]/, 'no bare CR');
  for (const line of s.split('\r\n')) assert.ok(line.length <= 998, `line of ${line.length} octets`);
  const head = s.slice(0, s.indexOf('\r\n\r\n'));
  assert.doesNotMatch(head, /[^\x20-\x7e\r\n\t]/, 'top-level headers are 7-bit');
}

// --- fixtures -------------------------------------------------------------------------------------

const ORIGINAL = Buffer.from(
  'Message-ID: <orig-1@example.com>\r\nFrom: Alice <alice@example.com>\r\nTo: bob@example.org\r\n' +
    'Subject: quarterly numbers\r\n\r\nSECRET BODY LINE\r\n',
);

function envelope(
  notify: RecipientDsn['notify'] = null,
  extra: Partial<Envelope> = {},
  rcpts = ['bob@example.org', 'carol@example.org'],
): Envelope {
  return {
    mailFrom: 'alice@example.com',
    recipients: rcpts.map((address, i) => ({
      address,
      dsn: { notify, orcpt: i === 0 ? `rfc822;${address.toUpperCase()}` : null },
    })),
    size: null,
    body: '7BIT',
    smtputf8: false,
    requireTls: false,
    dsnRet: null,
    dsnEnvid: 'ENV-42',
    arrival: {
      listener: 'submission',
      clientAddress: '127.0.0.1',
      clientHelo: 'client.test',
      authUser: 'alice',
      tls: null,
      receivedAt: '2025-07-01T10:00:00.000Z',
    },
    ...extra,
  };
}

const TLS_REASON =
  'The receiving server mx.example.org offered TLS 1.0 only; your policy for example.org requires BSI TR-02102-2.';

function input(over: Partial<DsnInput> = {}): DsnInput {
  return {
    reportingMta: 'gw.postern.test',
    envelope: envelope(),
    originalMessage: ORIGINAL,
    action: 'failed',
    now: new Date('2025-07-02T10:00:00.000Z'),
    messageId: 'dsn-1@gw.postern.test',
    queueId: '01jz2pvp80dcy0sqap31',
    recipients: [
      {
        address: 'bob@example.org',
        status: '5.7.10',
        diagnostic: 'smtp; 554 5.7.10 TLS policy not met',
        remoteMta: 'mx.example.org',
        reason: TLS_REASON,
        lastAttempt: new Date('2025-07-02T09:59:00.000Z'),
      },
      {
        address: 'carol@example.org',
        status: '5.1.1',
        diagnostic: '550 5.1.1 no such user',
        remoteMta: 'mx.example.org',
        reason: 'The receiving server says there is no mailbox carol@example.org.',
        lastAttempt: new Date('2025-07-02T09:59:30.000Z'),
      },
    ],
    ...over,
  };
}

describe('buildDsn: RFC 3464 / RFC 6522 structure', () => {
  it('is a multipart/report with notification, delivery-status and the returned message', () => {
    const msg = buildDsn(input());
    assertWellFormed(msg);
    const { top, parts } = parseDsn(msg);
    assert.equal(top.headers.get('from'), 'Mail Delivery System <MAILER-DAEMON@gw.postern.test>');
    assert.equal(top.headers.get('to'), '<alice@example.com>');
    assert.equal(top.headers.get('auto-submitted'), 'auto-replied');
    assert.equal(top.headers.get('mime-version'), '1.0');
    assert.equal(top.headers.get('message-id'), '<dsn-1@gw.postern.test>');
    assert.equal(top.headers.get('in-reply-to'), '<orig-1@example.com>');
    assert.equal(top.headers.get('date'), 'Wed, 02 Jul 2025 10:00:00 +0000');
    assert.equal(parts.length, 3);
    assert.match(parts[0]!.headers.get('content-type')!, /^text\/plain; charset=us-ascii$/);
    assert.equal(parts[1]!.headers.get('content-type'), 'message/delivery-status');
    assert.equal(parts[2]!.headers.get('content-type'), 'message/rfc822');
    // The whole original comes back (RET not given, small message).
    assert.equal(parts[2]!.body, ORIGINAL.toString());
  });

  it('names every RFC 3464 field exactly, per message and per recipient', () => {
    const { parts } = parseDsn(buildDsn(input()));
    const [perMessage, bob, carol, ...rest] = statusGroups(parts[1]!.body);
    assert.equal(rest.length, 0);
    assert.deepEqual(
      [...perMessage!.entries()],
      [
        ['original-envelope-id', 'ENV-42'],
        ['reporting-mta', 'dns; gw.postern.test'],
        ['arrival-date', 'Tue, 01 Jul 2025 10:00:00 +0000'],
      ],
    );
    assert.deepEqual(
      [...bob!.entries()],
      [
        ['original-recipient', 'rfc822; BOB@EXAMPLE.ORG'],
        ['final-recipient', 'rfc822; bob@example.org'],
        ['action', 'failed'],
        ['status', '5.7.10'],
        ['remote-mta', 'dns; mx.example.org'],
        ['diagnostic-code', 'smtp; 554 5.7.10 TLS policy not met'],
        ['last-attempt-date', 'Wed, 02 Jul 2025 09:59:00 +0000'],
      ],
    );
    // No ORCPT: no Original-Recipient; a diagnostic without a type gets "smtp;".
    assert.equal(carol!.has('original-recipient'), false);
    assert.equal(carol!.get('diagnostic-code'), 'smtp; 550 5.1.1 no such user');
    // Field names are written as the RFC spells them.
    assert.match(parts[1]!.body, /^Reporting-MTA: /m);
    assert.match(parts[1]!.body, /^Final-Recipient: /m);
    assert.match(parts[1]!.body, /^Last-Attempt-Date: /m);
  });

  it('omits Original-Envelope-Id without ENVID', () => {
    const { parts } = parseDsn(buildDsn(input({ envelope: envelope(null, { dsnEnvid: null }) })));
    assert.equal(statusGroups(parts[1]!.body)[0]!.has('original-envelope-id'), false);
  });

  it('says in plain words why, per recipient', () => {
    const { parts } = parseDsn(buildDsn(input()));
    const text = parts[0]!.body.replace(/\r\n\s+/g, ' ');
    assert.ok(text.includes(`<bob@example.org>: ${TLS_REASON}`), text);
    assert.ok(text.includes('no mailbox carol@example.org'));
    assert.ok(text.includes('could not be delivered'));
    assert.ok(text.includes('01jz2pvp80dcy0sqap31'));
  });

  it('encodes a non-ASCII explanation as UTF-8 quoted-printable', () => {
    const reason = 'Der Server mx.example.org bot nur TLS 1.0 an – Ihre Richtlinie verlangt BSI TR-02102-2.';
    const r = input().recipients[0]!;
    const msg = buildDsn(input({ recipients: [{ ...r, reason }] }));
    assertWellFormed(msg);
    const { parts } = parseDsn(msg);
    assert.equal(parts[0]!.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(parts[0]!.headers.get('content-transfer-encoding'), 'quoted-printable');
    assert.doesNotMatch(parts[0]!.body, /[^\t\r\n\x20-\x7e]/);
    for (const line of parts[0]!.body.split('\r\n')) assert.ok(line.length <= 76, line);
    assert.ok(
      decodeQp(parts[0]!.body)
        .replace(/\r\n\s+/g, ' ')
        .includes(reason),
    );
  });
});

describe('buildDsn: what is returned (RFC 3461 §4.3)', () => {
  it('RET=HDRS returns only the headers, as text/rfc822-headers', () => {
    const { parts } = parseDsn(buildDsn(input({ envelope: envelope(null, { dsnRet: 'HDRS' }) })));
    assert.equal(parts[2]!.headers.get('content-type'), 'text/rfc822-headers');
    assert.ok(parts[2]!.body.includes('Subject: quarterly numbers'));
    assert.ok(!parts[2]!.body.includes('SECRET BODY LINE'));
  });

  it('a message over the size cap comes back as headers only, and the text says so', () => {
    const big = Buffer.concat([ORIGINAL, Buffer.from('y'.repeat(900) + '\r\n')]);
    const { parts } = parseDsn(buildDsn(input({ originalMessage: big, maxOriginalBytes: 500 })));
    assert.equal(parts[2]!.headers.get('content-type'), 'text/rfc822-headers');
    assert.ok(!parts[2]!.body.includes('SECRET'));
    assert.match(parts[0]!.body.replace(/\r\n/g, ' '), /too large to return in full/);
  });

  it('a message that is not safe to embed (bare LF, long line) comes back as headers only', () => {
    for (const body of ['bare\nLF\r\n', 'z'.repeat(1200) + '\r\n']) {
      const msg = buildDsn(input({ originalMessage: Buffer.concat([ORIGINAL, Buffer.from(body)]) }));
      assertWellFormed(msg);
      assert.equal(parseDsn(msg).parts[2]!.headers.get('content-type'), 'text/rfc822-headers');
    }
  });

  it('8-bit content is declared 8bit and makes the DSN envelope 8BITMIME', () => {
    const orig = Buffer.concat([ORIGINAL, Buffer.from('Grüße\r\n', 'utf8')]);
    const plan = planDsn(input({ originalMessage: orig, envelope: envelope(null, { body: '8BITMIME' }) }));
    assert.ok(plan.send);
    const { parts } = parseDsn(plan.message);
    assert.equal(parts[2]!.headers.get('content-transfer-encoding'), '8bit');
    assert.equal(plan.envelope.body, '8BITMIME');
  });

  it('a delay warning carries Action delayed, a 4.x.x status, Will-Retry-Until and headers only', () => {
    const r = input().recipients[0]!;
    const { parts } = parseDsn(
      buildDsn(
        input({
          action: 'delayed',
          recipients: [
            {
              ...r,
              status: '4.7.5',
              diagnostic: 'smtp; 451 4.7.5 try later',
              willRetryUntil: new Date('2025-07-06T10:00:00.000Z'),
            },
          ],
        }),
      ),
    );
    const [, g] = statusGroups(parts[1]!.body);
    assert.equal(g!.get('action'), 'delayed');
    assert.equal(g!.get('status'), '4.7.5');
    assert.equal(g!.get('will-retry-until'), 'Sun, 06 Jul 2025 10:00:00 +0000');
    assert.equal(parts[2]!.headers.get('content-type'), 'text/rfc822-headers');
    assert.match(parts[0]!.body.replace(/\r\n/g, ' '), /not been delivered .* yet/);
  });

  it('keeps the Status class consistent with the Action', () => {
    const r = input().recipients[0]!;
    const groups = statusGroups(
      parseDsn(
        buildDsn(
          input({
            recipients: [
              { ...r, status: '2.0.0' },
              { ...r, status: '4.4.7' },
            ],
          }),
        ),
      ).parts[1]!.body,
    );
    assert.equal(groups[1]!.get('status'), '5.0.0');
    assert.equal(groups[2]!.get('status'), '4.4.7'); // failed after expiry keeps its 4.x.x (as Postfix does)
  });
});

describe('buildDsn: hostile or odd input', () => {
  it('a peer reply with CR/LF cannot inject header lines or fields', () => {
    const r = input().recipients[0]!;
    const msg = buildDsn(
      input({
        recipients: [
          { ...r, diagnostic: 'smtp; 550 no\r\nX-Injected: 1\r\n\r\nAction: delivered', reason: 'bad\r\nBcc: x@y' },
        ],
      }),
    );
    assertWellFormed(msg);
    const { parts } = parseDsn(msg);
    assert.doesNotMatch(msg.toString(), /^X-Injected:/m);
    assert.doesNotMatch(msg.toString(), /^Bcc:/m);
    const groups = statusGroups(parts[1]!.body);
    assert.equal(groups.length, 2);
    assert.equal(groups[1]!.get('action'), 'failed');
  });

  it('folds a very long diagnostic and keeps every line within 998 octets', () => {
    const r = input().recipients[0]!;
    const msg = buildDsn(input({ recipients: [{ ...r, diagnostic: 'smtp; 550 ' + 'A'.repeat(3000) + ' end' }] }));
    assertWellFormed(msg);
    const [, g] = statusGroups(parseDsn(msg).parts[1]!.body);
    assert.equal(g!.get('diagnostic-code')!.replace(/\s/g, ''), 'smtp;550' + 'A'.repeat(3000) + 'end');
  });

  it('writes a non-ASCII recipient as an RFC 6533 utf-8 address, still 7-bit', () => {
    const env = envelope(null, { smtputf8: true }, ['jürgen@example.de']);
    const r = input().recipients[0]!;
    const { parts } = parseDsn(
      buildDsn(input({ envelope: env, recipients: [{ ...r, address: 'jürgen@example.de' }] })),
    );
    const [, g] = statusGroups(parts[1]!.body);
    assert.equal(g!.get('final-recipient'), 'utf-8; j\\x{FC}rgen@example.de');
    assert.doesNotMatch(parts[1]!.body, /[^\t\r\n\x20-\x7e]/);
  });

  it('refuses to build a DSN for the null sender or for nobody', () => {
    assert.throws(() => buildDsn(input({ envelope: envelope(null, { mailFrom: '' }) })), { code: 'dsn-invalid' });
    assert.throws(() => buildDsn(input({ recipients: [] })), { code: 'dsn-invalid' });
  });
});

describe('planDsn: NOTIFY, null sender, envelope', () => {
  it('sends from <> to the envelope sender with NOTIFY=NEVER', () => {
    const plan = planDsn(input());
    assert.ok(plan.send);
    assert.equal(plan.envelope.mailFrom, '');
    assert.deepEqual(plan.envelope.recipients, [
      { address: 'alice@example.com', dsn: { notify: 'NEVER', orcpt: null } },
    ]);
    assert.equal(plan.envelope.size, plan.message.length);
    assert.equal(plan.envelope.body, '7BIT');
    assert.deepEqual(plan.recipients, ['bob@example.org', 'carol@example.org']);
  });

  it('drops a bounce of a bounce (null sender)', () => {
    const plan = planDsn(input({ envelope: envelope(null, { mailFrom: '' }) }));
    assert.deepEqual(plan, { send: false, why: 'null-sender', recipients: ['bob@example.org', 'carol@example.org'] });
  });

  it('NOTIFY=NEVER: no DSN at all', () => {
    for (const action of ['failed', 'delayed', 'delivered'] as const) {
      const plan = planDsn(input({ envelope: envelope('NEVER'), action }));
      assert.equal(plan.send, false);
      assert.equal(!plan.send && plan.why, 'not-requested');
    }
  });

  it('NOTIFY without FAILURE: no failure DSN; without DELAY: no delay DSN', () => {
    assert.equal(planDsn(input({ envelope: envelope(['SUCCESS']) })).send, false);
    assert.equal(planDsn(input({ envelope: envelope(['FAILURE']), action: 'delayed' })).send, false);
    assert.equal(planDsn(input({ envelope: envelope(['DELAY']), action: 'delayed' })).send, true);
  });

  it('default NOTIFY (none given) is FAILURE,DELAY: failures and delays, no success reports', () => {
    assert.equal(wantsDsn(null, 'failed'), true);
    assert.equal(wantsDsn(null, 'delayed'), true);
    assert.equal(wantsDsn(null, 'delivered'), false);
    assert.equal(wantsDsn(['SUCCESS'], 'delivered'), true);
    assert.equal(wantsDsn(['SUCCESS'], 'relayed'), true);
  });

  it('reports only the recipients that asked', () => {
    const env = envelope(null);
    env.recipients[1]!.dsn.notify = 'NEVER';
    const plan = planDsn(input({ envelope: env }));
    assert.ok(plan.send);
    assert.deepEqual(plan.recipients, ['bob@example.org']);
    const groups = statusGroups(parseDsn(plan.message).parts[1]!.body);
    assert.equal(groups.length, 2);
    assert.equal(groups[1]!.get('final-recipient'), 'rfc822; bob@example.org');
  });

  it('a REQUIRETLS message gets a REQUIRETLS report', () => {
    const plan = planDsn(input({ envelope: envelope(null, { requireTls: true }) }));
    assert.ok(plan.send && plan.envelope.requireTls);
  });
});

describe('quotedPrintable', () => {
  it('escapes =, 8-bit and trailing white space, and soft-breaks long lines', () => {
    assert.equal(quotedPrintable('a=b é \r\n'), 'a=3Db =C3=A9=20\r\n');
    const long = quotedPrintable('x'.repeat(200) + '\r\n');
    assert.ok(long.split('\r\n').every((l) => l.length <= 76));
    assert.equal(decodeQp(long), 'x'.repeat(200) + '\r\n');
  });
});

describe('returnContent: the backscatter rule (RFC 3461 §4.3 RET)', () => {
  const outsider = (extra: Partial<Envelope> = {}): Envelope => {
    const e = envelope(null, extra);
    return { ...e, arrival: { ...e.arrival, listener: 'mx', clientAddress: '198.51.100.7', authUser: null } };
  };
  it('unauthenticated and not from a trusted network: headers only, unless the sender asked RET=FULL', () => {
    assert.equal(returnContent(outsider(), false), 'HDRS');
    assert.equal(returnContent(outsider({ dsnRet: 'FULL' }), false), 'FULL');
  });
  it('authenticated or trusted: the full message, unless the sender asked RET=HDRS', () => {
    assert.equal(returnContent(envelope(), false), 'FULL');
    assert.equal(returnContent(outsider(), true), 'FULL');
    assert.equal(returnContent(envelope(null, { dsnRet: 'HDRS' }), true), 'HDRS');
  });
  it('ret overrides the envelope when building the report', () => {
    const { parts } = parseDsn(buildDsn(input({ ret: 'HDRS' })));
    assert.equal(parts[2]!.headers.get('content-type'), 'text/rfc822-headers');
    assert.ok(!parts[2]!.body.includes('SECRET BODY LINE'));
  });
});

describe('planDsn: recipients by id', () => {
  it('the same address twice: NOTIFY and ORCPT of the recipient with that id apply', () => {
    const env = envelope(null, {}, ['dup@example.org', 'dup@example.org']);
    env.recipients[0]!.dsn.notify = 'NEVER';
    env.recipients[1]!.dsn.orcpt = 'rfc822;second@example.org';
    const r = { ...input().recipients[0]!, address: 'dup@example.org' };
    assert.equal(planDsn(input({ envelope: env, recipients: [{ ...r, id: 0 }] })).send, false);
    const plan = planDsn(input({ envelope: env, recipients: [{ ...r, id: 1 }] }));
    assert.ok(plan.send);
    const groups = statusGroups(parseDsn(plan.message).parts[1]!.body);
    assert.equal(groups[1]!.get('original-recipient'), 'rfc822; second@example.org');
  });
});
