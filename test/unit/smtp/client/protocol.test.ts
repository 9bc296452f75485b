import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeData,
  encodeXtext,
  enhancedCode,
  mailFromParams,
  needsSmtpUtf8,
  parseEhlo,
  rcptParams,
  transactionCommands,
} from '../../../../src/smtp/client/protocol.ts';
import type { MailFromInput } from '../../../../src/smtp/client/protocol.ts';
import { SmtpClientError } from '../../../../src/smtp/client/errors.ts';

const tx = (o: Partial<MailFromInput> = {}): MailFromInput => ({
  mailFrom: 'alice@example.org',
  recipients: [{ address: 'bob@example.net', dsn: { notify: null, orcpt: null } }],
  body: '7BIT',
  smtputf8: false,
  requireTls: false,
  dsnRet: null,
  dsnEnvid: null,
  ...o,
});

describe('encodeData (RFC 5321 §4.5.2)', () => {
  it('doubles a leading dot on every line and appends the terminator', () => {
    const { data, fixedLineEnds } = encodeData(Buffer.from('Subject: x\r\n\r\n.\r\n..two\r\na.b\r\n.'));
    assert.equal(data.toString(), 'Subject: x\r\n\r\n..\r\n...two\r\na.b\r\n..\r\n.\r\n');
    assert.equal(fixedLineEnds, 0);
  });

  it('turns bare LF and bare CR into CRLF so no ambiguous line end leaves (smuggling)', () => {
    const { data, fixedLineEnds } = encodeData(Buffer.from('a\nb\rc\r\n.\n\r.\r\nend'));
    // "\r.\r\n" would be a hidden end-of-data for a lenient receiver; it becomes CRLF + "..".
    assert.equal(data.toString(), 'a\r\nb\r\nc\r\n..\r\n\r\n..\r\nend\r\n.\r\n');
    assert.equal(fixedLineEnds, 4);
    assert.ok(!/[^\r]\n|\r[^\n]/.test(data.toString()), 'every CR is followed by LF and every LF preceded by CR');
  });

  it('handles empty and 8-bit messages byte-exactly', () => {
    assert.equal(encodeData(Buffer.alloc(0)).data.toString(), '.\r\n');
    const bin = Buffer.from([0xc3, 0xa4, 0x0d, 0x0a, 0x2e, 0xff, 0x0d, 0x0a]);
    assert.deepEqual(
      encodeData(bin).data,
      Buffer.from([0xc3, 0xa4, 0x0d, 0x0a, 0x2e, 0x2e, 0xff, 0x0d, 0x0a, 0x2e, 0x0d, 0x0a]),
    );
  });
});

describe('EHLO and parameters', () => {
  const ext = parseEhlo([
    'mx.example.net greets you',
    'PIPELINING',
    'SIZE 1000',
    '8BITMIME',
    'dsn',
    'SMTPUTF8',
    'AUTH=PLAIN LOGIN',
  ]);

  it('parses keywords upper-case with their parameters', () => {
    assert.equal(ext.get('SIZE'), '1000');
    assert.ok(ext.has('DSN'));
    assert.equal(ext.get('AUTH'), 'PLAIN LOGIN');
    assert.ok(!ext.has('MX.EXAMPLE.NET'));
  });

  it('sends only advertised parameters', () => {
    const p = mailFromParams(
      ext,
      tx({ body: '8BITMIME', smtputf8: true, requireTls: true, dsnRet: 'HDRS', dsnEnvid: 'id+1=2' }),
      500,
      false,
    );
    assert.deepEqual(p, ['SIZE=500', 'BODY=8BITMIME', 'SMTPUTF8', 'RET=HDRS', 'ENVID=id+2B1+3D2']);
    // Nothing advertised: nothing sent, not even SIZE.
    assert.deepEqual(mailFromParams(new Map(), tx({ body: '8BITMIME', dsnRet: 'FULL' }), 500, false), []);
  });

  it('refuses what the server cannot take, permanently', () => {
    assert.throws(
      () => mailFromParams(ext, tx(), 1001, false),
      (e) => e instanceof SmtpClientError && e.enhanced === '5.3.4' && !e.temporary,
    );
    assert.throws(
      () => mailFromParams(new Map([['SIZE', '0']]), tx({ smtputf8: true }), 10, true),
      (e) =>
        e instanceof SmtpClientError && e.enhanced === '5.6.7' && e.code === 'smtputf8-unsupported' && !e.temporary,
    );
    assert.throws(() => mailFromParams(ext, tx({ body: 'BINARYMIME' }), 10, false), /BDAT/);
  });

  it('SMTPUTF8 is needed only when an address or header carries UTF-8 (RFC 6531 §3.2)', () => {
    assert.equal(needsSmtpUtf8(tx({ smtputf8: true }), Buffer.from('Subject: plain\r\n\r\nbody ä')), false);
    assert.equal(needsSmtpUtf8(tx({ smtputf8: true }), Buffer.from('Subject: Grüße\r\n\r\nx')), true);
    assert.equal(needsSmtpUtf8(tx({ mailFrom: 'jörg@example.org' }), Buffer.from('x')), true);
  });

  it('RCPT gets NOTIFY/ORCPT only with DSN, ORCPT xtext-encoded', () => {
    const r = {
      address: 'bob@example.net',
      dsn: { notify: ['SUCCESS', 'FAILURE'] as Array<'SUCCESS' | 'FAILURE'>, orcpt: 'rfc822;b+b=1@example.net' },
    };
    assert.deepEqual(rcptParams(ext, r), ['NOTIFY=SUCCESS,FAILURE', 'ORCPT=rfc822;b+2Bb+3D1@example.net']);
    assert.deepEqual(rcptParams(new Map(), r), []);
    assert.deepEqual(rcptParams(ext, { address: 'x@y', dsn: { notify: 'NEVER', orcpt: null } }), ['NOTIFY=NEVER']);
    assert.equal(encodeXtext('a b+é'), 'a+20b+2B+C3+A9');
  });

  it('refuses addresses that would inject commands', () => {
    assert.throws(
      () => transactionCommands(ext, tx({ mailFrom: 'a@b>\r\nRCPT TO:<x@y' }), Buffer.from('x')),
      /invalid sender/,
    );
    assert.throws(
      () =>
        transactionCommands(
          ext,
          tx({ recipients: [{ address: 'a@b> NOTIFY=NEVER', dsn: { notify: null, orcpt: null } }] }),
          Buffer.from('x'),
        ),
      /invalid recipient/,
    );
    const c = transactionCommands(ext, tx(), Buffer.from('hello'));
    assert.equal(c.mail, 'MAIL FROM:<alice@example.org> SIZE=5\r\n');
    assert.deepEqual(c.rcpts, ['RCPT TO:<bob@example.net>\r\n']);
  });

  it('reads enhanced status codes', () => {
    assert.equal(enhancedCode('5.7.1 relay denied'), '5.7.1');
    assert.equal(enhancedCode('Ok'), null);
  });
});
