import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { mapLimit, within } from '../../../src/lib/core/concurrency.ts';

test('mapLimit never has more than limit calls in flight and uses all of them', async (t) => {
  let running = 0;
  let peak = 0;
  await mapLimit(Array.from({ length: 20 }, (_, index) => index), 3, async () => {
    running += 1;
    peak = Math.max(peak, running);
    await sleep(2);
    running -= 1;
  });
  t.is(peak, 3);
  t.is(running, 0);
});

test('mapLimit results keep the input order whatever order the calls finish in', async (t) => {
  const delays = [30, 1, 20, 5, 10];
  const results = await mapLimit(delays, 2, async (delay, index) => {
    await sleep(delay);
    return `${index}:${delay}`;
  });
  t.deepEqual(results, ['0:30', '1:1', '2:20', '3:5', '4:10']);
});

test('mapLimit starts nothing new after a failure and rethrows it once the running calls settle', async (t) => {
  const started: number[] = [];
  const settled: number[] = [];
  const error = await t.throwsAsync(
    mapLimit(Array.from({ length: 10 }, (_, index) => index), 3, async (item) => {
      started.push(item);
      try {
        if (item === 1) throw new Error('item 1 failed');
        await sleep(item === 0 ? 30 : 5);
      } finally {
        settled.push(item);
      }
    }),
  );
  t.is(error?.message, 'item 1 failed');
  // Items 0, 1 and 2 were in flight together; nothing after the failure started.
  t.deepEqual(started, [0, 1, 2]);
  t.deepEqual([...settled].sort(), [0, 1, 2]);
});

test('mapLimit rethrows the first failure when several calls fail', async (t) => {
  const error = await t.throwsAsync(
    mapLimit([5, 1], 2, async (delay) => {
      await sleep(delay);
      throw new Error(`failed after ${delay} ms`);
    }),
  );
  t.is(error?.message, 'failed after 1 ms');
});

test('mapLimit over no items resolves to no results without calling fn', async (t) => {
  t.deepEqual(await mapLimit([], 4, async () => t.fail()), []);
});

test('mapLimit refuses a limit that is not a positive integer', async (t) => {
  await t.throwsAsync(mapLimit([1], 0, async (item) => item), { instanceOf: RangeError });
  await t.throwsAsync(mapLimit([1], Number.NaN, async (item) => item), { instanceOf: RangeError });
});

test.serial('within returns when the promise settles, or after the bound with no timer left; a failure is thrown', async (t) => {
  let started = performance.now();
  await within(sleep(10), 5_000);
  t.true(performance.now() - started < 1_000, 'returned when the promise did, not at the bound');
  started = performance.now();
  await within(new Promise(() => {}), 50);
  t.true(performance.now() - started >= 45, 'a promise that never settles is given up at the bound');
  t.false(process.getActiveResourcesInfo().includes('Timeout'), 'no timer is left behind');
  await t.throwsAsync(within(Promise.reject(new Error('broken')), 1_000), { message: 'broken' });
});
