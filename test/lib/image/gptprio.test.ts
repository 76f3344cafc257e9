import test from 'ava';
import {
  bootEverSucceeded, decodeGptPrio, encodeGptPrio, FRESH_BOOT_A_ATTRIBUTES, grubCandidate, priority, setBootEverSucceeded,
  setPriority, setSuccessful, setTriesLeft, successful, triesLeft, willBoot,
} from '../../../src/lib/image/gptprio.ts';

test('fresh BOOT-A has bits 48 and 56 set: priority 1, no tries, successful', (t) => {
  t.is(FRESH_BOOT_A_ATTRIBUTES, (1n << 48n) | (1n << 56n));
  t.deepEqual(decodeGptPrio(FRESH_BOOT_A_ATTRIBUTES), { priority: 1, triesLeft: 0, successful: true });
});

test('fields sit at bits 48–51, 52–55 and 56 and leave other bits alone', (t) => {
  const legacyBootable = 1n << 2n;
  let attributes = setPriority(legacyBootable, 15);
  attributes = setTriesLeft(attributes, 3);
  attributes = setSuccessful(attributes, true);
  t.is(attributes, legacyBootable | (0xfn << 48n) | (3n << 52n) | (1n << 56n));
  t.is(priority(attributes), 15);
  t.is(triesLeft(attributes), 3);
  t.true(successful(attributes));
  t.is(setPriority(attributes, 0) & (0xfn << 48n), 0n);
  t.is(setSuccessful(attributes, false) & (1n << 56n), 0n);
  t.is(encodeGptPrio(attributes, { priority: 2, triesLeft: 1, successful: false }), legacyBootable | (2n << 48n) | (1n << 52n));
});

test('bit 57 is the PRIVATE entry\'s boot-ever-succeeded flag', (t) => {
  t.false(bootEverSucceeded(0n));
  t.is(setBootEverSucceeded(0n, true), 1n << 57n);
  t.true(bootEverSucceeded(1n << 57n));
  t.is(setBootEverSucceeded((1n << 57n) | 1n, false), 1n);
});

test('out-of-range fields are refused', (t) => {
  t.throws(() => setPriority(0n, 16), { instanceOf: RangeError });
  t.throws(() => setTriesLeft(0n, -1), { instanceOf: RangeError });
});

test('willBoot is signpost\'s rule, grubCandidate is gptprio.next\'s', (t) => {
  t.true(willBoot({ priority: 0, triesLeft: 0, successful: true }));
  t.false(grubCandidate({ priority: 0, triesLeft: 0, successful: true }));
  t.true(willBoot({ priority: 2, triesLeft: 1, successful: false }));
  t.true(grubCandidate({ priority: 2, triesLeft: 1, successful: false }));
  t.false(willBoot({ priority: 2, triesLeft: 0, successful: false }));
  t.false(grubCandidate({ priority: 2, triesLeft: 0, successful: false }));
});
