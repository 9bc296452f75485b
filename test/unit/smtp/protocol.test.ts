import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCommand, splitPathAndParams } from '../../../src/smtp/protocol/command.ts';
import { decodeXtext, encodeXtext, parseMailParams, parseRcptParams } from '../../../src/smtp/protocol/params.ts';
import { formatReply } from '../../../src/smtp/protocol/reply.ts';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('parseCommand', () => {
  test('verbs are case-insensitive, args keep their case', () => {
    assert.deepEqual(parseCommand(b('mAiL FROM:<A@b.example>')), { verb: 'MAIL', args: 'FROM:<A@b.example>' });
    assert.deepEqual(parseCommand(b('QUIT')), { verb: 'QUIT', args: '' });
  });
  test('512 octets including CRLF is the limit for ordinary commands (RFC 5321 §4.5.3.1.4)', () => {
    const ok = 'NOOP ' + 'x'.repeat(505); // 510 + CRLF = 512
    assert.equal(ok.length, 510);
    assert.ok('verb' in parseCommand(b(ok)));
    const r = parseCommand(b(ok + 'x'));
    assert.ok('error' in r);
    assert.equal(r.error.code, 500);
  });
  test('MAIL/RCPT may be longer (ESMTP parameters), AUTH up to 12288 (RFC 4954 §4)', () => {
    assert.ok('verb' in parseCommand(b('RCPT TO:<a@b> ORCPT=rfc822;' + 'x'.repeat(480))));
    assert.ok('error' in parseCommand(b('RCPT TO:<a@b> ORCPT=rfc822;' + 'x'.repeat(1100))));
    assert.ok('verb' in parseCommand(b('AUTH PLAIN ' + 'A'.repeat(12000))));
    assert.ok('error' in parseCommand(b('AUTH PLAIN ' + 'A'.repeat(12300))));
  });
  test('control characters, NUL and invalid UTF-8 are refused', () => {
    for (const bad of ['MAIL FROM:<a@b>\0', 'RCPT TO:<a@b>\rRSET', 'NOOP a\nb']) {
      const r = parseCommand(b(bad));
      assert.ok('error' in r, bad);
      assert.equal(r.error.code, 500);
    }
    assert.ok('error' in parseCommand(Buffer.from([0x4e, 0x4f, 0x4f, 0x50, 0x20, 0xff, 0xfe])));
    assert.ok('verb' in parseCommand(Buffer.from('MAIL FROM:<jösé@bücher.example> SMTPUTF8', 'utf8')));
  });
  test('garbage verbs are unrecognized', () => {
    for (const v of ['', ' NOOP', '123', 'MA;L x', '\x16\x03\x01']) {
      const r = parseCommand(b(v));
      assert.ok('error' in r, JSON.stringify(v));
    }
  });
});

describe('splitPathAndParams', () => {
  test('path with params', () => {
    assert.deepEqual(splitPathAndParams('FROM:<a@b.example> SIZE=10 BODY=8BITMIME', 'FROM'), {
      path: '<a@b.example>',
      params: ['SIZE=10', 'BODY=8BITMIME'],
    });
    assert.deepEqual(splitPathAndParams('to: <a@b>', 'TO'), { path: '<a@b>', params: [] });
    assert.deepEqual(splitPathAndParams('FROM:<>', 'FROM'), { path: '<>', params: [] });
  });
  test('a > inside a quoted local part does not end the path', () => {
    assert.deepEqual(splitPathAndParams('TO:<"a>b c"@x.example> NOTIFY=NEVER', 'TO'), {
      path: '<"a>b c"@x.example>',
      params: ['NOTIFY=NEVER'],
    });
  });
  test('syntax errors', () => {
    for (const a of ['<a@b>', 'FROM <a@b>', 'FROM:', 'FROM:<a@b', 'FROM:<a@b>SIZE=1']) {
      const r = splitPathAndParams(a, 'FROM');
      assert.ok('error' in r, a);
      assert.equal(r.error.code, 501);
    }
    assert.ok('error' in splitPathAndParams('FROM:<a@b>', 'TO'));
  });
});

describe('parseMailParams', () => {
  test('all supported parameters', () => {
    const r = parseMailParams(['SIZE=1234', 'body=8bitmime', 'SMTPUTF8', 'REQUIRETLS', 'RET=HDRS', 'ENVID=QQ+2B1']);
    assert.deepEqual(r, {
      ok: { size: 1234, body: '8BITMIME', smtputf8: true, requireTls: true, ret: 'HDRS', envid: 'QQ+1' },
    });
    assert.deepEqual(parseMailParams([]), {
      ok: { size: null, body: null, smtputf8: false, requireTls: false, ret: null, envid: null },
    });
  });
  test('unknown → 555 5.5.4, malformed or repeated → 501 5.5.4', () => {
    const cases: Array<[string[], number]> = [
      [['XFOO=1'], 555],
      [['BODY=BINARYMIME'], 555],
      [['SIZE=abc'], 501],
      [['SIZE'], 501],
      [['BODY=9BIT'], 501],
      [['SMTPUTF8=yes'], 501],
      [['REQUIRETLS=1'], 501],
      [['RET=ALL'], 501],
      [['ENVID=a+zz'], 501],
      [['ENVID=' + 'x'.repeat(101)], 501],
      [['SIZE=1', 'size=2'], 501],
    ];
    for (const [p, code] of cases) {
      const r = parseMailParams(p);
      assert.ok('error' in r, p.join(' '));
      assert.equal(r.error.code, code, p.join(' '));
      assert.equal(r.error.enhanced, '5.5.4');
    }
  });
});

describe('parseRcptParams', () => {
  test('NOTIFY and ORCPT (RFC 3461 §4.1, §4.2)', () => {
    assert.deepEqual(parseRcptParams(['NOTIFY=SUCCESS,failure', 'ORCPT=rfc822;bob+40example.org']), {
      ok: { notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;bob@example.org' },
    });
    assert.deepEqual(parseRcptParams(['NOTIFY=NEVER']), { ok: { notify: 'NEVER', orcpt: null } });
  });
  test('bad values', () => {
    for (const p of [
      ['NOTIFY=NEVER,SUCCESS'],
      ['NOTIFY=SOMETIMES'],
      ['NOTIFY=DELAY,DELAY'],
      ['ORCPT=bob@example.org'],
      ['ORCPT=rfc822;'],
      ['ORCPT=rfc822;a+g1'],
      // xtext that decodes to control characters (a header injection into the DSN).
      ['ORCPT=rfc822;a+0D+0ABcc:+20x@evil.example'],
      ['ORCPT=rfc822;a+00b@example.org'],
      ['ORCPT=rfc822;a+7Fb@example.org'],
      ['ORCPT=rfc822;a+09b@example.org'],
    ]) {
      const r = parseRcptParams(p);
      assert.ok('error' in r, p.join());
      assert.equal(r.error.code, 501);
    }
    const u = parseRcptParams(['FOO']);
    assert.ok('error' in u);
    assert.equal(u.error.code, 555);
  });
});

describe('xtext', () => {
  test('round trip and strictness', () => {
    const s = 'a+b=c d\u00e9';
    assert.equal(encodeXtext('a+b=c'), 'a+2Bb+3Dc');
    assert.equal(Buffer.from(decodeXtext(encodeXtext(s)) ?? '', 'latin1').toString('utf8'), s);
    assert.equal(decodeXtext('a b'), null);
    assert.equal(decodeXtext('a=b'), null);
    assert.equal(decodeXtext('a+4'), null);
  });
});

describe('formatReply', () => {
  test('single and multi-line with enhanced codes', () => {
    assert.equal(formatReply(250, '2.0.0', 'Ok'), '250 2.0.0 Ok\r\n');
    assert.equal(formatReply(250, null, ['a', 'b', 'c']), '250-a\r\n250-b\r\n250 c\r\n');
    assert.equal(formatReply(550, '5.1.1', ['x', 'y']), '550-5.1.1 x\r\n550 5.1.1 y\r\n');
    assert.equal(formatReply(334, null, ''), '334 \r\n');
  });
  test('CR/LF in text cannot start a new reply', () => {
    assert.equal(formatReply(250, '2.0.0', 'a\r\n250 b'), '250 2.0.0 a  250 b\r\n');
    assert.throws(() => formatReply(99, null, 'x'));
  });
  test('replies are ASCII only (RFC 5321 §4.2 textstring): anything else becomes ?', () => {
    assert.equal(formatReply(550, '5.6.0', 'RFC 5321 §2.3.8'), '550 5.6.0 RFC 5321 ?2.3.8\r\n');
    assert.equal(formatReply(550, '5.1.1', '<jösé@bücher.example>'), '550 5.1.1 <j?s?@b?cher.example>\r\n');
    assert.equal(formatReply(250, null, ['a\u{1f600}', 'b']), '250-a?\r\n250 b\r\n');
  });
  test('a malformed enhanced status code is a programming error', () => {
    assert.throws(() => formatReply(550, '5.6', 'x'), RangeError);
    assert.throws(() => formatReply(550, '5.6.0 x', 'x'), RangeError);
  });
});
