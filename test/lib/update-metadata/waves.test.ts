import test from 'ava';
import {
  MAX_SEED,
  formatRfc3339,
  isUpdateReady,
  parseWavePolicy,
  readyTimeForSeed,
  wavesFromPolicy,
  type Update,
} from '../../../src/lib/update-metadata/index.ts';
import { BrlError } from '../../../src/lib/core/errors.ts';

const HOUR = 3_600_000;
const start = Date.UTC(2026, 0, 1);

const policies: Record<string, string> = {
  'default-waves': `
[[waves]]
start_after = '1 hour'
fleet_percentage = 1
[[waves]]
start_after = '4 hours'
fleet_percentage = 5
[[waves]]
start_after = '1 day'
fleet_percentage = 15
[[waves]]
start_after = '2 days'
fleet_percentage = 40
[[waves]]
start_after = '4 days'
fleet_percentage = 60
[[waves]]
start_after = '5 days'
fleet_percentage = 90
[[waves]]
start_after = '6 days'
fleet_percentage = 100
`,
  accelerated: [[1, 3], [4, 12], [8, 40], [16, 80], [24, 100]].map(([h, p]) => `[[waves]]\nstart_after = "${h} hours"\nfleet_percentage = ${p}\n`).join(''),
  ohno: [[30, 5], [60, 25], [120, 50], [150, 90], [180, 100]].map(([m, p]) => `[[waves]]\nstart_after = "${m} minutes"\nfleet_percentage = ${p}\n`).join(''),
  'slow-roll': [[1, 1], [24, 5], [72, 15], [168, 40], [216, 60], [288, 90], [312, 100]].map(([h, p]) => `[[waves]]\nstart_after = "${h} hours"\nfleet_percentage = ${p}\n`).join(''),
};

// update-repo.md §2: manifest keys with start offsets in minutes.
const expectedKeys: Record<string, [number, number][]> = {
  'default-waves': [[0, 60], [20, 240], [102, 1440], [307, 2880], [819, 5760], [1228, 7200], [1843, 8640]],
  accelerated: [[0, 60], [61, 240], [245, 480], [819, 960], [1638, 1440]],
  ohno: [[0, 30], [102, 60], [512, 120], [1024, 150], [1843, 180]],
  'slow-roll': [[0, 60], [20, 1440], [102, 4320], [307, 10080], [819, 12960], [1228, 17280], [1843, 18720]],
};

function updateWithWaves(waves: Record<string, string>): Update {
  return {
    variant: 'test-minimal', arch: 'x86_64', version: '1.1.0', max_version: '1.1.0', waves,
    images: { boot: 'b', root: 'r', hash: 'h' },
  };
}

for (const [name, text] of Object.entries(policies)) {
  test(`${name} policy converts to upstream's manifest wave keys and times`, (t) => {
    const waves = wavesFromPolicy(parseWavePolicy(`${name}.toml`, text), start);
    t.deepEqual(waves, Object.fromEntries(expectedKeys[name]!.map(([seed, minutes]) => [String(seed), formatRfc3339(start + minutes * 60_000)])));
  });
}

test('default policy readiness matches the brl row of the update-repo.md fixture table', (t) => {
  const update = updateWithWaves(wavesFromPolicy(parseWavePolicy('default.toml', policies['default-waves']!), start));
  const fixture: [number, number][] = [[0, 1], [10, 2.5], [21, 4.2], [50, 11.3], [103, 24.1], [200, 35.5], [308, 48.1],
    [500, 66.1], [1000, 106.6], [1229, 120.0], [1843, 144], [2047, 144]];
  for (const [seed, hours] of fixture) {
    const readyHours = (readyTimeForSeed(update, seed)! - start) / HOUR;
    t.is(Math.round(readyHours * 10) / 10, hours, `seed ${seed}`);
  }
});

test('seed 0 is not ready before the first wave starts', (t) => {
  const update = updateWithWaves(wavesFromPolicy(parseWavePolicy('default.toml', policies['default-waves']!), start));
  t.false(isUpdateReady(update, 0, start));
  t.false(isUpdateReady(update, 0, start + HOUR - 1));
  t.true(isUpdateReady(update, 0, start + HOUR));
});

test('an update without waves is ready for every seed at any time', (t) => {
  const update = updateWithWaves({});
  t.true(isUpdateReady(update, 0, 0));
  t.true(isUpdateReady(update, 2047, 0));
});

for (const [name, text] of Object.entries(policies)) {
  test(`${name}: for all 2048 seeds rollout is monotonic and no host runs ahead of its wave`, (t) => {
    const waves = wavesFromPolicy(parseWavePolicy(`${name}.toml`, text), start);
    const update = updateWithWaves(waves);
    const keys = Object.keys(waves).map(Number).sort((a, b) => a - b);
    const lastTime = Date.parse(waves[String(keys.at(-1))]!);
    // 120 instants from before the first wave to after the last, with uneven spacing.
    const span = lastTime - start + 2 * HOUR;
    const times = Array.from({ length: 120 }, (_, index) => start - HOUR + Math.floor((span * index) / 119) - (index * 7919) % 1000);
    let previousReadyAt = -Infinity;
    let previousReadyCount = 0;
    for (const now of times) {
      let readyCount = 0;
      for (let seed = 0; seed < MAX_SEED; seed += 1) if (isUpdateReady(update, seed, now)) readyCount += 1;
      if (readyCount < previousReadyCount) t.fail(`ready hosts fell from ${previousReadyCount} to ${readyCount} at ${now}`);
      previousReadyCount = readyCount;
    }
    t.is(previousReadyCount, MAX_SEED, 'the whole fleet is ready after the last wave');
    for (let seed = 0; seed < MAX_SEED; seed += 1) {
      const readyAt = readyTimeForSeed(update, seed)!;
      // Monotonic in the seed: a higher seed never updates before a lower one.
      if (readyAt < previousReadyAt) t.fail(`seed ${seed} ready before seed ${seed - 1}`);
      previousReadyAt = readyAt;
      // The wave a seed belongs to is the first key ≥ seed; it never starts before that wave's
      // predecessor starts, and never later than its own wave start (or the last wave).
      const upper = keys.find((key) => key >= seed);
      const lower = keys.filter((key) => key < seed).at(-1);
      if (lower !== undefined && readyAt < Date.parse(waves[String(lower)]!)) t.fail(`seed ${seed} ahead of wave ${lower}`);
      if (upper !== undefined && readyAt > Date.parse(waves[String(upper)]!)) t.fail(`seed ${seed} behind wave ${upper}`);
      if (upper === undefined && readyAt !== lastTime) t.fail(`seed ${seed} in the last wave not ready at its start`);
      t.false(isUpdateReady(update, seed, readyAt - 1));
      t.true(isUpdateReady(update, seed, readyAt));
    }
  });
}

test('a policy whose percentages do not increase is refused with file and key', (t) => {
  const error = t.throws(() => parseWavePolicy('bad.toml', '[[waves]]\nstart_after = "1 hour"\nfleet_percentage = 50\n[[waves]]\nstart_after = "2 hours"\nfleet_percentage = 40\n'), { instanceOf: BrlError });
  t.regex(error!.message, /bad\.toml:\d+: waves\[1\]\.fleet_percentage: .*must increase/);
});

test('a policy with an unreadable start_after names the value', (t) => {
  const error = t.throws(() => parseWavePolicy('bad.toml', '[[waves]]\nstart_after = "soonish"\nfleet_percentage = 50\n'), { instanceOf: BrlError });
  t.regex(error!.message, /"soonish" is neither an RFC 3339 time nor an offset/);
});

test('absolute start times in a policy are used as given', (t) => {
  const waves = wavesFromPolicy(parseWavePolicy('abs.toml', '[[waves]]\nstart_after = 2026-02-01T00:00:00Z\nfleet_percentage = 50\n[[waves]]\nstart_after = "2026-02-02T00:00:00Z"\nfleet_percentage = 100\n'), start);
  t.deepEqual(waves, { 0: '2026-02-01T00:00:00Z', 1024: '2026-02-02T00:00:00Z' });
});
