import test from 'ava';
import { formatExpires, parseDuration, parseExpires, parseTimeSpec } from '../../../src/lib/tuf/time.ts';

test('expires is written in whole seconds, never with milliseconds', (t) => {
  t.is(formatExpires(1_795_631_377), '2026-11-25T18:29:37Z');
  t.is(formatExpires(1_795_631_377.9), '2026-11-25T18:29:37Z');
});

test('expires written by pubsys with nanoseconds is read without rounding it up', (t) => {
  t.is(parseExpires('2024-10-07T15:14:25.953595765Z'), Date.UTC(2024, 9, 7, 15, 14, 25) / 1000 + 0.953595765);
  t.is(parseExpires('2024-10-07T15:14:25Z'), Date.UTC(2024, 9, 7, 15, 14, 25) / 1000);
  t.is(parseExpires('2024-10-07 15:14:25Z'), undefined);
});

test('durations and limits read like pubsys and tuftool write them', (t) => {
  t.is(parseDuration('2 weeks'), 1_209_600);
  t.is(parseDuration('1 day 12 hours'), 129_600);
  t.is(parseDuration('30m'), 1_800);
  t.is(parseTimeSpec('in 3 days', 1000), 1000 + 259_200);
  t.is(parseTimeSpec('2026-12-01T00:00:00Z', 0), Date.UTC(2026, 11, 1) / 1000);
  t.throws(() => parseDuration('soon'), { message: /"soon" is not a duration/ });
  t.throws(() => parseDuration('3 fortnights'), { message: /not a duration/ });
});
