import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataReader } from '../../../src/smtp/server/data.ts';

// Issue 9 (memory is a budget): each DATA transfer used to start with a 64 KiB buffer and the
// stored message was a view of it, so every small message in flight held 64 KiB of memory
// outside V8's heap — 60 MiB for 1,000 sessions each with a 2 KiB message in flight.
const small = Buffer.from('Subject: x\r\n\r\n' + ('y'.repeat(70) + '\r\n').repeat(29) + '.\r\n', 'latin1');

function readAll(msg: Buffer, maxSize: number): Buffer {
  const r = new DataReader({ maxSize, maxLineLength: 1000 });
  const f = r.feed(msg);
  assert.equal(f.done, true);
  const m = r.result().message;
  assert.ok(m !== null);
  return m;
}

/** Bytes of distinct backing stores (small buffers share node's allocation pool). */
function backing(bufs: readonly Buffer[]): number {
  return [...new Set(bufs.map((b) => b.buffer))].reduce((a, ab) => a + ab.byteLength, 0);
}

test('1,000 small messages in flight hold ~4 KiB each outside the heap, not 64 KiB', () => {
  const held = Array.from({ length: 1000 }, () => readAll(small, 10 * 1024 * 1024));
  for (const m of held) assert.equal(m.length, small.length - 3); // without the final ".\r\n"
  const total = backing(held);
  assert.ok(total <= 1000 * 4096 + Buffer.poolSize, `${(total / 1048576).toFixed(1)} MiB for 1,000 messages`);
});

test('a message larger than the initial block grows and stays byte-exact', () => {
  const body = Buffer.from(('z'.repeat(98) + '\r\n').repeat(2000), 'latin1'); // 200,000 octets
  const m = readAll(Buffer.concat([body, Buffer.from('.\r\n')]), 10 * 1024 * 1024);
  assert.ok(m.equals(body));
  assert.ok(backing([m]) <= 2 * m.length, `backing store ${backing([m])} B`);
});
