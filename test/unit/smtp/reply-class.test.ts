/**
 * One temporary-vs-permanent rule (src/smtp/protocol/reply-class.ts): the reply code decides
 * (RFC 5321 §4.2.1), a contradicting enhanced code keeps its subject/detail under the reply's
 * class (RFC 3463 §2). The queue (classifyReply/dsnStatus) must give the same answers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { classifyReply, dsnStatus } from '../../../src/queue/schedule.ts';
import { isCompletion, parseEnhanced, replyClass, replyStatus } from '../../../src/smtp/protocol/reply-class.ts';
import type { ReplyClass } from '../../../src/smtp/protocol/reply-class.ts';

/** [code, enhanced, class, DSN Status] */
const TABLE: Array<[number, string | null, ReplyClass, string]> = [
  [250, '2.1.5', 'success', '2.1.5'],
  [250, null, 'success', '2.0.0'],
  [250, ' 2.1.5 ', 'success', '2.1.5'],
  [354, null, 'success', '2.0.0'],
  [421, null, 'temporary', '4.0.0'],
  [451, '4.7.5', 'temporary', '4.7.5'],
  [550, null, 'permanent', '5.0.0'],
  [554, '5.7.1', 'permanent', '5.7.1'],
  // RFC 3463 §2: the class contradicts the reply code; the reply code decides, subject/detail stay.
  [550, '4.7.1', 'permanent', '5.7.1'],
  [550, '4.2.2', 'permanent', '5.2.2'],
  [450, '5.1.1', 'temporary', '4.1.1'],
  [451, '5.7.1', 'temporary', '4.7.1'],
  [250, '5.0.0', 'success', '2.0.0'],
  // Unusable enhanced codes: the class's generic code.
  [550, 'garbage', 'permanent', '5.0.0'],
  [554, '5.7.1000', 'permanent', '5.0.0'],
  [554, '3.1.1', 'permanent', '5.0.0'],
  [451, '4..1', 'temporary', '4.0.0'],
  // Malformed reply codes are never final: a deferral can be corrected, a bounce cannot.
  [999, null, 'temporary', '4.0.0'],
  [150, '5.1.1', 'temporary', '4.1.1'],
  [600, null, 'temporary', '4.0.0'],
  [Number.NaN, null, 'temporary', '4.0.0'],
  [550.5, null, 'temporary', '4.0.0'],
];

describe('reply class and DSN Status (RFC 5321 §4.2.1, RFC 3463 §2)', () => {
  for (const [code, enhanced, cls, status] of TABLE) {
    it(`${String(code)} ${enhanced ?? '-'} → ${cls}, Status ${status}`, () => {
      assert.equal(replyClass(code), cls);
      assert.equal(replyStatus(code, enhanced), status);
      // The queue decides the same way (it used to defer on a contradiction and keep 4.7.1).
      assert.equal(classifyReply(code, enhanced), cls);
      assert.equal(dsnStatus(code, enhanced), status);
    });
  }
  it('parses only RFC 3463 §2 syntax', () => {
    assert.deepEqual(parseEnhanced('5.7.1'), { cls: 5, subject: 7, detail: 1 });
    assert.deepEqual(parseEnhanced('4.999.999'), { cls: 4, subject: 999, detail: 999 });
    assert.equal(parseEnhanced('5.7'), null);
    assert.equal(parseEnhanced('6.0.0'), null);
    assert.equal(parseEnhanced(null), null);
  });
  it('only 2xx completes a command', () => {
    assert.equal(isCompletion(250), true);
    assert.equal(isCompletion(354), false);
    assert.equal(isCompletion(550), false);
  });
});
