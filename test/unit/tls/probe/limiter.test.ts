import assert from 'node:assert/strict';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectionLimiter } from '../../../../src/tls/probe/limiter.ts';

it('never runs more than maxPerAddress at once for one address, and counts every run', async () => {
  const limiter = new ConnectionLimiter(2);
  let active = 0;
  let peak = 0;
  const job = async (): Promise<void> => {
    active++;
    peak = Math.max(peak, active);
    await sleep(5);
    active--;
  };
  await Promise.all(Array.from({ length: 9 }, () => limiter.run('192.0.2.1', job)));
  assert.equal(peak, 2);
  assert.equal(limiter.connections('192.0.2.1'), 9);
  assert.equal(limiter.connections('192.0.2.2'), 0);
});

it('limits each address separately and releases slots when a job throws', async () => {
  const limiter = new ConnectionLimiter(1);
  const order: string[] = [];
  const a = limiter.run('a', async () => {
    order.push('a1');
    await sleep(10);
    throw new Error('boom');
  });
  const b = limiter.run('b', async () => {
    order.push('b1');
  });
  const a2 = limiter.run('a', async () => {
    order.push('a2');
  });
  await assert.rejects(a, /boom/);
  await b;
  await a2;
  assert.deepEqual(order, ['a1', 'b1', 'a2']);
});

it('rejects a nonsensical limit', () => {
  assert.throws(() => new ConnectionLimiter(0), RangeError);
});
